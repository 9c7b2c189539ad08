"""Calibrate the verdict rules on real coded responses (issue 13): coverage and false verdicts, new and old rule.

Simulated studies of the default study's size and resampling structure (384 Beetle answers, R
resplits of one third train / two thirds test, a synthetic-style pool shared by the replicates)
with a stand-in teacher whose true differences are known from the whole population, through
``verdicts.judge_paired`` (the rule the study uses) and through a labelled copy of the old
two-level bootstrap. Prints one table per rule and writes the per-study outcomes beside them.

    PYTHONPATH=src .venv/bin/python bench/calibrate_verdicts.py                # 500 studies, MiniLM stand-in
    PYTHONPATH=src .venv/bin/python bench/calibrate_verdicts.py --studies 100 --learner tfidf
    PYTHONPATH=src .venv/bin/python bench/calibrate_verdicts.py --arms 0,1,3 --tag a &   # arms split over
    PYTHONPATH=src .venv/bin/python bench/calibrate_verdicts.py --arms 2,4 --tag b       # two cores, then:
    PYTHONPATH=src .venv/bin/python bench/calibrate_verdicts.py --merge a,b

Extra responses are drawn per item in proportion to the replicate's training responses, as the study
draws synthetic responses for data with an item column (``--no-match-items``: regardless of item, as
this harness did before, for comparison). ``--pool-per-replicate``: each replicate its own pool (the
variety experiment's design, and every experiment's with ``generation.per_replicate``).

Needs the shared Beetle data (``--data``); the MiniLM embeddings are computed once and cached in
``results/.cache/calibration`` (git-ignored).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_limits

from synthmix.analysis.calibration import DEFAULT_ARMS, StudyShape, beetle_population, calibrate, calibration_table

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "semeval2013-task7-beetle-2way"),
                        help="the SemEval-2013 Beetle 2-way folder")
    parser.add_argument("--learner", choices=("minilm", "tfidf"), default="minilm")
    parser.add_argument("--studies", type=int, default=500, help="simulated studies per arm")
    parser.add_argument("--truth-draws", type=int, default=1000, help="draws that estimate each arm's truth")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(REPO / "results" / ".cache" / "calibration"),
                        help="folder for the per-study outcomes and the tables (CSV)")
    parser.add_argument("--arms", default=None, help="comma-separated positions in DEFAULT_ARMS (default: all)")
    parser.add_argument("--no-match-items", dest="match_items", action="store_false",
                        help="draw extra responses regardless of item (the harness before per-item draws)")
    parser.add_argument("--pool-per-replicate", action="store_true",
                        help="each replicate draws from its own pool (the design issue 13 names), not one shared pool")
    parser.add_argument("--tag", default="", help="suffix of the output files (a part of the arms, run apart)")
    parser.add_argument("--merge", default=None, help="comma-separated tags of parts already run: print their table")
    args = parser.parse_args()
    out = Path(args.out)
    if args.merge:
        parts = [f"{args.learner}-{tag}" for tag in args.merge.split(",")]
        truths = pd.concat([pd.read_csv(out / f"truths-{part}.csv") for part in parts], ignore_index=True)
        outcomes = pd.concat([pd.read_csv(out / f"outcomes-{part}.csv") for part in parts], ignore_index=True)
        report(truths, calibration_table(truths, outcomes), out, args.learner)
        return
    arms = DEFAULT_ARMS if args.arms is None else tuple(DEFAULT_ARMS[int(i)] for i in args.arms.split(","))
    threadpool_limits(1)
    started = time.time()
    population = beetle_population(args.data, args.learner, cache_dir=args.out)
    print(f"population: {len(population)} Beetle answers ({population.labels.mean():.0%} correct), "
          f"stand-in learner: {args.learner} + logistic regression ({time.time() - started:.0f} s to load)", flush=True)

    def progress(arm, study):
        if (study + 1) % 100 == 0:
            print(f"  {arm.name}: {study + 1} studies ({(time.time() - started) / 60:.1f} min)", flush=True)

    shape = StudyShape(match_items=args.match_items, shared_pool=not args.pool_per_replicate)
    truths, outcomes = calibrate(population, arms, studies=args.studies, truth_draws=args.truth_draws, shape=shape,
                                 seed=args.seed, progress=progress)
    name = args.learner + (f"-{args.tag}" if args.tag else "")
    out.mkdir(parents=True, exist_ok=True)
    outcomes.to_csv(out / f"outcomes-{name}.csv", index=False)
    truths.to_csv(out / f"truths-{name}.csv", index=False)
    report(truths, calibration_table(truths, outcomes), out, name)
    print(f"\nwall time {(time.time() - started) / 60:.1f} min")


def report(truths: pd.DataFrame, table: pd.DataFrame, out: Path, name: str) -> None:
    """Print the truths and one table per rule; write the table as CSV."""
    table.to_csv(out / f"table-{name}.csv", index=False)
    pd.set_option("display.width", 250, "display.max_columns", 30)
    print("\ntruths (mean AUC difference over draws of 96 training responses, scored on the rest of the population):")
    print(truths.round(4).to_string(index=False))
    for rule, rows in table.groupby("rule", sort=False):
        print(f"\n{rule} (90% intervals, margin 0.02 for the verdict rates; boundary: margin = truth)")
        print(rows.drop(columns="rule").round(3).to_string(index=False))


if __name__ == "__main__":
    main()
