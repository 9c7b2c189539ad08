"""Concurrent LLM calls: a 1,000-response pool at concurrency 1 and 16 against a server with hosted-API latency.

    .venv/bin/python bench/bench_concurrency.py [--delay 0.3] [--responses 1000] [--concurrency 16]

The server is the tests' fault server (tests/fault_server.py) in its own process (like a hosted
API, its work does not share the client's interpreter), with a fixed delay per call and no
faults. Each run uses a fresh cache, so every call is made. Prints the time and throughput of
each run, the throughput ratio (target: at least 10x) and whether the two pools are identical.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from synthmix.data.rubric import load_rubric  # noqa: E402
from synthmix.params import GenerationParams  # noqa: E402
from synthmix.steps.generate import generate_pool  # noqa: E402


@contextmanager
def server_process(delay_s: float):
    """The fault server in a child process: yields its base_url; stops it afterwards."""
    process = subprocess.Popen([sys.executable, str(REPO / "tests/fault_server.py"), "--delay", str(delay_s),
                                "--lifetime", "900"], stdout=subprocess.PIPE, text=True)
    try:
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(timeout=30)


def timed_pool(base_url: str, concurrency: int, responses: int, cache: Path):
    """Generate a pool of ``responses`` (half per label) at ``concurrency``; return it, its report and seconds."""
    settings = GenerationParams(backend="openai", base_url=base_url, model="bench-llm", responses_per_call=10,
                                max_calls_per_label=responses, concurrency=concurrency)
    rubric = load_rubric(REPO / "src/synthmix/data/default_data/tutor_error_feedback/rubric.yaml")
    began = time.monotonic()
    pool, report = generate_pool(settings, rubric, 0.7, cache, targets={1: responses // 2, 0: responses - responses // 2})
    return pool, report, time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.3, help="seconds the server takes per call")
    parser.add_argument("--responses", type=int, default=1000, help="pool size (both labels)")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    results = {}
    with server_process(args.delay) as base_url, tempfile.TemporaryDirectory() as scratch:
        for concurrency in (1, args.concurrency):
            pool, report, seconds = timed_pool(base_url, concurrency, args.responses,
                                               Path(scratch) / f"cache-{concurrency}.sqlite")
            stats = report["stats"]
            results[concurrency] = (pool, seconds)
            print(f"concurrency {concurrency:>2}: {len(pool)} responses from {sum(report['calls'].values())} calls "
                  f"({stats['calls_made']} made, {stats['calls_unused']} unused) in {seconds:.1f} s: "
                  f"{len(pool) / seconds:.0f} responses/s")
        with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats") as answer:
            counters = json.load(answer)
        print(f"server: {counters['requests']} requests, at most {counters['max_in_flight']} at once, "
              f"delay {args.delay} s")
    (pool_1, seconds_1), (pool_n, seconds_n) = results[1], results[args.concurrency]
    ratio = (len(pool_n) / seconds_n) / (len(pool_1) / seconds_1)
    print(f"throughput ratio {args.concurrency} vs 1: {ratio:.1f}x (target >= 10x)")
    print(f"pools identical: {pool_1.equals(pool_n)}")


if __name__ == "__main__":
    main()
