"""One client path to any chat LLM: the official ``openai`` package, cached on disk, with retries.

Every call is keyed by everything that determines its reply (server family, model, messages,
temperature, seed, max_tokens) and stored in SQLite, so a rerun replays the cache and makes no
call. A reply is data only when it is one: the HTTP status, the JSON body and the content are
checked inside the retry loop, and a 429/5xx, a timeout, a malformed body, an empty or
non-text content, a refusal or an error message returned as content is retried with backoff
(honouring ``Retry-After``, shared by every call in flight) and then raised; it is never cached
and never becomes a row. ``complete_many`` runs calls side by side in a bounded thread pool and
hands the replies back in call order, so what is built from them does not depend on the
concurrency. The API key is read from the environment when the client connects; it is never
stored, logged or put in a cache key.
"""

from __future__ import annotations

import email.utils
import os
import queue
import random
import re
import threading
import time
import uuid
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from synthmix.core.io import stable_hash
from synthmix.errors import GenerationError, InputError
from synthmix.llm.cache import ChatReply, ReplyCache

MAX_RETRY_AFTER_S = 600.0  # a server asking for a longer pause is waited for this long, then retried


def needs_api_key(base_url: str | None) -> bool:
    """Whether calls to ``base_url`` need an API key: OpenAI's own API does, local servers do not."""
    return base_url is None or "openai.com" in base_url


def scrub_secrets(text: str, api_key_env: str | None = "OPENAI_API_KEY") -> str:
    """``text`` with the API key, and anything shaped like one (sk-…), masked out."""
    key = os.environ.get(api_key_env or "", "")
    if key:
        text = text.replace(key, "[api key]")
    return re.sub(r"sk-[A-Za-z0-9_*.-]{6,}", "[api key]", text)


_ERROR_TEXT = re.compile(
    r"^\W*(?:error|api[ _]error|server[ _]error|internal[ _]server[ _]error|bad[ _]gateway|service[ _]unavailable"
    r"|gateway[ _]time-?out|too many requests|rate[ _]limit(?:ed)?|quota exceeded|request failed|exception)\b"
    r"|\brate[ _]limit(?:s|ed)?\s+(?:exceeded|reached|hit)\b|\bplease\s+(?:retry|try again)\s+(?:after|later|in)\b"
    r"|\b(?:insufficient|exceeded your (?:current )?)quota\b|\bmodel (?:is )?overloaded\b",
    re.IGNORECASE,
)
_REFUSAL = re.compile(
    r"^\W*(?:(?:i'?m|i am)\s+(?:sorry|afraid)|sorry|i apologi[sz]e|unfortunately)\b[^.!?\n]{0,40}?"
    r"\b(?:can(?:not|'t|\u2019t)|can not|unable to|won'?t|will not|not able to)\s+"
    r"(?:help|assist|comply|provide|fulfil+|create|generate|write|produce|do that|complete)"
    r"|^\W*as an ai(?: language model)?\b|^\W*i can(?:not|'t|\u2019t) (?:help|assist) with (?:that|this)",
    re.IGNORECASE,
)


def looks_like_error_text(text: str) -> bool:
    """Whether a line reads like an API error message ("Error: rate limit exceeded. Please retry after 20s.")."""
    return bool(_ERROR_TEXT.search(text.strip()))


def content_problem(content) -> str | None:
    """Why a completion's content is not a reply (empty, not text, an error message or a refusal), or None.

    Error messages and refusals are recognised when they make up the reply (at most two lines),
    so a reply of responses that merely mentions an error is not mistaken for one.
    """
    if not isinstance(content, str):
        return f"non-text content ({type(content).__name__})"
    text = content.strip()
    if not text:
        return "empty content"
    if "\ufffd" in text or any(ord(ch) < 32 and ch not in "\n\r\t" for ch in text):
        return "non-text content (binary or undecodable bytes)"
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) <= 2:
        if text.startswith("{") and '"error"' in text.lower():
            return "error object as content"
        if looks_like_error_text(text):
            return "error text as content"
        if _REFUSAL.search(text):
            return "refusal"
    return None


def managed_server_timeout(max_tokens: int, floor_s: float, threads: int, load_per_core: float | None = None) -> float:
    """The request timeout (s) for a call to a local CPU llama.cpp server: never below ``floor_s``.

    It leaves room for ``max_tokens`` at a pessimistic 1 token/s per server thread (SmolLM2-135M
    runs about 40 tokens/s per thread here), plus 30 s for the prompt, times the machine's load
    per core (1-minute load average, unless given) when it is above 1, so a busy machine slows
    the call rather than failing it.
    """
    if load_per_core is None:
        try:
            load_per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
        except OSError:
            load_per_core = 1.0
    return max(floor_s, (30.0 + max_tokens / max(1, threads)) * max(1.0, load_per_core))


@dataclass
class CallStats:
    """What a client did: calls made and replayed, tokens, retries by reason, failures and waits.

    ``retries`` counts the retries behind every reply handed to the caller, those of replayed
    replies included (read from the cache), so a rerun reports the true number;
    ``retries_this_run`` counts every retry this run made (calls started ahead and not used,
    or failed, included). ``calls_unused``: calls made ahead of a consumer that stopped first.
    """

    calls_made: int = 0
    calls_replayed: int = 0
    calls_unused: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    retries_this_run: int = 0
    retry_reasons: dict = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    seconds_in_calls: float = 0.0
    seconds_paused: float = 0.0
    max_concurrency: int = 1

    def as_dict(self) -> dict:
        """The stats as a plain dict (for reports)."""
        data = dict(self.__dict__)
        data["retry_reasons"] = dict(self.retry_reasons)
        return data


class BackoffGate:
    """A pause shared by every call in flight: when the server says it is saturated (429/503), nobody
    sends until the pause it asked for is over."""

    def __init__(self):
        self._lock = threading.Lock()
        self._resume_at = 0.0

    def hold(self, seconds: float) -> None:
        """Make every caller wait at least ``seconds`` from now."""
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    def wait(self, cancelled: threading.Event) -> float:
        """Block until the pause is over (or ``cancelled`` is set); return the seconds waited."""
        began = time.monotonic()
        while True:
            with self._lock:
                remaining = self._resume_at - time.monotonic()
            if remaining <= 0 or cancelled.wait(remaining):
                return time.monotonic() - began


class CallCancelled(Exception):
    """A call abandoned because its caller no longer needs it (see ``ChatClient.complete_many``)."""


class _Retry(Exception):
    """One failed attempt that is worth retrying: why, and how long the server asked us to wait."""

    def __init__(self, kind: str, detail: str = "", retry_after_s: float | None = None, saturated: bool = False):
        super().__init__(kind)
        self.kind = kind
        self.problem = f"{kind}: {detail}" if detail else kind
        self.retry_after_s = retry_after_s
        self.saturated = saturated


def retry_after_seconds(headers) -> float | None:
    """The pause a response's ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date) header asks for."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name) if headers is not None else None
        if not value:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            try:
                return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                continue
    return None


_NEVER = threading.Event()  # a cancellation that never comes (single calls)


class ChatClient:
    """A cached, retrying chat client over the ``openai`` package, safe to call from several threads.

    ``family`` names the server family in cache keys (e.g. 'openai' or 'llama.cpp:<gguf hash>'),
    so a local server's changing port does not invalidate the cache. ``connect`` is called on the
    first cache miss and returns the base_url to use (None for api.openai.com), or a list of
    base_urls of servers that each answer one request at a time and give the same reply to the
    same request (managed llama.cpp servers): each call then takes a server to itself. This lets
    a managed server start only when a call is really needed. ``timeout_for(max_tokens)``, when
    set, gives the request timeout of a call (a managed CPU server's scales with max_tokens);
    otherwise it is ``timeout_s``. ``max_concurrency`` caps ``complete_many`` (the number of
    managed servers).
    """

    def __init__(self, family: str, model: str, cache: ReplyCache, connect: Callable[[], str | list[str] | None],
                 api_key_env: str | None = "OPENAI_API_KEY", max_retries: int = 4, timeout_s: float = 120.0,
                 http_client=None, backoff_s: float = 1.0, max_concurrency: int | None = None,
                 timeout_for: Callable[[int], float] | None = None):
        self.family = family
        self.model = model
        self.cache = cache
        self.connect = connect
        self.api_key_env = api_key_env
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.timeout_for = timeout_for
        self.http_client = http_client
        self.backoff_s = backoff_s
        self.max_concurrency = max_concurrency
        self.stats = CallStats()
        self.servers: list = []  # servers ``connect`` started for this client (managed backends)
        self.gate = BackoffGate()
        self._clients: list | None = None  # one openai client per base_url
        self._idle: queue.SimpleQueue | None = None  # several servers: the clients not serving a call now
        self._connect_lock = threading.Lock()
        self._stats_lock = threading.Lock()

    def _openai(self) -> list:
        """The openai clients, one per base_url ``connect`` gave (connecting on the first call)."""
        with self._connect_lock:
            if self._clients is None:
                import openai

                connected = self.connect()
                base_urls = list(connected) if isinstance(connected, (list, tuple)) else [connected]
                key = os.environ.get(self.api_key_env or "", "")
                if not key and any(needs_api_key(url) for url in base_urls):
                    raise InputError(
                        f"generation: the OpenAI API needs a key in the environment variable {self.api_key_env}; "
                        "set it (never put it in a params file), or set generation.base_url to a local server"
                    )
                clients = [openai.OpenAI(base_url=url, api_key=key or "not-needed", max_retries=0,
                                         timeout=self.timeout_s, http_client=self.http_client) for url in base_urls]
                if len(clients) > 1:
                    self._idle = queue.SimpleQueue()
                    for client in clients:
                        self._idle.put(client)
                self._clients = clients
            return self._clients

    def _take_client(self):
        """A client for one call: the only one (shared by every thread), or an idle server's to itself."""
        clients = self._openai()
        return clients[0] if self._idle is None else self._idle.get()

    def _give_back(self, client) -> None:
        if self._idle is not None:
            self._idle.put(client)

    def request_key(self, request: dict) -> str:
        """The cache key of a request: a hash of the family and everything sent."""
        return stable_hash({"family": self.family, **request}, length=32)

    def complete(self, messages: list[dict], temperature: float, seed: int, max_tokens: int,
                 response_format: dict | None = None) -> ChatReply:
        """One chat completion, replayed from the cache when it was made before."""
        request, key = self._request(messages, temperature, seed, max_tokens, response_format)
        cached = self.cache.get(key)
        return self._replayed(cached) if cached is not None else self._used(self._make_call(request, key, _NEVER))

    def complete_many(self, requests: Iterable[dict], concurrency: int = 1,
                      worth_starting: Callable[[], int] | None = None) -> Iterator[ChatReply]:
        """The replies to ``requests`` (keyword arguments of ``complete``), in request order.

        Up to ``concurrency`` calls (capped by ``max_concurrency``) run side by side. Requests are
        read lazily and cached replies are handed back at once; only a cache miss starts calls
        ahead of the consumer, so a rerun that needs only cached replies makes no call, and
        ``worth_starting()``, when given, caps how many calls ahead the consumer still expects to
        need (so few calls are wasted when it stops). A consumer that stops iterating (``break``,
        or closing the iterator) stops the calls: those not started are cancelled, those retrying
        give up, those in flight are awaited (and cached). A failed call raises where the
        sequential loop would raise it.
        """
        concurrency = max(1, min(concurrency, self.max_concurrency or concurrency))
        with self._stats_lock:
            self.stats.max_concurrency = max(self.stats.max_concurrency, concurrency)
        if concurrency == 1:
            for request in requests:
                yield self.complete(**request)
            return
        cancelled = threading.Event()
        pending = iter(requests)
        window: deque[Future] = deque()  # calls started ahead of the consumer, oldest first
        executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="synthmix-llm")

        def limit() -> int:
            return max(1, min(concurrency, worth_starting() if worth_starting else concurrency))

        def top_up() -> None:
            while len(window) < limit():
                arguments = next(pending, None)
                if arguments is None:
                    return
                request, key = self._request(**arguments)
                cached = self.cache.get(key)
                window.append(Future() if cached is not None else
                              executor.submit(self._make_call, request, key, cancelled))
                if cached is not None:
                    window[-1].set_result(cached)
        try:
            while True:
                if not window:
                    arguments = next(pending, None)
                    if arguments is None:
                        break
                    request, key = self._request(**arguments)
                    cached = self.cache.get(key)
                    if cached is not None:
                        yield self._replayed(cached)
                        continue
                    window.append(executor.submit(self._make_call, request, key, cancelled))
                    top_up()
                reply = window.popleft().result()
                if window:
                    top_up()
                yield self._replayed(reply) if reply.cached else self._used(reply)
        finally:
            cancelled.set()
            for future in window:
                future.cancel()
            executor.shutdown(wait=True)
            unused = sum(1 for f in window if not f.cancelled() and f.exception() is None and not f.result().cached)
            with self._stats_lock:
                self.stats.calls_unused += unused

    def _request(self, messages, temperature, seed, max_tokens, response_format=None) -> tuple[dict, str]:
        request = {"model": self.model, "messages": messages, "temperature": temperature,
                   "seed": seed, "max_tokens": max_tokens}
        if response_format:
            request["response_format"] = response_format
        return request, self.request_key(request)

    def _replayed(self, reply: ChatReply) -> ChatReply:
        self._count(calls_replayed=1)
        return self._used(reply)

    def _used(self, reply: ChatReply) -> ChatReply:
        """Count the retries behind a reply handed to the caller (made now or replayed)."""
        self._count(retries=reply.attempts - 1)
        return reply

    def _make_call(self, request: dict, key: str, cancelled: threading.Event) -> ChatReply:
        reply = self._call_with_retries(request, key, cancelled)
        stored = self.cache.put(key, request, reply)
        self._count(calls_made=1, prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens)
        return stored

    def _attempt(self, client, request: dict) -> ChatReply:
        """One HTTP call; raise ``_Retry`` when the reply is not usable and trying again may help."""
        import openai

        timeout = self.timeout_for(request["max_tokens"]) if self.timeout_for else self.timeout_s
        try:
            completion = client.chat.completions.create(**request, timeout=timeout)
        except openai.APITimeoutError:
            raise _Retry("timeout", f"no reply within {timeout:.0f} s") from None
        except openai.APIConnectionError as exc:
            raise _Retry("connection error", str(exc)) from None
        except openai.APIStatusError as exc:
            status = exc.status_code
            if status in (408, 409, 425, 429) or status >= 500:
                raise _Retry(f"HTTP {status}", "", retry_after_seconds(exc.response.headers),
                             saturated=status in (429, 503)) from None
            raise  # other 4xx: retrying will not help
        except (ValueError, openai.APIResponseValidationError) as exc:  # a 200 whose body is not valid JSON
            raise _Retry("malformed JSON body", type(exc).__name__) from None
        choices = getattr(completion, "choices", None)
        if not isinstance(choices, list) or not choices or getattr(choices[0], "message", None) is None:
            raise _Retry("malformed body (no choices)")
        choice = choices[0]
        refusal = getattr(choice.message, "refusal", None)
        if refusal or choice.finish_reason == "content_filter":
            raise _Retry("refusal")
        problem = content_problem(choice.message.content)
        if problem:
            raise _Retry(problem)
        usage = getattr(completion, "usage", None)
        return ChatReply(choice.message.content, getattr(completion, "id", None) or f"call-{uuid.uuid4().hex[:12]}",
                         False, getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0,
                         choice.finish_reason or "")

    def _call_with_retries(self, request: dict, key: str, cancelled: threading.Event) -> ChatReply:
        client = self._take_client()
        try:
            return self._call_on(client, request, key, cancelled)
        finally:
            self._give_back(client)

    def _call_on(self, client, request: dict, key: str, cancelled: threading.Event) -> ChatReply:
        import openai

        last_problem = ""
        attempts = 0
        while attempts <= self.max_retries:
            waited = self.gate.wait(cancelled)
            if cancelled.is_set():
                raise CallCancelled()
            attempts += 1
            began = time.monotonic()
            try:
                reply = self._attempt(client, request)
            except _Retry as retry:
                last_problem = retry.problem
                self._count(seconds_in_calls=time.monotonic() - began, seconds_paused=waited,
                            reason=retry.kind)
                if attempts > self.max_retries:
                    break
                self._count(retries_this_run=1)
                self._pause(retry, attempts, cancelled)
                continue
            except openai.APIStatusError as exc:  # 4xx other than 408/409/425/429: retrying will not help
                last_problem = f"{type(exc).__name__} (HTTP {exc.status_code}): {exc.message}"
                break
            seconds = time.monotonic() - began
            self._count(seconds_in_calls=seconds, seconds_paused=waited)
            prior = self.cache.failed_attempts(key)
            return ChatReply(reply.text, reply.call_id, False, reply.prompt_tokens, reply.completion_tokens,
                             reply.finish_reason, prior + attempts, round(seconds, 4))
        problem = scrub_secrets(f"{self.model} call (seed {request['seed']}) failed after {attempts} attempt(s): "
                                f"{last_problem}", self.api_key_env)
        self.cache.record_failure(key, attempts, problem)
        with self._stats_lock:
            self.stats.failures.append(problem)
        raise GenerationError(problem)

    def _pause(self, retry: "_Retry", attempts: int, cancelled: threading.Event) -> None:
        """Wait before the next attempt: what Retry-After asked for, else exponential backoff with jitter.
        A saturated server (429/503) pauses every call in flight (the shared gate)."""
        if retry.retry_after_s is not None:
            pause = min(retry.retry_after_s, MAX_RETRY_AFTER_S)
        else:
            pause = min(30.0, self.backoff_s * 2 ** (attempts - 1)) * (0.5 + random.random())
        if retry.saturated:
            self.gate.hold(pause)
        elif cancelled.wait(pause):
            raise CallCancelled()

    def _count(self, reason: str | None = None, **amounts) -> None:
        with self._stats_lock:
            for name, amount in amounts.items():
                setattr(self.stats, name, getattr(self.stats, name) + amount)
            if reason:
                self.stats.retry_reasons[reason] += 1
