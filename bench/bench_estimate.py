"""How good is the estimate? `synthmix validate`'s per-pool calls, tokens and seconds, and its seconds per
step kind, against what a complete study measured (default: the committed run, results/default).

Three estimates per pool: with nothing measured (the costs.assumed_* rates: an installed package, which has
no shipped study to take the rates of a generator it has not called from), from the other
pools of the run only (leave-one-out: this pool's own record hidden), and from every record (what validate
prints beside that results folder). Per step kind: the assumed rates, and what a checkout's empty results folder
gets (the shipped study's calls for its generators), against the markers' seconds.

    python bench/bench_estimate.py [--params params/default.yaml] [--results results]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from synthmix.core import io
from synthmix.data.design import study_design
from synthmix.params import load_params
from synthmix.run.estimate import Measurements, estimate_study
from synthmix.run.graph import plan_study

REPO = Path(__file__).resolve().parents[1]


def ratio(estimate: float, measured: float) -> str:
    return f"{estimate / measured:.2f}x" if measured else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=str(REPO / "params" / "default.yaml"))
    parser.add_argument("--results", default=str(REPO / "results"))
    args = parser.parse_args()
    params = load_params(args.params)
    design = study_design(params, args.params)
    steps, _ = plan_study(params, args.params, args.results, design=design)
    study_dir = Path(args.results) / params.study
    with tempfile.TemporaryDirectory() as empty:
        fresh_steps, nothing = plan_study(params, args.params, empty, design=design)[0], Measurements.gather(empty)
        fresh = estimate_study(params, args.params, empty, steps=fresh_steps, design=design, measurements=nothing,
                               use_shipped=False)
        shipped = estimate_study(params, args.params, empty, steps=fresh_steps, design=design,
                                 measurements=nothing)  # a checkout's fresh folder
    everything = estimate_study(params, args.params, args.results, steps=steps, design=design)
    print(f"{'pool':<6} {'what':<18} {'measured':>10} {'assumed':>16} {'other pools':>16} {'all records':>16}")
    for pool_all, pool_fresh in zip(everything.pools, fresh.pools):
        (folder,) = [path for path in study_dir.glob(f"01_generate/{pool_all.condition}-*")
                     if path.name.rsplit("-", 1)[0] == pool_all.condition]  # not t0.7-r0-... for t0.7
        report = io.read_json(folder / "generation_report.json")
        others = estimate_study(params, args.params, args.results, steps=steps, design=design,
                                measurements=Measurements.gather(args.results, exclude=(str(folder),)))
        pool_other = next(p for p in others.pools if p.condition == pool_all.condition)
        stats = report["stats"]
        measured = {"calls": sum(report["calls"].values()),
                    "tokens": stats["prompt_tokens"] + stats["completion_tokens"],
                    "seconds": report.get("seconds_of_calls") or stats["seconds_in_calls"]}
        for what, value in measured.items():
            cells = []
            for pool in (pool_fresh, pool_other, pool_all):
                estimate = {"calls": pool.calls, "tokens": pool.prompt_tokens + pool.completion_tokens,
                            "seconds": pool.seconds}[what]
                cells.append(f"{estimate:>8,.0f} {ratio(estimate, value):>7}")
            print(f"{pool_all.condition:<6} {what:<18} {value:>10,.0f} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16}")
    print()
    markers = {}
    for marker in study_dir.glob("*/*/_complete.json"):
        info = json.loads(marker.read_text())
        markers.setdefault(info["kind"], []).append(info["seconds"])
    print(f"{'step kind':<14} {'steps':>5} {'measured s':>11} {'assumed rates s':>16} {'a checkout, fresh s':>20}")
    for kind, info in fresh.kinds.items():
        measured, checkout = sum(markers.get(kind, [])), shipped.kinds[kind]["seconds"]
        print(f"{kind:<14} {info['steps']:>5} {measured:>11,.0f} {info['seconds']:>9,.0f} {ratio(info['seconds'], measured):>6}"
              f" {checkout:>13,.0f} {ratio(checkout, measured):>6}")


if __name__ == "__main__":
    main()
