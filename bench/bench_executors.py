"""Benchmark: the smoke grid on the local executor and on Dask (a LocalCluster of 2 workers).

The grid is ``params/smoke.yaml`` with two temperatures, so two pools, filters, teachers and
students can run side by side. The LLM cache is filled once beforehand (generation only), and
each executor then runs the whole study in a fresh results folder holding a copy of that cache,
so generation is replayed and both runs do the same work. Prints each wall time, the speed-up,
and whether ``summary.csv`` is identical (byte for byte, and without the measured inference
times, which differ between any two runs).

Run: ``.venv/bin/python bench/bench_executors.py [--workers 2] [--pool] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
TEMPERATURES = [0.7, 0.9]  # SmolLM2-135M repeats itself at 0.3: too few distinct responses for the smoke shares


def synthmix(*args: str) -> float:
    """Run ``synthmix`` in a subprocess; return its wall time (exits on failure)."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "synthmix", *args, "--no-progress"], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    if done.returncode != 0:
        sys.exit(f"synthmix {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - began


def bench_params(folder: Path) -> Path:
    """A copy of params/smoke.yaml with two temperatures."""
    params = yaml.safe_load((REPO / "params" / "smoke.yaml").read_text())
    params["study"] = "bench_executors"
    params["generation"]["temperatures"] = TEMPERATURES
    path = folder / "bench_executors.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def measured_columns(summary: pd.DataFrame) -> list[str]:
    """The columns holding measured inference times."""
    return [c for c in summary.columns if "latency" in c or "speedup" in c]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="Dask workers (--cluster local:N)")
    parser.add_argument("--pool", action="store_true", help="also time the local process pool (--workers N)")
    parser.add_argument("--keep", type=Path, help="keep the results in this folder (default: a temporary one)")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-executors-"))
    root.mkdir(parents=True, exist_ok=True)
    params = str(bench_params(root))
    warm = root / "cache-warm-up"
    print(f"filling the LLM cache (generation at t = {TEMPERATURES}) …", flush=True)
    print(f"  {synthmix('run', params, '--only', 'generate', '--results', str(warm)):.1f} s", flush=True)

    runs = {"local": [], f"dask local:{args.workers}": ["--executor", "dask", "--cluster", f"local:{args.workers}"]}
    if args.pool:
        runs[f"local --workers {args.workers}"] = ["--workers", str(args.workers)]
    seconds, summaries = {}, {}
    for name, flags in runs.items():
        results = root / name.replace(" ", "_").replace(":", "")
        results.mkdir()
        shutil.copy(warm / "llm_cache.sqlite", results / "llm_cache.sqlite")
        seconds[name] = synthmix("run", params, "--results", str(results), *flags)
        summaries[name] = results / "bench_executors" / "summary.csv"
        print(f"{name:<22} {seconds[name]:7.1f} s", flush=True)

    base = "local"
    reference = pd.read_csv(summaries[base])
    for name in runs:
        if name == base:
            continue
        summary = pd.read_csv(summaries[name])
        same_bytes = summaries[name].read_bytes() == summaries[base].read_bytes()
        timing = measured_columns(reference)
        same_metrics = summary.drop(columns=timing).equals(reference.drop(columns=timing))
        print(f"{name}: speed-up {seconds[base] / seconds[name]:.2f}x over {base}; summary.csv "
              f"byte-identical: {same_bytes}; identical apart from the measured inference times "
              f"({', '.join(timing)}): {same_metrics}")
    print(f"{os.cpu_count()} CPU cores, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}; results in {root}")


if __name__ == "__main__":
    main()
