"""Generation through the managed llama.cpp backend: one server vs several side by side, and a cached rerun.

    .venv/bin/python bench/bench_generation.py [params/default.yaml] [--temperature 0.7] [--responses 120]
        [--concurrency 2] [--repeats 2] [--threads N]

Generates a pool of ``--responses`` responses (the study's label balance at that temperature) into
a fresh cache at ``generation.concurrency`` 1 (one server with all ``--threads``, default every
core) and at ``--concurrency`` (that many servers sharing the threads), alternately, A B A B, so
drift in the machine's load cancels in the per-pair ratios; every run makes every call. Prints
each run's responses per second, the median per-pair throughput ratio (target: >= 1.4x for 2 vs 1
on 2 cores), whether every pool is identical (the replies of a managed server depend only on the
request), and the time of a rerun that replays one of the caches.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from synthmix.data.design import PoolKey, study_design
from synthmix.data.rubric import load_rubric, rubric_path
from synthmix.params import load_params
from synthmix.steps.generate import generate_pool


def scaled_targets(targets: dict[int, int], responses: int) -> dict[int, int]:
    """``targets`` scaled to ``responses`` in all, keeping their label balance."""
    total = sum(targets.values())
    positives = round(responses * targets[1] / total) if total else responses // 2
    return {1: positives, 0: responses - positives}


def timed_pool(settings, rubric, temperature: float, cache: Path, targets: dict):
    """Generate one pool; returns it, its report and the wall seconds."""
    began = time.monotonic()
    pool, report = generate_pool(settings, rubric, temperature, cache, targets=targets)
    return pool, report, time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("params", nargs="?", default="params/default.yaml")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--responses", type=int, default=120, help="pool size (both labels)")
    parser.add_argument("--concurrency", type=int, default=2, help="servers side by side in the second setting")
    parser.add_argument("--repeats", type=int, default=2, help="A B pairs")
    parser.add_argument("--threads", type=int, default=None, help="threads of all servers together (default: all cores)")
    args = parser.parse_args()
    study = load_params(args.params)
    rubric = load_rubric(rubric_path(study.dataset, args.params))
    pools = study_design(study, args.params).targets  # by pool: the temperature's shared one, or a replicate's own
    key = next((k for k in (PoolKey(args.temperature), PoolKey(args.temperature, own=True)) if k in pools), None)
    if key is None:
        parser.error(f"{args.params} generates no pool at temperature {args.temperature}")
    targets = scaled_targets(pools[key], args.responses)
    threads = args.threads or os.cpu_count() or 1
    base = study.generation.model_copy(update={"server_threads": threads})
    runs = {1: [], args.concurrency: []}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for concurrency in runs:
                settings = base.model_copy(update={"concurrency": concurrency})
                cache = Path(scratch) / f"c{concurrency}-{repeat}.sqlite"
                pool, report, seconds = timed_pool(settings, rubric, args.temperature, cache, targets)
                runs[concurrency].append((pool, report, seconds))
                stats = report["stats"]
                print(f"concurrency {concurrency} ({report['servers']} server(s), {threads // report['servers']} "
                      f"thread(s) each), run {repeat + 1}: {len(pool)} responses from {stats['calls_made']} calls in "
                      f"{seconds:.1f} s (servers started in {report['server_start_s']:.1f} s): "
                      f"{len(pool) / seconds:.2f} responses/s, {stats['completion_tokens'] / seconds:.1f} "
                      f"completion tokens/s; load {os.getloadavg()[0]:.1f}", flush=True)
        began = time.monotonic()
        _, replay = generate_pool(base.model_copy(update={"concurrency": 1}), rubric, args.temperature,
                                  Path(scratch) / "c1-0.sqlite", targets=targets)
        cached = time.monotonic() - began
    one, many = runs[1], runs[args.concurrency]
    ratios = [(len(b[0]) / b[2]) / (len(a[0]) / a[2]) for a, b in zip(one, many)]
    reference = one[0][0].drop(columns="call_id")
    identical = all(run[0].drop(columns="call_id").equals(reference) for run in one + many)
    print(f"params {args.params}, temperature {args.temperature}, model {study.generation.model}, "
          f"targets {targets}, {threads} threads in all")
    print(f"throughput concurrency {args.concurrency} vs 1 (median of {len(ratios)} A B pairs): "
          f"{statistics.median(ratios):.2f}x (pairs: {', '.join(f'{r:.2f}' for r in ratios)}; target >= 1.4x)")
    print(f"every pool identical (apart from the servers' call ids): {identical}")
    print(f"cached rerun: {replay['stats']['calls_replayed']} calls replayed, {replay['stats']['calls_made']} made, "
          f"in {cached:.2f} s")
    print(f"{os.cpu_count()} CPU cores, load average now {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
