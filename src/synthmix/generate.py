"""01_generate: ask an LLM for labelled responses and collect a pool per label and temperature.

The prompt has the paper's form: the rubric's persona as the system message, then the task,
the criteria for the label, the rubric's examples, and "draft K positive (or negative)
responses, one per line, no numbering". Replies are split into responses, cleaned, and
de-duplicated; every rejected line is counted by reason.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from synthmix import io
from synthmix.data import normalise_text
from synthmix.errors import GenerationError
from synthmix.llm_client import ChatClient, ReplyCache
from synthmix.params import GenerationParams
from synthmix.progress import report_progress
from synthmix.rubric import Rubric

LABEL_WORDS = {1: "positive", 0: "negative"}
POOL_COLUMNS = ["text", "label", "temperature", "model", "call_id", "seed"]


def build_messages(rubric: Rubric, label: int, count: int) -> list[dict]:
    """The chat messages asking for ``count`` responses that a coder would code ``label``."""
    word = LABEL_WORDS[label]
    criteria = rubric.positive_criteria if label == 1 else rubric.negative_criteria
    examples = "\n".join(rubric.examples(label))
    user = (
        f"Scenario: {rubric.scenario}\n\n"
        f"Question: {rubric.question}\n\n"
        f"A {word} response: {criteria}\n\n"
        f"Examples of {word} responses:\n{examples}\n\n"
        f"Draft {count} {word} responses to the question, one per line, no numbering."
    )
    return [{"role": "system", "content": rubric.persona}, {"role": "user", "content": user}]


_LEADER = re.compile(
    r"^\s*(?:[-*\u2022\u00b7>]+|\[\d{1,3}\]|\(?\d{1,3}\s*[.):\]]|\d{1,3}\s+-|[A-Za-z][.)](?=\s)"
    r"|(?:an?\s+)?(?:positive|negative)\s+response(?:\s*\d{1,3})?\s*:)\s*",
    re.IGNORECASE,
)
_INLINE_NUMBER = re.compile(r"\s+(?=\(?\d{1,2}[.)]\s)")
_NUMBERS = re.compile(r"(?:^|\s)\(?(\d{1,2})[.)]\s")


def split_inline_numbering(line: str) -> list[str]:
    """Split one long line holding "1. … 2. … 3. …" into its items (numbers must run in sequence)."""
    numbers = [int(n) for n in _NUMBERS.findall(line)]
    in_sequence = len(numbers) >= 2 and numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    return _INLINE_NUMBER.split(line) if in_sequence else [line]
_QUOTES = "\"'\u201c\u201d\u2018\u2019`"
_PREAMBLE = re.compile(
    r"^(here (are|is)|sure|certainly|of course|okay|ok,|positive responses|negative responses|responses?:|note:)",
    re.IGNORECASE,
)


def clean_line(line: str) -> str:
    """A reply line without its bullet or number, surrounding quotes and extra spaces."""
    previous = None
    while previous != line:
        previous = line
        line = _LEADER.sub("", line, count=1).strip()
        if len(line) >= 2 and line[0] in _QUOTES and line[-1] in _QUOTES:
            line = line[1:-1].strip()
    return " ".join(line.split())


def parse_reply(text: str, echo_lines: tuple[str, ...] = (), min_words: int = 3,
                truncated: bool = False) -> tuple[list[str], Counter]:
    """Split an LLM reply into candidate responses; count every rejected line by reason.

    Handles numbered, bulleted and quoted lines, blank lines, preamble and echoed prompt lines,
    and a reply that puts several numbered responses on one long line. With ``truncated`` (the
    reply hit max_tokens), its last line is cut off mid-way and is dropped.
    """
    rejects: Counter = Counter()
    if truncated:
        text, _, last = text.rstrip().rpartition("\n")
        if last.strip():
            rejects["truncated"] += 1
    echoes = {normalise_text(line) for line in echo_lines if line.strip()}
    responses: list[str] = []
    for raw_line in text.splitlines():
        for piece in split_inline_numbering(raw_line):
            line = clean_line(piece)
            if not line:
                rejects["blank"] += 1
            elif normalise_text(line) in echoes:
                rejects["echo_of_prompt"] += 1
            elif line.endswith(":") or _PREAMBLE.match(line):
                rejects["preamble"] += 1
            elif len(line.split()) < min_words:
                rejects["too_short"] += 1
            else:
                responses.append(line)
    return responses, rejects


@dataclass
class PoolReport:
    """What one pool's generation did: counts, rejects by reason, calls, tokens and time."""

    model: str
    temperature: float
    target_per_label: int
    collected: dict = field(default_factory=dict)
    calls: dict = field(default_factory=dict)
    rejects: dict = field(default_factory=dict)
    shortfall: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    seconds: float = 0.0
    server_start_s: float | None = None

    def as_dict(self) -> dict:
        """The report as a plain dict, with throughput of the calls actually made."""
        data = dict(self.__dict__)
        made_seconds = self.stats.get("seconds_in_calls", 0.0)
        made = self.stats.get("calls_made", 0)
        data["responses_per_minute"] = round(sum(self.collected.values()) / self.seconds * 60, 1) if self.seconds else None
        data["completion_tokens_per_second"] = (
            round(self.stats.get("completion_tokens", 0) / made_seconds, 1) if made and made_seconds else None
        )
        return data


def fill_pool(client: ChatClient, rubric: Rubric, label: int, temperature: float, settings: GenerationParams,
              report: PoolReport, on_call=None) -> list[dict]:
    """Call the LLM (seed, seed+1, …) until ``pool_size_per_label`` distinct responses for ``label`` exist.

    Stops after ``max_calls_per_label`` calls and records any shortfall in ``report``.
    """
    messages = build_messages(rubric, label, settings.responses_per_call)
    echo_lines = tuple(messages[1]["content"].splitlines()) + rubric.examples(1 - label)
    seen = {normalise_text(example) for example in rubric.examples(label)}
    rejects: Counter = Counter()
    rows: list[dict] = []
    calls = 0
    while len(rows) < settings.pool_size_per_label and calls < settings.max_calls_per_label:
        seed = settings.seed + calls
        calls += 1
        reply = client.complete(messages, temperature=temperature, seed=seed, max_tokens=settings.max_tokens)
        responses, line_rejects = parse_reply(reply.text, echo_lines, truncated=reply.finish_reason == "length")
        rejects.update(line_rejects)
        if not responses:
            rejects["call_without_responses"] += 1
        for text in responses:
            key = normalise_text(text)
            if key in seen:
                exact = any(row["text"] == text for row in rows) or text in rubric.examples(label)
                rejects["duplicate_exact" if exact else "duplicate_normalised"] += 1
                continue
            seen.add(key)
            rows.append({"text": text, "label": label, "temperature": temperature, "model": client.model,
                         "call_id": reply.call_id, "seed": seed})
            if len(rows) == settings.pool_size_per_label:
                break
        if on_call:
            on_call(len(rows))
    report.collected[LABEL_WORDS[label]] = len(rows)
    report.calls[LABEL_WORDS[label]] = calls
    report.rejects[LABEL_WORDS[label]] = dict(rejects)
    if len(rows) < settings.pool_size_per_label:
        report.shortfall[LABEL_WORDS[label]] = settings.pool_size_per_label - len(rows)
    return rows


def client_family(settings: GenerationParams) -> str:
    """The server family that goes into cache keys: the GGUF file's hash, or the API's base URL."""
    if settings.backend == "managed-llama-cpp":
        from synthmix.llm_server import gguf_path

        path = gguf_path(settings.model)
        return f"llama.cpp:{path.name}:{path.stat().st_size}"
    return f"openai:{settings.base_url or 'https://api.openai.com/v1'}"


@contextmanager
def open_client(settings: GenerationParams, cache_path: str | Path, http_client=None):
    """A cached ``ChatClient`` for the configured backend; a managed llama.cpp server is started
    on the first cache miss (so a fully cached rerun starts none) and stopped on exit."""
    cache = ReplyCache(cache_path)
    with ExitStack() as stack:
        stack.callback(cache.close)
        def connect() -> str | None:
            if settings.backend == "openai":
                return settings.base_url
            from synthmix.llm_server import ManagedLlamaServer, gguf_path

            server = ManagedLlamaServer(gguf_path(settings.model), alias=settings.model,
                                        threads=settings.server_threads, context_length=settings.context_length)
            stack.enter_context(server)
            client.servers.append(server)
            return server.base_url

        client = ChatClient(client_family(settings), settings.model, cache, connect, api_key_env=settings.api_key_env,
                            max_retries=settings.max_retries, timeout_s=settings.request_timeout_s,
                            http_client=http_client)
        yield client


def generate_pool(settings: GenerationParams, rubric: Rubric, temperature: float, cache_path: str | Path,
                  http_client=None) -> tuple[pd.DataFrame, dict]:
    """Generate the synthetic pool for one temperature: both labels, cached, de-duplicated.

    Returns the pool (columns ``POOL_COLUMNS``) and a report dict (counts, rejects by reason,
    calls made vs replayed, tokens, time). Raises ``GenerationError`` when calls keep failing.
    """
    began = time.monotonic()
    report = PoolReport(model=settings.model, temperature=temperature, target_per_label=settings.pool_size_per_label)
    rows: list[dict] = []
    target = 2 * settings.pool_size_per_label
    with open_client(settings, cache_path, http_client) as client:
        for label in (1, 0):
            done_before = len(rows)
            rows += fill_pool(client, rubric, label, temperature, settings, report,
                              on_call=lambda n, base=done_before: report_progress(base + n, target, f"label {label}"))
        report.stats = client.stats.as_dict()
        report.server_start_s = client.servers[0].started_in_s if client.servers else None
    report.seconds = round(time.monotonic() - began, 2)
    pool = pd.DataFrame(rows, columns=POOL_COLUMNS)
    if pool.empty:
        raise GenerationError(f"temperature {temperature}: no usable responses in {sum(report.calls.values())} calls; "
                              f"rejects: {report.rejects}")
    return pool, report.as_dict()


def save_pool(pool: pd.DataFrame, report: dict, output_dir: str | Path) -> None:
    """Write ``pool.parquet`` and ``generation_report.json`` atomically into ``output_dir``."""
    output_dir = Path(output_dir)
    io.write_table(output_dir / "pool.parquet", pool)
    io.write_json(output_dir / "generation_report.json", report)
