"""Calibration: how often the exchange rate's interval holds the known answer on real data.

Runs ``studies`` simulated human-size studies on SemEval-2013 Beetle (``analysis.exchange_calibration``:
held-out human answers as the "synthetic" arm, true exchange rate 1; a fast stand-in learner) and
prints, per human size, the coverage of the 90% interval, the median estimate and interval, and how
often the negative control (the same answers with their codes flipped) comes out harmful.

Run: ``.venv/bin/python bench/calibrate_exchange.py [--studies 20] [--replicates 40] [--out FILE.csv]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from synthmix.analysis.exchange_calibration import Shape, beetle_answers, coverage  # noqa: E402

BEETLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "semeval2013-task7-beetle-2way"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--replicates", type=int, default=40)
    parser.add_argument("--data", default=str(BEETLE))
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    started = time.time()
    table = coverage(beetle_answers(args.data), args.studies, Shape(replicates=args.replicates))
    if args.out:
        table.to_csv(args.out, index=False)
    measured = table[table["status"] == "measured"]
    summary = measured.groupby("size").agg(studies=("seed", "size"), coverage=("holds_1", "mean"),
                                           median_rate=("rate", "median"), median_low=("rate_low", "median"),
                                           median_high=("rate_high", "median"))
    summary["control_harmful"] = table.groupby("size")["control_status"].apply(lambda s: (s == "harmful").mean())
    print(summary.round(3).to_string())
    print(f"{args.studies} studies of {args.replicates} replicates in {time.time() - started:.0f} s "
          f"(statuses: {table['status'].value_counts().to_dict()})")


if __name__ == "__main__":
    main()
