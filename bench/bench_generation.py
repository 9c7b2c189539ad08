"""Generation throughput through the managed llama.cpp server, and the time of a cached rerun.

    .venv/bin/python bench/bench_generation.py [params/default.yaml] [--temperature 0.7]

Generates one temperature's pool into a fresh cache (every call made), then again from the
same cache (every call replayed), and prints responses per minute, tokens per second and the
ratio of the two times.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from synthmix.data.design import study_design
from synthmix.data.rubric import load_rubric, rubric_path
from synthmix.params import load_params
from synthmix.steps.generate import generate_pool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("params", nargs="?", default="params/default.yaml")
    parser.add_argument("--temperature", type=float, default=None, help="default: the middle of the study's list")
    args = parser.parse_args()
    study = load_params(args.params)
    temperatures = study.generation.temperatures
    temperature = args.temperature if args.temperature is not None else temperatures[len(temperatures) // 2]
    rubric = load_rubric(rubric_path(study.dataset, args.params))
    targets = study_design(study, args.params).targets[temperature]
    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(scratch) / "llm.sqlite"
        began = time.monotonic()
        pool, report = generate_pool(study.generation, rubric, temperature, cache, targets=targets)
        fresh = time.monotonic() - began
        began = time.monotonic()
        _, replay = generate_pool(study.generation, rubric, temperature, cache, targets=targets)
        cached = time.monotonic() - began
    stats = report["stats"]
    print(f"params {args.params}, temperature {temperature}, model {study.generation.model}")
    print(f"fresh:  {len(pool)} responses from {stats['calls_made']} calls in {fresh:.1f} s "
          f"(server start {report['server_start_s']:.1f} s): {len(pool) / fresh * 60:.1f} responses/min, "
          f"{stats['completion_tokens'] / stats['seconds_in_calls']:.1f} completion tokens/s "
          f"({stats['prompt_tokens']} prompt + {stats['completion_tokens']} completion tokens)")
    print(f"cached: {replay['stats']['calls_replayed']} calls replayed, {replay['stats']['calls_made']} made, in {cached:.2f} s")
    print(f"ratio fresh/cached: {fresh / cached:.0f}x")
    print(f"rejected lines: {report['rejects']}")


if __name__ == "__main__":
    main()
