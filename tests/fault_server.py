"""A small OpenAI-compatible server for tests and benchmarks, with deterministic fault injection.

    from fault_server import fault_server

    with fault_server(delay_s=0.3, fault_rate=0.3) as server:
        settings = GenerationParams(backend="openai", base_url=server.base_url, model="fake-llm", ...)
        pool, report = generate_pool(settings, rubric, 0.7, cache_path)
        server.requests        # HTTP requests to /v1/chat/completions
        server.replies         # completions answered with usable content
        server.faults          # Counter: fault kind -> times injected
        server.max_in_flight   # most requests handled at once
        server.attempt_times   # request key -> arrival times (time.monotonic) of its attempts
        server.arrivals        # (time.monotonic, seed, attempt, fault or None) per completion request
        server.authorization   # set of Authorization header values seen

Endpoints (stdlib ``http.server`` in a thread, 127.0.0.1, a free port): ``GET /v1/models``,
``GET /stats`` (the counters as JSON) and ``POST /v1/chat/completions``. A completion answers after ``delay_s`` with content built from
the request alone, so a pool is checkable:

- a generation prompt (its last message contains "Draft K positive|negative responses") gets
  K numbered lines, each distinct per (seed, line, label, temperature, model), e.g.
  "3. Could you show me step 2 of try 17 for the positive case, please?"; every fifth seed also
  gets a meta line "Here are K responses:" first (which the parser must drop);
- a judge prompt (mentions "Score" and "JSON") gets ``{"Rationale": "...", "Score": 0|1}``,
  the score a hash of the graded response;
- anything else gets one line echoing the seed.

Faults: attempt ``a`` of a request (the a-th time the same body arrives, from 0) gets a fault
when ``a < max_faults_per_request`` and a hash of (body, a, seed of the server) falls under
``fault_rate`` (and, with ``only_seeds``, its seed is one of them); the kind is drawn the same
way from ``fault_kinds`` (all kinds by default):

- ``rate_limit``: HTTP 429 with ``Retry-After: retry_after`` (a JSON error body);
- ``server_error``: HTTP 500;
- ``hang``: no answer for ``hang_s`` (longer than the client's timeout), then the connection closes;
- ``malformed_json``: HTTP 200, content-type JSON, a truncated body;
- ``empty``: HTTP 200, a valid completion whose content is "";
- ``error_text``: HTTP 200, content "Error: rate limit exceeded. Please retry after 20s.";
- ``refusal``: HTTP 200, content "I'm sorry, but I can't help with that request.".

The server is bounded: past ``max_requests`` it answers 503 to everything, and after
``max_lifetime_s`` it stops itself. Leaving the ``with`` block stops it and ends any hang.

As a separate process (so its work does not share the client's interpreter), it prints its
base_url on the first line of stdout and serves until terminated or ``--lifetime`` runs out:

    python tests/fault_server.py --delay 0.3 [--fault-rate 0.3] [--kinds rate_limit,hang] [--lifetime 900]
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULT_KINDS = ("rate_limit", "server_error", "hang", "malformed_json", "empty", "error_text", "refusal")
ERROR_TEXT = "Error: rate limit exceeded. Please retry after 20s."
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
_DRAFT = re.compile(r"Draft (\d+) (positive|negative) responses", re.IGNORECASE)
_GRADED = re.compile(r"Response to grade:\n(.*?)\n\n", re.DOTALL)


def _unit_hash(*parts) -> float:
    """A number in [0, 1) fixed by ``parts``."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def reply_content(request: dict) -> str:
    """The content the server answers ``request`` with (deterministic; see the module docstring)."""
    messages = request.get("messages") or [{}]
    last = str(messages[-1].get("content", ""))
    seed = request.get("seed", 0)
    draft = _DRAFT.search(last)
    if draft:
        count, word = int(draft.group(1)), draft.group(2).lower()
        tag = f"{request.get('model')}|{request.get('temperature')}"
        lines = [f"Here are {count} responses:"] if seed % 5 == 0 else []
        for number in range(1, count + 1):
            variant = int(_unit_hash(tag, seed, number) * 1000)
            lines.append(f"{number}. Could you show me step {number} of try {seed} for the {word} case, "
                         f"idea {variant}, please?")
        return "\n".join(lines)
    if "Score" in last and "JSON" in last:
        graded = _GRADED.search(last)
        score = int(_unit_hash(graded.group(1) if graded else last) < 0.5)
        return json.dumps({"Rationale": "Graded by the fault server.", "Score": score})
    return f"A reply to seed {seed} from the fault server."


class FaultServer:
    """The running server: its ``base_url`` and what it has seen (see the module docstring)."""

    def __init__(self, delay_s: float = 0.0, fault_rate: float = 0.0, fault_kinds=FAULT_KINDS,
                 max_faults_per_request: int | None = None, retry_after: str = "1", hang_s: float = 30.0,
                 only_seeds=None, seed: int = 0, max_requests: int = 100_000, max_lifetime_s: float = 900.0):
        unknown = set(fault_kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; expected some of {FAULT_KINDS}")
        self.delay_s, self.fault_rate, self.fault_kinds = delay_s, fault_rate, tuple(fault_kinds)
        self.max_faults_per_request, self.retry_after, self.hang_s = max_faults_per_request, retry_after, hang_s
        self.seed, self.max_requests, self.max_lifetime_s = seed, max_requests, max_lifetime_s
        self.only_seeds = None if only_seeds is None else set(only_seeds)
        self.arrivals: list[tuple[float, int, int, str | None]] = []
        self.requests = 0
        self.replies = 0
        self.faults: Counter = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.attempt_times: dict[str, list[float]] = {}
        self.authorization: set[str] = set()
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible endpoint, http://127.0.0.1:PORT/v1."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def fault_for(self, key: str, attempt: int, request_seed: int | None = None) -> str | None:
        """The fault injected into attempt ``attempt`` of the request with body hash ``key``, or None."""
        if self.max_faults_per_request is not None and attempt >= self.max_faults_per_request:
            return None
        if self.only_seeds is not None and request_seed not in self.only_seeds:
            return None
        if not self.fault_kinds or _unit_hash(self.seed, key, attempt) >= self.fault_rate:
            return None
        return self.fault_kinds[int(_unit_hash(self.seed, key, attempt, "kind") * len(self.fault_kinds))]

    def start(self) -> "FaultServer":
        """Listen on a free port and serve in a daemon thread; a watchdog stops it after ``max_lifetime_s``."""
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        threading.Thread(target=self._watchdog, daemon=True).start()
        return self

    def _watchdog(self) -> None:
        if not self.stopped.wait(self.max_lifetime_s):
            self.stop()

    def counters(self) -> dict:
        """What the server has seen, as plain data."""
        with self._lock:
            return {"requests": self.requests, "replies": self.replies, "faults": dict(self.faults),
                    "max_in_flight": self.max_in_flight}

    def stop(self) -> None:
        """Stop serving (ends hangs at once); safe to call twice."""
        if self.stopped.is_set():
            return
        self.stopped.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> "FaultServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _completion(request: dict, key: str, content: str) -> dict:
    words = sum(len(str(m.get("content", "")).split()) for m in request.get("messages") or [])
    return {"id": f"chatcmpl-{key[:16]}", "object": "chat.completion", "created": 0,
            "model": request.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": words, "completion_tokens": len(content.split()),
                      "total_tokens": words + len(content.split())}}


def _handler(server: FaultServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, message: str, headers: dict | None = None) -> None:
            body = json.dumps({"error": {"message": message, "type": "fault_server", "code": status}}).encode()
            self._send(status, body, headers)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/stats":
                self._send(200, json.dumps(server.counters()).encode())
            elif self.path.rstrip("/") == "/v1/models":
                self._send(200, json.dumps({"object": "list", "data": [{"id": "fake-llm", "object": "model"}]}).encode())
            else:
                self._error(404, f"no route {self.path}")

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._error(404, f"no route {self.path}")
                return
            with server._lock:
                server.requests += 1
                over_budget = server.requests > server.max_requests
                key = hashlib.sha256(raw).hexdigest()
                times = server.attempt_times.setdefault(key, [])
                attempt = len(times)
                times.append(time.monotonic())
                if self.headers.get("Authorization"):
                    server.authorization.add(self.headers["Authorization"])
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                self._answer(raw, key, attempt, over_budget)
            finally:
                with server._lock:
                    server.in_flight -= 1

        def _answer(self, raw: bytes, key: str, attempt: int, over_budget: bool) -> None:
            if over_budget:
                self._error(503, f"fault server: more than {server.max_requests} requests")
                return
            try:
                request = json.loads(raw)
            except ValueError:
                self._error(400, "request body is not JSON")
                return
            fault = server.fault_for(key, attempt, request.get("seed"))
            with server._lock:
                server.arrivals.append((time.monotonic(), request.get("seed"), attempt, fault))
                if fault:
                    server.faults[fault] += 1
            if fault == "rate_limit":
                self._error(429, "Rate limit reached; slow down.", {"Retry-After": server.retry_after})
            elif fault == "server_error":
                self._error(500, "The server had an error while processing your request.")
            elif fault == "hang":
                server.stopped.wait(server.hang_s)
                self.close_connection = True
            elif server.stopped.wait(server.delay_s):
                self.close_connection = True
            elif fault == "malformed_json":
                self._send(200, json.dumps(_completion(request, key, "unfinished")).encode()[:57])
            elif fault in ("empty", "error_text", "refusal"):
                content = {"empty": "", "error_text": ERROR_TEXT, "refusal": REFUSAL_TEXT}[fault]
                self._send(200, json.dumps(_completion(request, key, content)).encode())
            else:
                with server._lock:
                    server.replies += 1
                self._send(200, json.dumps(_completion(request, key, reply_content(request))).encode())

    return Handler


@contextmanager
def fault_server(**settings):
    """Run a ``FaultServer`` (keyword arguments: see ``FaultServer``) for the ``with`` block."""
    server = FaultServer(**settings)
    with server:
        yield server



def main() -> None:
    """Serve as a separate process until terminated (see the module docstring)."""
    import argparse
    import signal
    import sys

    parser = argparse.ArgumentParser(description="a fault-injecting OpenAI-compatible test server")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--kinds", default=",".join(FAULT_KINDS), help="comma-separated fault kinds")
    parser.add_argument("--retry-after", default="1")
    parser.add_argument("--hang", type=float, default=30.0)
    parser.add_argument("--lifetime", type=float, default=900.0)
    args = parser.parse_args()
    server = FaultServer(delay_s=args.delay, fault_rate=args.fault_rate, fault_kinds=tuple(args.kinds.split(",")),
                         retry_after=args.retry_after, hang_s=args.hang, max_lifetime_s=args.lifetime).start()
    terminated = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: terminated.set())
    print(server.base_url, flush=True)
    try:
        while not terminated.wait(0.2) and not server.stopped.is_set():
            pass
    except KeyboardInterrupt:
        pass
    server.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
