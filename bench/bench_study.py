"""The default study's wall time, and where the time goes by step kind and inside the teacher step.

    .venv/bin/python bench/bench_study.py [params/default.yaml] [--workers 2] [--results DIR]
    .venv/bin/python bench/bench_study.py --summarise results/default   # read a finished run only

Runs the study with `synthmix run` into a fresh results folder (or DIR), timing the whole run, then
reads every step's completion marker and prints, per step kind, how many steps ran and their
total, mean and longest time, and the sum of step times against the wall time (what the workers
saved). Inside the teacher steps it prints the seconds per phase (human fine-tune, increments,
evaluation, bootstrap CIs, transfer logits, loading; from each step's ``teacher_report.json``,
which records them since issue 14), per protocol, and what is left of the step's time (the
notebook: imports, data, writing files). With --summarise, only the second part, for a study
that already ran.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from synthmix.core import io
from synthmix.params import load_params


def step_times(study_dir: Path) -> pd.DataFrame:
    """One row per completed step: kind, condition, seconds (from its completion marker) and folder."""
    rows = []
    for marker in sorted(study_dir.glob("*/*/_complete.json")):
        info = io.read_json(marker)
        rows.append({"kind": info.get("kind"), "condition": info.get("condition"), "seconds": float(info.get("seconds", 0)),
                     "folder": marker.parent})
    return pd.DataFrame(rows, columns=["kind", "condition", "seconds", "folder"])


def teacher_phases(times: pd.DataFrame) -> pd.DataFrame:
    """One row per teacher step that recorded its phases: protocol, step seconds and seconds per phase."""
    rows = []
    for record in times[times["kind"] == "train_teacher"].itertuples():
        report_path = Path(record.folder) / "teacher_report.json"
        report = io.read_json(report_path) if report_path.is_file() else {}
        phases = report.get("phase_seconds")
        if phases:
            rows.append({"protocol": report.get("protocol"), "step_s": record.seconds, **phases})
    return pd.DataFrame(rows)


def summarise_teacher(times: pd.DataFrame) -> None:
    """Print the teacher steps' seconds per phase, in all and per protocol."""
    phases = teacher_phases(times)
    teachers = int((times["kind"] == "train_teacher").sum())
    if phases.empty:
        print(f"teacher phases: none recorded ({teachers} teacher steps ran with code older than issue 14)")
        return
    columns = [c for c in phases.columns if c not in ("protocol", "step_s")]
    phases["rest_of_notebook"] = phases["step_s"] - phases[columns].fillna(0).sum(axis=1)
    columns.append("rest_of_notebook")
    total = phases[columns].sum()
    print(f"\nteacher steps: seconds per phase ({len(phases)} of {teachers} steps recorded them)")
    table = pd.DataFrame({"total_s": total, "share": total / phases["step_s"].sum()})
    print(table.sort_values("total_s", ascending=False).round(3).to_string())
    print("mean seconds per step by protocol:")
    print(phases.groupby("protocol")[["step_s", *columns]].mean().round(1).to_string())


def summarise(study_dir: Path, wall_s: float | None) -> None:
    """Print the time per step kind (and against the wall time when known)."""
    times = step_times(study_dir)
    if times.empty:
        sys.exit(f"{study_dir}: no completed steps")
    table = times.groupby("kind", sort=False)["seconds"].agg(steps="size", total_s="sum", mean_s="mean", max_s="max")
    table["share_of_step_time"] = table["total_s"] / table["total_s"].sum()
    print(table.round(1).to_string())
    total = times["seconds"].sum()
    print(f"sum of step times: {total / 60:.1f} min over {len(times)} steps")
    longest = times.sort_values("seconds", ascending=False).head(5)
    print("longest steps: " + "; ".join(f"{k} {c} {s:.0f} s" for k, c, s, _ in longest.itertuples(index=False)))
    if wall_s:
        print(f"wall time: {wall_s / 60:.1f} min; step time / wall time: {total / wall_s:.2f}x")
    summarise_teacher(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("params", nargs="?", default="params/default.yaml")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--results", default=None, help="results folder (default: a fresh temporary one)")
    parser.add_argument("--summarise", metavar="STUDY_DIR", default=None, help="only summarise a finished study")
    args = parser.parse_args()
    if args.summarise:
        summarise(Path(args.summarise), None)
        return
    study = load_params(args.params)
    results = Path(args.results or tempfile.mkdtemp(prefix="synthmix-bench-study-"))
    began = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "synthmix", "run", args.params, "--results", str(results),
                          "--workers", str(args.workers), "--no-progress"])
    wall = time.monotonic() - began
    if run.returncode != 0:
        sys.exit(f"the study failed (exit {run.returncode}); see above")
    print(f"\nstudy '{study.study}' with --workers {args.workers} into {results}")
    summarise(results / study.study, wall)


if __name__ == "__main__":
    main()
