"""The on-disk reply cache: every LLM reply stored in SQLite, keyed by its request, and checked on replay.

Each reply is stored with a checksum (sha256 of its text, tokens, finish reason and id) and the wall
seconds of the call that made it. A replayed reply whose bytes no longer match its checksum is a
miss: it is counted (``ReplyCache.mismatches``), the call is made again and the row replaced, and it
never becomes data. A database that SQLite cannot read raises ``CacheCorrupt``: one line naming the
file and the remedy.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from synthmix.errors import StorageError

#: Columns added after the first release, with their SQL type: caches written before get them on open.
ADDED_COLUMNS = {"attempts": "INTEGER NOT NULL DEFAULT 1", "seconds": "REAL", "checksum": "TEXT"}


@dataclass(frozen=True)
class ChatReply:
    """One completion: its text, the id of the call, whether it was replayed, the attempts it took, and
    the wall seconds of the call that made it (None when a cache from before this was recorded replays it)."""

    text: str
    call_id: str
    cached: bool
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    attempts: int = 1
    seconds: float | None = None


class CacheCorrupt(StorageError):
    """The reply cache's database file cannot be read (SQLite reports it corrupt, or it is not a database)."""


def reply_checksum(text: str, call_id: str, prompt_tokens: int, completion_tokens: int, finish_reason: str) -> str:
    """sha256 of what a replay hands back: the reply text, its id, its token counts and finish reason."""
    payload = json.dumps([text, call_id, prompt_tokens, completion_tokens, finish_reason], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _storage_line(path: Path, exc: sqlite3.Error) -> StorageError:
    """A one-line error for a SQLite failure of the cache at ``path``, with the remedy."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    message = " ".join(str(exc).split())
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in message or "not a database" in message:
        return CacheCorrupt(f"{path}: the LLM reply cache is corrupt ({message}); move it aside "
                            f"(mv {path} {path}.corrupt) and run again: its replies are then requested anew")
    if name.startswith("SQLITE_FULL") or "disk is full" in message:
        return StorageError(f"{path}: no space left on the device for the LLM reply cache: free some space "
                            "(or use --results on another disk) and run again")
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")) or "readonly" in message:
        return StorageError(f"{path}: the LLM reply cache cannot be written ({message}): the folder must be "
                            "writable (a read-only disk? use --results on a writable one)")
    return StorageError(f"{path}: the LLM reply cache failed: {message}")


class ReplyCache:
    """An on-disk store of replies keyed by request hash (SQLite in WAL mode, committed after every put).

    Safe for threads (one connection behind a lock) and for processes (SQLite's locking, a 60 s
    busy timeout): the first valid reply stored for a key wins, and every writer gets that one back,
    so concurrent runs that make the same call build the same data. Calls that failed after all
    retries are not replies; only their attempt count is kept (``failed_attempts``), so the
    retries behind a reply are counted across runs. Every SQLite failure surfaces as a one-line
    ``StorageError`` (``CacheCorrupt`` for an unreadable file) naming the file.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.mismatches = 0  # replies whose bytes no longer matched their checksum (treated as misses)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.connection = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            self._open()
        except sqlite3.Error as exc:
            raise _storage_line(self.path, exc) from None

    def _open(self) -> None:
        self.connection.execute("PRAGMA busy_timeout = 60000")
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: never corrupt; a power cut may lose the last replies
        with self.connection:
            self.connection.execute(
                "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, call_id TEXT, request TEXT, text TEXT,"
                " prompt_tokens INTEGER, completion_tokens INTEGER, finish_reason TEXT, created REAL)"
            )
            self.connection.execute(
                "CREATE TABLE IF NOT EXISTS failed_attempts (key TEXT PRIMARY KEY, attempts INTEGER, problem TEXT)")
            columns = {row[1] for row in self.connection.execute("PRAGMA table_info(replies)")}
            for name, kind in ADDED_COLUMNS.items():
                if name in columns:
                    continue
                try:  # a cache written before this column existed
                    self.connection.execute(f"ALTER TABLE replies ADD COLUMN {name} {kind}")
                except sqlite3.OperationalError as exc:  # another process added it first
                    if "duplicate column" not in str(exc):
                        raise
            # rows written before checksums existed: trusted as they are now, and checked from here on
            unchecked = self.connection.execute(
                "SELECT key, text, call_id, prompt_tokens, completion_tokens, finish_reason FROM replies"
                " WHERE checksum IS NULL").fetchall()
            self.connection.executemany("UPDATE replies SET checksum = ? WHERE key = ? AND checksum IS NULL",
                                        [(reply_checksum(*row[1:]), row[0]) for row in unchecked])

    def _execute(self, sql: str, parameters=(), commit: bool = False):
        try:
            with self._lock:
                if commit:
                    with self.connection:
                        return self.connection.execute(sql, parameters).fetchall()
                return self.connection.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise _storage_line(self.path, exc) from None

    def check(self) -> None:
        """Raise ``CacheCorrupt`` when SQLite's own quick check of the database finds a problem."""
        rows = self._execute("PRAGMA quick_check")
        problems = [" ".join(str(row[0]).split()) for row in rows if row[0] != "ok"]  # one line each
        if problems:
            raise CacheCorrupt(f"{self.path}: the LLM reply cache is corrupt ({problems[0]}); move it aside "
                               f"(mv {self.path} {self.path}.corrupt) and run again: its replies are then requested anew")

    def _row(self, key: str) -> tuple[ChatReply | None, bool]:
        """The stored reply for a key (None when absent), and whether it matches its checksum."""
        rows = self._execute("SELECT text, call_id, prompt_tokens, completion_tokens, finish_reason, attempts, seconds,"
                             " checksum FROM replies WHERE key = ?", (key,))
        if not rows:
            return None, False
        text, call_id, prompt, completion, finish, attempts, seconds, checksum = rows[0]
        reply = ChatReply(text, call_id, True, prompt, completion, finish, attempts or 1, seconds)
        valid = isinstance(text, str) and checksum == reply_checksum(text, call_id, prompt, completion, finish)
        return reply, valid

    def get(self, key: str) -> ChatReply | None:
        """The stored reply for a key, or None: when absent, or when its bytes fail their checksum (then it
        is counted in ``mismatches`` and the caller calls again, as for any miss)."""
        reply, valid = self._row(key)
        if reply is not None and not valid:
            self.mismatches += 1
            return None
        return reply

    def put(self, key: str, request: dict, reply: ChatReply) -> ChatReply:
        """Store a reply unless a valid one is stored already, and return the stored one (the first writer
        wins; a row that failed its checksum is replaced).

        The request is kept for inspection; it never holds credentials.
        """
        checksum = reply_checksum(reply.text, reply.call_id, reply.prompt_tokens, reply.completion_tokens,
                                  reply.finish_reason)
        values = (key, reply.call_id, json.dumps(request, sort_keys=True), reply.text, reply.prompt_tokens,
                  reply.completion_tokens, reply.finish_reason, time.time(), reply.attempts, reply.seconds, checksum)
        try:
            with self._lock, self.connection:
                self.connection.execute("BEGIN IMMEDIATE")  # no other writer between the check and the write
                row = self.connection.execute(
                    "SELECT text, call_id, prompt_tokens, completion_tokens, finish_reason, checksum FROM replies"
                    " WHERE key = ?", (key,)).fetchone()
                if row is None or row[5] != reply_checksum(*row[:5]):
                    self.connection.execute(
                        "INSERT OR REPLACE INTO replies (key, call_id, request, text, prompt_tokens, completion_tokens,"
                        " finish_reason, created, attempts, seconds, checksum) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        values)
                self.connection.execute("DELETE FROM failed_attempts WHERE key = ?", (key,))
        except sqlite3.Error as exc:
            raise _storage_line(self.path, exc) from None
        stored, _ = self._row(key)
        return ChatReply(stored.text, stored.call_id, False, stored.prompt_tokens, stored.completion_tokens,
                         stored.finish_reason, stored.attempts, stored.seconds)

    def failed_attempts(self, key: str) -> int:
        """Attempts spent on this key by earlier runs whose call failed after all retries."""
        rows = self._execute("SELECT attempts FROM failed_attempts WHERE key = ?", (key,))
        return rows[0][0] if rows else 0

    def record_failure(self, key: str, attempts: int, problem: str) -> None:
        """Add the attempts of a call that failed after all retries (no reply is stored)."""
        self._execute("INSERT INTO failed_attempts VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET"
                      " attempts = attempts + excluded.attempts, problem = excluded.problem", (key, attempts, problem),
                      commit=True)

    def call_records(self) -> list[dict]:
        """Every stored reply's request settings and cost: model, temperature, max_tokens, tokens and the
        seconds of its call (what estimates read as measured rates)."""
        rows = self._execute("SELECT request, prompt_tokens, completion_tokens, seconds FROM replies")
        records = []
        for request, prompt, completion, seconds in rows:
            try:
                settings = json.loads(request)
            except (TypeError, ValueError):
                continue
            if not isinstance(settings, dict):
                continue
            records.append({"model": settings.get("model"), "temperature": settings.get("temperature"),
                            "max_tokens": settings.get("max_tokens"),
                            "prompt_tokens": prompt, "completion_tokens": completion, "seconds": seconds})
        return records

    def __len__(self) -> int:
        return self._execute("SELECT COUNT(*) FROM replies")[0][0]

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self.connection.close()
