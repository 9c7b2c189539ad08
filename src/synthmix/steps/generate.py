"""01_generate: ask an LLM for labelled responses and collect a pool per label and temperature.

The prompt has the paper's form: the rubric's persona as the system message, then the task,
the criteria for the label, the rubric's examples, and "draft K positive (or negative)
responses, one per line, no numbering". Replies are split into responses, cleaned, and
de-duplicated; every rejected line is counted by reason.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from synthmix.core import io
from synthmix.core.progress import report_progress
from synthmix.data.loading import normalise_text
from synthmix.data.rubric import Rubric
from synthmix.errors import GenerationError, InputError
from synthmix.llm.cache import ReplyCache
from synthmix.llm.client import ChatClient, managed_server_timeout
from synthmix.params import GenerationParams
from synthmix.steps.parsing import parse_reply

LABEL_WORDS = {1: "positive", 0: "negative"}
POOL_COLUMNS = ["text", "label", "item", "temperature", "model", "call_id", "seed"]
#: calls.parquet: one row per LLM call a pool used (see /work/notes/costs-contract.md and the README).
CALL_COLUMNS = ["kind", "label", "item", "seed", "model", "temperature", "max_tokens", "responses_per_call",
                "prompt_tokens", "completion_tokens", "seconds", "replayed", "responses", "call_id"]


def build_messages(rubric: Rubric, label: int, count: int, examples: list[str] | None = None) -> list[dict]:
    """The chat messages asking for ``count`` responses that a coder would code ``label``.

    ``examples`` replaces the rubric's example responses (e.g. human training responses).
    """
    word = LABEL_WORDS[label]
    criteria = rubric.positive_criteria if label == 1 else rubric.negative_criteria
    examples = "\n".join(examples if examples is not None else rubric.examples(label))
    user = (
        f"Scenario: {rubric.scenario}\n\n"
        f"Question: {rubric.question}\n\n"
        f"A {word} response: {criteria}\n\n"
        f"Examples of {word} responses:\n{examples}\n\n"
        f"Draft {count} {word} responses to the question, one per line, no numbering."
    )
    return [{"role": "system", "content": rubric.persona}, {"role": "user", "content": user}]


@dataclass
class PoolReport:
    """What one pool's generation did: counts, rejects by reason, calls, tokens and time."""

    model: str
    temperature: float
    targets: dict = field(default_factory=dict)
    collected: dict = field(default_factory=dict)
    calls: dict = field(default_factory=dict)
    rejects: dict = field(default_factory=dict)
    shortfall: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    concurrency: int = 1
    seconds: float = 0.0
    server_start_s: float | None = None
    servers: int = 0
    by_item: dict = field(default_factory=dict)
    call_records: list = field(default_factory=list)  # one dict per call used (CALL_COLUMNS), in call order

    def as_dict(self) -> dict:
        """The report as a plain dict, with the generator's throughput: responses and completion tokens
        per second of the calls the pool used, timed when each call was made (a replayed call counts with
        the stored seconds of its original call, so a cached rerun reports the original rate)."""
        data = {name: value for name, value in self.__dict__.items() if name != "call_records"}
        data["call_records"] = list(self.call_records)
        records = self.call_records
        replayed = sum(1 for r in records if r["replayed"])
        untimed = sum(1 for r in records if r["seconds"] is None or r["seconds"] != r["seconds"])
        seconds = sum(r["seconds"] for r in records if r["seconds"] is not None and r["seconds"] == r["seconds"])
        data["calls_replayed_in_pool"] = replayed
        data["seconds_of_calls"] = round(seconds, 2) if records and not untimed else None
        if not records:
            basis = "no calls"
        elif untimed:
            basis = (f"unknown: {untimed} replayed call{'s' if untimed != 1 else ''} came from a cache written before "
                     "call times were stored")
        elif replayed == len(records):
            basis = "the original calls, replayed from the cache"
        elif replayed:
            basis = f"{len(records) - replayed} calls made in this run and the original calls of {replayed} replayed"
        else:
            basis = "calls made in this run"
        data["rate_basis"] = basis
        timed = bool(records) and not untimed and seconds > 0
        data["responses_per_minute"] = round(sum(self.collected.values()) / seconds * 60, 1) if timed else None
        tokens = sum(r["completion_tokens"] for r in records)
        data["completion_tokens_per_second"] = round(tokens / seconds, 1) if timed else None
        return data


def fill_pool(client: ChatClient, rubric: Rubric, label: int, temperature: float, settings: GenerationParams,
              report: PoolReport, target: int, on_call=None, human_examples: list[str] | None = None) -> list[dict]:
    """Call the LLM (seed, seed+1, …) until ``target`` distinct responses for ``label`` exist.

    Up to ``settings.concurrency`` calls run side by side, but replies are used in call order
    and the loop stops where the sequential one would, so the pool does not depend on the
    concurrency. Stops after ``max_calls_per_label`` calls and records any shortfall in ``report``.
    With ``human_examples`` (human training responses coded ``label``), each call's prompt shows
    ``settings.examples_per_call`` of them, drawn afresh with the call's seed; a reply that copies
    one is a duplicate, never a synthetic response.
    """
    messages = build_messages(rubric, label, settings.responses_per_call)
    echo_lines = (rubric.question, *messages[1]["content"].splitlines(), *rubric.examples(1 - label))
    seen = {normalise_text(example) for example in (*rubric.examples(label), *(human_examples or ()))}

    def messages_for(seed: int) -> list[dict]:
        if not human_examples:
            return messages
        picks = np.random.default_rng(seed).choice(len(human_examples), min(settings.examples_per_call,
                                                                            len(human_examples)), replace=False)
        return build_messages(rubric, label, settings.responses_per_call, [human_examples[i] for i in picks])

    rejects: Counter = Counter()
    rows: list[dict] = []
    calls = 0
    requests = ({"messages": messages_for(settings.seed + number), "temperature": temperature, "seed": settings.seed + number,
                 "max_tokens": settings.max_tokens} for number in range(settings.max_calls_per_label))

    def calls_worth_starting() -> int:  # calls still needed at the distinct responses per call seen so far
        per_call = len(rows) / calls if calls else settings.responses_per_call
        return math.ceil((target - len(rows)) / max(per_call, 1.0))

    with closing(client.complete_many(requests, settings.concurrency, calls_worth_starting)) as replies:
        while len(rows) < target and calls < settings.max_calls_per_label:
            reply = next(replies)
            seed = settings.seed + calls
            calls += 1
            responses, line_rejects = parse_reply(reply.text, echo_lines, truncated=reply.finish_reason == "length")
            rejects.update(line_rejects)
            if not responses:
                rejects["call_without_responses"] += 1
            rows_before = len(rows)
            for text in responses:
                key = normalise_text(text)
                if key in seen:
                    exact = any(row["text"] == text for row in rows) or text in rubric.examples(label)
                    rejects["duplicate_exact" if exact else "duplicate_normalised"] += 1
                    continue
                seen.add(key)
                rows.append({"text": text, "label": label, "temperature": temperature, "model": client.model,
                             "call_id": reply.call_id, "seed": seed})
                if len(rows) == target:
                    break
            report.call_records.append({
                "kind": "generate", "label": label, "item": "", "seed": seed, "model": client.model,
                "temperature": temperature, "max_tokens": settings.max_tokens,
                "responses_per_call": settings.responses_per_call, "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens, "seconds": reply.seconds, "replayed": reply.cached,
                "responses": len(rows) - rows_before, "call_id": reply.call_id})
            if on_call:
                on_call(len(rows))
    report.targets[LABEL_WORDS[label]] = target
    report.collected[LABEL_WORDS[label]] = len(rows)
    report.calls[LABEL_WORDS[label]] = calls
    report.rejects[LABEL_WORDS[label]] = dict(rejects)
    if len(rows) < target:
        report.shortfall[LABEL_WORDS[label]] = target - len(rows)
    return rows


#: Marks the replies of managed servers whose reply is a function of the request (``llm.llama_serve``: the cache
#: reused in whole n_batch blocks only): replies cached before, by servers that reused any prefix of the previous
#: request, depended on what the server had answered earlier, and are not replayed as if they did not.
MANAGED_SERVING = "request-determined"


def client_family(settings: GenerationParams) -> str:
    """The server family that goes into cache keys: the GGUF file (name and size) and how it is
    served, or the API's base URL."""
    if settings.backend == "managed-llama-cpp":
        from synthmix.llm.server import gguf_path

        path = gguf_path(settings.model)
        return f"llama.cpp:{path.name}:{path.stat().st_size}:{MANAGED_SERVING}"
    return f"openai:{settings.base_url or 'https://api.openai.com/v1'}"


def managed_servers(settings: GenerationParams, step_threads: int | None = None) -> tuple[int, int]:
    """``(servers, threads each)`` of the managed llama.cpp backend.

    A llama.cpp server answers one request at a time, so ``generation.concurrency`` calls run on
    that many servers, at most one per thread of ``generation.server_threads`` (default: the
    step's threads, ``step_threads`` or else this process's, else every core), the threads shared
    out evenly. Every server's reply is a function of the request (``llm.llama_serve``), so a reply
    does not depend on which server gave it.
    """
    from synthmix.llm.server import available_threads

    threads = settings.server_threads or step_threads or available_threads()
    servers = max(1, min(settings.concurrency, threads))
    return servers, max(1, threads // servers)


@contextmanager
def open_client(settings: GenerationParams, cache_path: str | Path, http_client=None):
    """A cached ``ChatClient`` for the configured backend; managed llama.cpp servers are started
    on the first cache miss (so a fully cached rerun starts none) and stopped on exit.

    A managed backend runs ``managed_servers(settings)`` servers, one call at a time on each, with
    a request timeout scaled to max_tokens and the machine (``managed_server_timeout``); an
    OpenAI-compatible server gets ``request_timeout_s`` and up to ``concurrency`` calls in flight.
    Either way ``complete_many`` hands the replies back in call order.
    """
    cache = ReplyCache(cache_path)
    managed = settings.backend == "managed-llama-cpp"
    servers, threads_each = managed_servers(settings) if managed else (None, None)
    with ExitStack() as stack:
        stack.callback(cache.close)
        def connect() -> str | list[str] | None:
            if not managed:
                return settings.base_url
            from synthmix.llm.server import ManagedLlamaServer, gguf_path

            for _ in range(servers):
                server = ManagedLlamaServer(gguf_path(settings.model), alias=settings.model, threads=threads_each,
                                            context_length=settings.context_length)
                stack.enter_context(server)
                client.servers.append(server)
            return [server.base_url for server in client.servers]

        def managed_timeout(max_tokens: int) -> float:
            return managed_server_timeout(max_tokens, settings.request_timeout_s, threads_each)

        client = ChatClient(client_family(settings), settings.model, cache, connect, api_key_env=settings.api_key_env,
                            max_retries=settings.max_retries, timeout_s=settings.request_timeout_s,
                            http_client=http_client, max_concurrency=servers,
                            timeout_for=managed_timeout if managed else None)
        yield client


def pool_targets(settings: GenerationParams, targets: dict[int, int] | None) -> dict[int, int]:
    """Responses wanted per label (1, 0): ``targets`` when given, else ``pool_size_per_label`` for both."""
    if targets is None:
        if not isinstance(settings.pool_size_per_label, int):
            raise InputError("generation.pool_size_per_label: 'auto' needs the targets the pipeline derives "
                             "from the experiments; pass targets={1: n, 0: m} or set a number")
        return {1: settings.pool_size_per_label, 0: settings.pool_size_per_label}
    wrong = {label: n for label, n in targets.items() if label not in (0, 1) or not isinstance(n, int) or n < 0}
    if wrong or set(targets) != {0, 1}:
        raise InputError(f"generation targets: expected a count >= 0 for each of labels 1 and 0, got {targets}")
    return dict(targets)


def generate_pool(settings: GenerationParams, rubric: Rubric, temperature: float, cache_path: str | Path,
                  http_client=None, targets: dict[int, int] | None = None,
                  item_targets: dict[str, dict[int, int]] | None = None,
                  human_examples: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """Generate the synthetic pool for one temperature: both labels, cached, de-duplicated.

    ``targets`` maps label (1, 0) to the responses wanted (default: ``pool_size_per_label`` each).
    With ``item_targets`` (item id -> {label: wanted}), every item gets its own responses, written
    to its own question (``rubric.for_item``), and the item is recorded on each row; the report
    then has the counts per item in ``by_item``. With ``human_examples`` (human training responses:
    text, label, item), prompts show examples drawn from them instead of the rubric's
    (``generation.examples: human_train``; pass only a replicate's training split). Returns the pool (columns ``POOL_COLUMNS``) and
    a report dict (targets, counts, rejects by reason, calls made vs replayed, retries, tokens,
    time). Raises ``GenerationError`` when calls keep failing.
    """
    began = time.monotonic()
    per_item = item_targets or {"": pool_targets(settings, targets)}
    report = PoolReport(model=settings.model, temperature=temperature)
    rows: list[dict] = []
    total = sum(sum(wanted.values()) for wanted in per_item.values())
    with open_client(settings, cache_path, http_client) as client:
        report.concurrency = min(settings.concurrency, client.max_concurrency or settings.concurrency)
        for item, wanted in per_item.items():
            part = report if not item_targets else PoolReport(model=settings.model, temperature=temperature)
            task = rubric.for_item(item) if item_targets else rubric
            for label in (1, 0):
                done_before = len(rows)
                what = f"item {item}, label {label}" if item_targets else f"label {label}"
                rows += [{**row, "item": item} for row in fill_pool(
                    client, task, label, temperature, settings, part, target=int(wanted[label]),
                    on_call=lambda n, base=done_before, what=what: report_progress(base + n, total, what),
                    human_examples=_examples_of(human_examples, label, item if item_targets else None))]
            if item_targets:
                report.call_records += [{**record, "item": item} for record in part.call_records]
                _add_item_report(report, item, part)
        report.stats = client.stats.as_dict()
        report.stats["cache_checksum_mismatches"] = client.cache.mismatches  # replies called again, never data
        report.server_start_s = round(sum(server.started_in_s for server in client.servers), 2) if client.servers else None
        report.servers = len(client.servers)
    report.seconds = round(time.monotonic() - began, 2)
    pool = pd.DataFrame(rows, columns=POOL_COLUMNS)
    if pool.empty and total:
        raise GenerationError(f"temperature {temperature}: no usable responses in {sum(report.calls.values())} calls; "
                              f"rejects: {report.rejects}")
    return pool, report.as_dict()


def _examples_of(human: pd.DataFrame | None, label: int, item: str | None) -> list[str] | None:
    """The human responses coded ``label`` (of ``item``, for a multi-item data set) to show as examples."""
    if human is None:
        return None
    rows = human[human["label"] == label]
    if item is not None and "item" in rows.columns:
        rows = rows[rows["item"].astype(str) == str(item)]
    return list(rows["text"]) or None


def _add_item_report(report: PoolReport, item: str, part: PoolReport) -> None:
    """Add one item's counts to the pool's totals and keep them under ``report.by_item[item]``."""
    report.by_item[item] = {"collected": part.collected, "calls": part.calls, "shortfall": part.shortfall,
                            "rejects": part.rejects}
    for name in ("targets", "collected", "calls", "shortfall"):
        totals = getattr(report, name)
        for word, value in getattr(part, name).items():
            totals[word] = totals.get(word, 0) + value
    for word, reasons in part.rejects.items():
        merged = report.rejects.setdefault(word, {})
        for reason, count in reasons.items():
            merged[reason] = merged.get(reason, 0) + count


def call_table(records: list[dict]) -> pd.DataFrame:
    """The per-call records of a pool (or a judge) as the ``calls.parquet`` table (columns ``CALL_COLUMNS``)."""
    table = pd.DataFrame(records, columns=CALL_COLUMNS)
    return table.astype({"label": "int64", "seed": "int64", "prompt_tokens": "int64", "completion_tokens": "int64",
                         "seconds": "float64", "replayed": "bool", "responses": "int64", "item": "str"})


def save_pool(pool: pd.DataFrame, report: dict, output_dir: str | Path) -> None:
    """Write ``pool.parquet``, ``calls.parquet`` (the report's ``call_records``, one row per call) and
    ``generation_report.json`` (the rest of the report) atomically into ``output_dir``."""
    output_dir = Path(output_dir)
    report = dict(report)
    records = report.pop("call_records", [])
    io.write_table(output_dir / "pool.parquet", pool)
    io.write_table(output_dir / "calls.parquet", call_table(records))
    io.write_json(output_dir / "generation_report.json", report)
