"""`synthmix validate` on a large coded file: generate N rows (default 200,000; 40 items, texts built from a
small vocabulary so many repeat, 30% coded 1) into a temporary folder and time the real command.

    python bench/bench_validate.py [--rows 200000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
WORDS = ("the fraction is wrong because you added the tops and bottoms instead of finding a common denominator "
         "first so try again with sixths and check your answer by drawing a picture of each part").split()


def write_study(folder: Path, rows: int, seed: int = 0) -> Path:
    """A CSV of ``rows`` coded responses and a params file for it (rubric: the embedded one)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, 25, size=rows)
    vocabulary = np.array(WORDS)
    texts = [" ".join(vocabulary[rng.integers(0, len(vocabulary), size=n)]) for n in lengths]
    frame = pd.DataFrame({"response_id": [f"r{i}" for i in range(rows)], "question_id": rng.integers(0, 40, rows),
                          "answer": texts, "code": (rng.random(rows) < 0.3).astype(int)})
    frame.to_csv(folder / "big.csv", index=False)
    rubric = REPO / "src" / "synthmix" / "data" / "default_data" / "tutor_error_feedback" / "rubric.yaml"
    (folder / "big.params.yaml").write_text(
        "study: big\n"
        f"dataset:\n  source: big.csv\n  rubric: {rubric}\n  text_column: answer\n  label_column: code\n"
        "  item_column: question_id\n"
        "experiments:\n  size: {protocols: [incremental], synthetic_shares: [0.2], distill: false}\n"
        "claims: {size_share: 0.2}\n")
    return folder / "big.params.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        params = write_study(Path(folder), args.rows)
        times, cpu = [], []
        for _ in range(args.repeats):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            began = time.monotonic()
            out = subprocess.run([sys.executable, "-m", "synthmix", "validate", str(params), "--results",
                                  str(Path(folder) / "results")], capture_output=True, text=True, cwd=REPO)
            times.append(time.monotonic() - began)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if out.returncode not in (0, 2):
                sys.exit(out.stdout + out.stderr)
        print(out.stdout[-3000:] or out.stderr[-3000:])
        print(f"validate on {args.rows:,} rows: median {statistics.median(times):.1f} s over {args.repeats} runs "
              f"({', '.join(f'{t:.1f}' for t in times)}); CPU time median {statistics.median(cpu):.1f} s; "
              f"peak memory {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
