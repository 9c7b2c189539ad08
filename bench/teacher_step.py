"""One teacher step as the default study runs it, timed phase by phase (a worker of bench_training.py).

    python bench/teacher_step.py --out FILE.json [--protocol incremental] [--replicate 0] [--temperature 0.7]
        [--shares 0.2,0.4,0.6,0.8] [--evaluate shares|every_increment] [--precision fp32|bf16|auto]
        [--base-cache DIR] [--results results/default]

It imports ``synthmix`` from whatever is first on PYTHONPATH, so the same file times today's code
(a checkout of main) and this branch's: the bench runs it in a subprocess per measurement. The
inputs are the default study's committed pools (``RESULTS/01_generate`` and ``RESULTS/02_filter``,
read only), the replicate's human split, and the notebook's own calls (``remove_test_copies``,
``transfer_set``, ``train_incremental`` / ``train_mixed``). Each phase is timed by wrapping the
functions that do it, exclusive of the phases nested in it, the same way for both codes:
loading (``load_classifier``), human fine-tune (``fine_tune_on_human``), increments
(``fine_tune`` outside it), evaluation (``predict_proba`` of the test split), bootstrap CIs
(``metrics._bootstrap_values``), point metrics (the rest of ``metrics.evaluate``) and transfer
logits (``train.predict_logits``). Writes the phases, the total and every metric row as JSON.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


class PhaseClock:
    """Exclusive wall and CPU time per named phase: a phase entered inside another pauses the outer one."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self.stack: list[list] = []  # [name, wall started, cpu started]

    def wrap(self, owner, attribute: str, name: str, inside_of: dict | None = None) -> None:
        """Time ``owner.attribute`` as phase ``name`` (``inside_of``: {outer phase: name to use there})."""
        original = getattr(owner, attribute)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            outer = self.stack[-1][0] if self.stack else None
            phase = (inside_of or {}).get(outer, name)
            if phase == outer:  # counted as part of the phase already running
                return original(*args, **kwargs)
            self._pause_outer()
            self.stack.append([phase, time.perf_counter(), time.process_time()])
            try:
                return original(*args, **kwargs)
            finally:
                done = self.stack.pop()
                self._add(done)
                if self.stack:
                    self.stack[-1][1:] = [time.perf_counter(), time.process_time()]

        setattr(owner, attribute, timed)

    def _pause_outer(self) -> None:
        if self.stack:
            self._add(self.stack[-1])

    def _add(self, entry: list) -> None:
        name, wall, cpu = entry
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - wall
        self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--params", default=str(REPO / "params/default.yaml"))
    parser.add_argument("--results", default=str(REPO / "results/default"), help="a study folder with pools")
    parser.add_argument("--protocol", default="incremental", choices=["incremental", "replay", "mixed"])
    parser.add_argument("--replicate", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--shares", default="0.2,0.4,0.6,0.8")
    parser.add_argument("--evaluate", default=None, help="teacher.evaluate (this branch only)")
    parser.add_argument("--precision", default=None, help="compute.precision (this branch only)")
    parser.add_argument("--base-cache", default=None, help="base-teacher cache folder (default: none, so the "
                        "human fine-tune is part of the step)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-transfer", action="store_true", help="no transfer logits (a teacher nobody distils)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import synthmix
    from synthmix.core.io import read_table
    from synthmix.data.splits import load_study_data, remove_test_copies
    from synthmix.params import load_params
    from synthmix.steps import metrics, train
    from synthmix.steps.devices import resolve_device

    clock = PhaseClock()
    clock.wrap(train, "load_classifier", "loading")
    clock.wrap(train, "fine_tune_on_human", "human_fine_tune")
    clock.wrap(train, "fine_tune", "increments", inside_of={"human_fine_tune": "human_fine_tune"})
    clock.wrap(train, "predict_proba", "evaluation")
    clock.wrap(train.metrics_module, "evaluate", "point_metrics")
    clock.wrap(metrics, "_bootstrap_values", "bootstrap_cis")
    clock.wrap(train, "predict_logits", "transfer_logits")

    study = load_params(args.params)
    teacher = study.teacher
    updates = {}
    if args.evaluate is not None:
        updates["evaluate"] = args.evaluate
    teacher = teacher.model_copy(update=updates) if updates else teacher
    shares = [float(s) for s in args.shares.split(",")]
    results = Path(args.results)
    human = load_study_data(study, args.params, replicate=args.replicate)
    synthetic = pool = None
    if args.protocol != "replay":
        pool_dir = _one(results.glob(f"01_generate/t{args.temperature:g}-*"))
        filtered_dir = _one(results.glob(f"02_filter/t{args.temperature:g}-none-*"))
        synthetic, _ = remove_test_copies(read_table(filtered_dir / "filtered_pool.parquet"), human["test"])
        pool = read_table(pool_dir / "pool.parquet")
    transfer = train.transfer_set(human, pool)
    transfer_texts = None if args.no_transfer else transfer["text"]
    device = resolve_device(study.compute.device)
    extra = {}
    if args.precision is not None:
        from synthmix.steps.devices import resolve_precision

        extra["precision"] = resolve_precision(args.precision, device)

    began, began_cpu = time.perf_counter(), time.process_time()
    if args.protocol == "mixed":
        run = train.train_mixed(human, synthetic, shares[0], teacher, args.replicate, study.generation.label_balance,
                                transfer_texts=transfer_texts, device=device, **extra)
    else:
        run = train.train_incremental(human, synthetic, teacher, args.replicate, shares,
                                      study.generation.label_balance, transfer_texts=transfer_texts,
                                      base_cache_dir=args.base_cache, replay=args.protocol == "replay",
                                      device=device, **extra)
    total, total_cpu = time.perf_counter() - began, time.process_time() - began_cpu
    phases, cpu = dict(clock.seconds), dict(clock.cpu_seconds)
    phases["other"] = total - sum(phases.values())
    cpu["other"] = total_cpu - sum(cpu.values())
    record = {
        "synthmix": str(Path(synthmix.__file__).parent),
        "args": vars(args),
        "threads": torch.get_num_threads(),
        "total_s": total,
        "total_cpu_s": total_cpu,
        "phases_s": phases,
        "phases_cpu_s": cpu,
        "builtin_phases_s": getattr(run, "phase_seconds", None),
        "metrics": run.metrics.to_dict(orient="records"),
        "auc_hex": {int(c): float(a).hex() for c, a in zip(run.metrics["checkpoint"], run.metrics["auc"])},
        "transfer_logits_sum": (float(run.transfer_logits[["logit_0", "logit_1"]].to_numpy().sum())
                                if len(run.transfer_logits) else None),
        "load_average": os.getloadavg(),
    }
    Path(args.out).write_text(json.dumps(record, indent=1, default=_plain))


def _plain(value):
    return value.item() if hasattr(value, "item") else str(value)


def _one(paths) -> Path:
    found = sorted(paths)
    if len(found) != 1:
        sys.exit(f"expected one folder, found {[str(p) for p in found]}")
    return found[0]


if __name__ == "__main__":
    main()
