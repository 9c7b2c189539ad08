"""One client path to any chat LLM: the official ``openai`` package, cached on disk, with retries.

Every call is keyed by everything that determines its reply (server family, model, messages,
temperature, seed, max_tokens) and stored in SQLite, so a rerun replays the cache and makes no
call. Failed calls are retried with backoff and then raised: a failure never becomes data.
The API key is read from the environment when the client connects; it is never stored,
logged or put in a cache key.
"""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from synthmix.errors import GenerationError, InputError
from synthmix.io import stable_hash


def needs_api_key(base_url: str | None) -> bool:
    """Whether calls to ``base_url`` need an API key: OpenAI's own API does, local servers do not."""
    return base_url is None or "openai.com" in base_url


def scrub_secrets(text: str, api_key_env: str | None = "OPENAI_API_KEY") -> str:
    """``text`` with the API key, and anything shaped like one (sk-…), masked out."""
    key = os.environ.get(api_key_env or "", "")
    if key:
        text = text.replace(key, "[api key]")
    return re.sub(r"sk-[A-Za-z0-9_*.-]{6,}", "[api key]", text)


@dataclass(frozen=True)
class ChatReply:
    """One completion: its text, the id of the call that produced it, and whether it was replayed."""

    text: str
    call_id: str
    cached: bool
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


class ReplyCache:
    """An on-disk store of replies keyed by request hash (SQLite, committed after every put)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(self.path, timeout=60)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, call_id TEXT, request TEXT, text TEXT,"
            " prompt_tokens INTEGER, completion_tokens INTEGER, finish_reason TEXT, created REAL)"
        )
        self.connection.commit()

    def get(self, key: str) -> ChatReply | None:
        """The stored reply for a key, or None."""
        row = self.connection.execute(
            "SELECT text, call_id, prompt_tokens, completion_tokens, finish_reason FROM replies WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        return ChatReply(row[0], row[1], True, row[2], row[3], row[4])

    def put(self, key: str, request: dict, reply: ChatReply) -> None:
        """Store a reply (the request is kept for inspection; it never holds credentials)."""
        self.connection.execute(
            "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (key, reply.call_id, json.dumps(request, sort_keys=True), reply.text, reply.prompt_tokens,
             reply.completion_tokens, reply.finish_reason, time.time()),
        )
        self.connection.commit()

    def __len__(self) -> int:
        return self.connection.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        """Close the database."""
        self.connection.close()


@dataclass
class CallStats:
    """What a client did: calls made and replayed, tokens, retries and failures."""

    calls_made: int = 0
    calls_replayed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    failures: list[str] = field(default_factory=list)
    seconds_in_calls: float = 0.0

    def as_dict(self) -> dict:
        """The stats as a plain dict (for reports)."""
        return dict(self.__dict__)


class ChatClient:
    """A cached, retrying chat client over the ``openai`` package.

    ``family`` names the server family in cache keys (e.g. 'openai' or 'llama.cpp:<gguf hash>'),
    so a local server's changing port does not invalidate the cache. ``connect`` is called on the
    first cache miss and returns the base_url to use (None for api.openai.com); this lets a
    managed server start only when a call is really needed.
    """

    def __init__(self, family: str, model: str, cache: ReplyCache, connect: Callable[[], str | None],
                 api_key_env: str | None = "OPENAI_API_KEY", max_retries: int = 4, timeout_s: float = 120.0,
                 http_client=None):
        self.family = family
        self.model = model
        self.cache = cache
        self.connect = connect
        self.api_key_env = api_key_env
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.http_client = http_client
        self.stats = CallStats()
        self.servers: list = []  # servers ``connect`` started for this client (managed backends)
        self._client = None

    def _openai(self):
        if self._client is None:
            import openai

            base_url = self.connect()
            key = os.environ.get(self.api_key_env or "", "")
            if not key and needs_api_key(base_url):
                raise InputError(
                    f"generation: the OpenAI API needs a key in the environment variable {self.api_key_env}; "
                    "set it (never put it in a params file), or set generation.base_url to a local server"
                )
            self._client = openai.OpenAI(base_url=base_url, api_key=key or "not-needed", max_retries=0,
                                         timeout=self.timeout_s, http_client=self.http_client)
        return self._client

    def request_key(self, request: dict) -> str:
        """The cache key of a request: a hash of the family and everything sent."""
        return stable_hash({"family": self.family, **request}, length=32)

    def complete(self, messages: list[dict], temperature: float, seed: int, max_tokens: int,
                 response_format: dict | None = None) -> ChatReply:
        """One chat completion, replayed from the cache when it was made before."""
        request = {"model": self.model, "messages": messages, "temperature": temperature,
                   "seed": seed, "max_tokens": max_tokens}
        if response_format:
            request["response_format"] = response_format
        key = self.request_key(request)
        cached = self.cache.get(key)
        if cached is not None:
            self.stats.calls_replayed += 1
            return cached
        reply = self._call_with_retries(request)
        self.cache.put(key, request, reply)
        self.stats.calls_made += 1
        self.stats.prompt_tokens += reply.prompt_tokens
        self.stats.completion_tokens += reply.completion_tokens
        return reply

    def _call_with_retries(self, request: dict) -> ChatReply:
        import openai

        client = self._openai()
        last_problem = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats.retries += 1
                time.sleep(min(30.0, 2 ** (attempt - 1)) * (0.5 + random.random()))
            began = time.monotonic()
            try:
                completion = client.chat.completions.create(**request)
            except (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
                    openai.InternalServerError) as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
                continue
            except openai.APIStatusError as exc:  # 4xx other than 429: retrying will not help
                last_problem = f"{type(exc).__name__} (HTTP {exc.status_code}): {exc.message}"
                break
            finally:
                self.stats.seconds_in_calls += time.monotonic() - began
            choice = completion.choices[0]
            text = choice.message.content or ""
            refusal = getattr(choice.message, "refusal", None)
            if refusal or choice.finish_reason == "content_filter":
                last_problem = f"refused: {refusal or choice.finish_reason}"
                continue
            if not text.strip():
                last_problem = "empty reply"
                continue
            usage = completion.usage
            return ChatReply(text, completion.id or f"call-{uuid.uuid4().hex[:12]}", False,
                             getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0,
                             choice.finish_reason or "")
        problem = scrub_secrets(f"{self.model} call failed after {attempt + 1} attempt(s): {last_problem}", self.api_key_env)
        self.stats.failures.append(problem)
        raise GenerationError(problem)
