"""Benchmark: bf16 (or length-bucketed batches) against fp32 on a finished study's own teacher steps.

    .venv/bin/python bench/bench_precision.py [--results results/default] [--variant bf16|length_bucketing]
        [--steps 't0.7-none-incremental-r*'] [--evaluate shares|every_increment] [--fp32-too] [--out DIR]

The fp32 reference is the study itself: every teacher step of ``--results`` (a finished study,
read only; by default the committed ``results/default``) whose condition matches ``--steps``
(``all``: every one, 35 in the default study) is trained again, as its notebook trains it (same
inputs, replicate, shares and base-teacher sharing within a replicate), with the variant, and its
test AUC is compared with the study's at every checkpoint both scored. ``--fp32-too`` also trains
each step in fp32 with this checkout, which checks that fp32 still gives the study's numbers bit
for bit and gives the time ratio on this machine; without it the time ratio is against the
step times recorded in the study's markers (other load, notebook overhead included: a rough one).

Prints per step, replicate and checkpoint the AUC in the study, with the variant and their
difference; the mean |ΔAUC| over all of them and at the shares asked for (the decision rule for
making ``compute.precision: auto`` the default: mean |ΔAUC| <= 0.005 over the 5 replicates, and no
verdict changed); and the time ratio. Writes every metric table to ``--out`` (``<condition>.<variant>
.parquet``), so the verdict code can be run on them. bf16 is only fast on CPUs with native bf16
(AVX-512 BF16 or AMX; see ``lscpu``) and on GPUs: elsewhere torch emulates it, many times slower.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from synthmix.core.io import read_json, read_table  # noqa: E402
from synthmix.data.splits import load_study_data, remove_test_copies  # noqa: E402
from synthmix.params import load_params  # noqa: E402
from synthmix.steps.devices import cpu_has_bf16, resolve_device  # noqa: E402
from synthmix.steps.train import train_incremental, train_mixed, transfer_set  # noqa: E402


def teacher_steps(study_dir: Path, pattern: str) -> list[dict]:
    """The study's complete teacher steps whose condition matches ``pattern``, by replicate then condition."""
    steps = []
    for marker in sorted(study_dir.glob("03_train_teacher/*/_complete.json")):
        info = read_json(marker)
        if pattern == "all" or fnmatch.fnmatch(info["condition"], pattern):
            steps.append({"condition": info["condition"], "folder": marker.parent, "seconds": float(info["seconds"]),
                          **info["parameters"]})
    return sorted(steps, key=lambda s: (s["replicate"], s["condition"]))


def train_step(study, params_file: Path, study_dir: Path, step: dict, precision: str, teacher, base_cache: Path):
    """Train one teacher step as its notebook does; returns (metrics, seconds)."""
    human = load_study_data(study, params_file, replicate=step["replicate"])
    synthetic = pool = None
    if step["protocol"] != "replay":
        synthetic, _ = remove_test_copies(read_table(study_dir / step["filtered_dir"] / "filtered_pool.parquet"),
                                          human["test"])
        pool = read_table(study_dir / step["pool_dir"] / "pool.parquet")
    transfer = transfer_set(human, pool)
    device = resolve_device(study.compute.device)
    began = time.perf_counter()
    if step["protocol"] == "mixed":
        run = train_mixed(human, synthetic, step["synthetic_shares"][0], teacher, step["replicate"],
                          study.generation.label_balance, transfer_texts=transfer["text"], what=step["condition"],
                          device=device, precision=precision)
    else:
        run = train_incremental(human, synthetic, teacher, step["replicate"], step["synthetic_shares"],
                                study.generation.label_balance, transfer_texts=transfer["text"],
                                base_cache_dir=base_cache, replay=step["protocol"] == "replay",
                                what=step["condition"], device=device, precision=precision)
    return run.metrics, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(REPO / "results" / "default"), help="a finished study folder")
    parser.add_argument("--params", default=None, help="its params file (default: the one its markers name)")
    parser.add_argument("--variant", choices=["bf16", "length_bucketing"], default="bf16")
    parser.add_argument("--steps", default="t0.7-none-incremental-r*", help="condition pattern, or 'all'")
    parser.add_argument("--evaluate", choices=["shares", "every_increment"], default="shares")
    parser.add_argument("--fp32-too", action="store_true", help="also train each step in fp32 (timing, identity)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="folder for the metric tables (default: a temporary one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    study_dir = Path(args.results).resolve()
    steps = teacher_steps(study_dir, args.steps)
    if not steps:
        sys.exit(f"{study_dir}: no complete teacher step matches {args.steps!r}")
    params_file = Path(args.params) if args.params else (study_dir / steps[0]["params_file"]).resolve()  # paths in
    # markers are relative to the study folder
    study = load_params(params_file)
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-precision-"))
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(study.compute.device)
    variant_precision = "bf16" if args.variant == "bf16" else "fp32"
    variant_teacher = study.teacher.model_copy(update={"evaluate": args.evaluate,
                                                       "length_bucketing": args.variant == "length_bucketing"})
    fp32_teacher = study.teacher.model_copy(update={"evaluate": args.evaluate})
    print(f"{len(steps)} teacher steps of {study_dir} ({args.steps}); variant {args.variant}; device {device}; "
          f"CPU native bf16: {cpu_has_bf16()}; {args.threads} thread(s)", flush=True)

    rows, times, identical = [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        for step in steps:
            reference = read_table(step["folder"] / "metrics.parquet")
            variant, seconds = train_step(study, params_file, study_dir, step, variant_precision, variant_teacher,
                                          Path(scratch) / args.variant)
            variant.to_parquet(out / f"{step['condition']}.{args.variant}.parquet")
            fp32_seconds = step["seconds"]
            if args.fp32_too:
                fp32, fp32_seconds = train_step(study, params_file, study_dir, step, "fp32", fp32_teacher,
                                                Path(scratch) / "fp32")
                fp32.to_parquet(out / f"{step['condition']}.fp32.parquet")
                both = reference.merge(fp32, on="checkpoint", suffixes=("", "_fp32"))
                identical.append(bool((both["auc"].to_numpy() == both["auc_fp32"].to_numpy()).all()))
            times.append((fp32_seconds, seconds))
            merged = reference.merge(variant, on="checkpoint", suffixes=("_fp32", "_variant"))
            for record in merged.itertuples():
                rows.append({"condition": step["condition"], "protocol": step["protocol"],
                             "replicate": step["replicate"], "checkpoint": record.checkpoint,
                             "target_share": record.target_share_fp32, "auc_fp32": record.auc_fp32,
                             "auc_variant": record.auc_variant, "delta": record.auc_variant - record.auc_fp32})
            last = rows[-1]
            print(f"  {step['condition']}: {seconds:.0f} s ({args.variant}) vs {fp32_seconds:.0f} s (fp32"
                  f"{'' if args.fp32_too else ', from the marker'}); final checkpoint AUC {last['auc_fp32']:.4f} -> "
                  f"{last['auc_variant']:.4f}" + (f"; fp32 rerun identical to the study: {identical[-1]}"
                                                   if args.fp32_too else ""), flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(out / f"delta_auc.{args.variant}.csv", index=False)
    print("\nper step and checkpoint (AUC in the study, with the variant, difference):")
    print(table.round(4).to_string(index=False))
    asked = table[table["target_share"].notna()]
    print(f"mean |ΔAUC| over {len(table)} checkpoints: {table['delta'].abs().mean():.4f} (max {table['delta'].abs().max():.4f}); "
          f"at the shares asked for and checkpoint 0 ({len(asked)}): {asked['delta'].abs().mean():.4f}; "
          f"mean ΔAUC {table['delta'].mean():+.4f}")
    ratio = [variant / fp32 for fp32, variant in times]
    print(f"time {args.variant} / fp32 per step: median {statistics.median(ratio):.2f} "
          f"({'measured here' if args.fp32_too else 'against the study markers'})")
    if identical:
        print(f"fp32 reruns identical to the study's AUCs at every checkpoint both scored: {all(identical)}")
    print(f"tables in {out}; {os.cpu_count()} CPU cores, load {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
