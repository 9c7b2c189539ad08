"""The on-disk reply cache: every LLM reply stored in SQLite, keyed by its request.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ChatReply:
    """One completion: its text, the id of the call, whether it was replayed, and the attempts it took."""

    text: str
    call_id: str
    cached: bool
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    attempts: int = 1


class ReplyCache:
    """An on-disk store of replies keyed by request hash (SQLite in WAL mode, committed after every put).

    Safe for threads (one connection behind a lock) and for processes (SQLite's locking, a 60 s
    busy timeout): the first reply stored for a key wins, and every writer gets that one back, so
    concurrent runs that make the same call build the same data. Calls that failed after all
    retries are not replies; only their attempt count is kept (``failed_attempts``), so the
    retries behind a reply are counted across runs.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.connection = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
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
            if "attempts" not in columns:  # caches written before attempts were recorded
                try:
                    self.connection.execute("ALTER TABLE replies ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1")
                except sqlite3.OperationalError as exc:  # another process added it first
                    if "duplicate column" not in str(exc):
                        raise

    def get(self, key: str) -> ChatReply | None:
        """The stored reply for a key, or None."""
        with self._lock:
            row = self.connection.execute(
                "SELECT text, call_id, prompt_tokens, completion_tokens, finish_reason, attempts FROM replies"
                " WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return ChatReply(row[0], row[1], True, row[2], row[3], row[4], row[5] or 1)

    def put(self, key: str, request: dict, reply: ChatReply) -> ChatReply:
        """Store a reply unless one is stored already, and return the stored one (the first writer wins).

        The request is kept for inspection; it never holds credentials.
        """
        with self._lock, self.connection:
            self.connection.execute(
                "INSERT OR IGNORE INTO replies (key, call_id, request, text, prompt_tokens, completion_tokens,"
                " finish_reason, created, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, reply.call_id, json.dumps(request, sort_keys=True), reply.text, reply.prompt_tokens,
                 reply.completion_tokens, reply.finish_reason, time.time(), reply.attempts),
            )
            self.connection.execute("DELETE FROM failed_attempts WHERE key = ?", (key,))
        stored = self.get(key)
        return ChatReply(stored.text, stored.call_id, False, stored.prompt_tokens, stored.completion_tokens,
                         stored.finish_reason, stored.attempts)

    def failed_attempts(self, key: str) -> int:
        """Attempts spent on this key by earlier runs whose call failed after all retries."""
        with self._lock:
            row = self.connection.execute("SELECT attempts FROM failed_attempts WHERE key = ?", (key,)).fetchone()
        return row[0] if row else 0

    def record_failure(self, key: str, attempts: int, problem: str) -> None:
        """Add the attempts of a call that failed after all retries (no reply is stored)."""
        with self._lock, self.connection:
            self.connection.execute(
                "INSERT INTO failed_attempts VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET"
                " attempts = attempts + excluded.attempts, problem = excluded.problem", (key, attempts, problem))

    def __len__(self) -> int:
        with self._lock:
            return self.connection.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self.connection.close()
