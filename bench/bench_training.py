"""Benchmark: the teacher step against today's code, phase by phase, at identical metrics.

    .venv/bin/python bench/bench_training.py [--repeats 2] [--base-cache cold|warm] [--baseline-rev c5f83e2]
        [--arms shares,shares-no-transfer,every_increment] [--extras]

One teacher step as the default study runs it: replicate 0, t = 0.7, incremental up to 80% with
checkpoints at exactly 20/40/60/80%, one thread, on the committed pools of ``results/default``
(read only). Each measurement is a fresh subprocess running ``bench/teacher_step.py``, alternately
with the baseline code (``git archive`` of ``--baseline-rev``, the code before issue 14: test set
scored after every increment) and with this checkout (``teacher.evaluate: shares``, fp32), A B A B,
so drift in the machine's load cancels in the per-pair ratios. ``--base-cache cold``: every step
does its own human fine-tune (as the first step of a replicate does); ``warm``: the replicate's
fine-tune is cached beforehand (as every later step of the replicate finds it, with checkpoint 0's
test scores). ``--arms`` names this checkout's settings to time against the baseline: ``shares``
(the default study's), ``shares-no-transfer`` (also no transfer logits: a teacher no student is
distilled from, notebook parameter ``transfer_logits = False``) and ``every_increment`` (the whole
curve, as the baseline scores it: every checkpoint must then equal the baseline's).

Prints, per arm, the median wall and CPU time and the median seconds per phase; the median of the
per-repeat ratios (baseline / arm); and whether every metric at the checkpoints both score is
identical, bit for bit, as are the transfer logits. CPU time is the steadier measure on a shared
machine. ``--extras``: the older measurements (per-batch padding vs padding to 128, and the
student's inference latency against the teacher's).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE_REV = "c5f83e2"  # main before issue 14 (scoring after every increment, no precision setting)
METRIC_KEYS = ("auc", "auc_ci_low", "auc_ci_high", "macro_f1", "macro_f1_ci_low", "macro_f1_ci_high", "accuracy",
               "kappa", "n_added", "n_synthetic", "positive_rate")


def baseline_source(rev: str, folder: Path) -> Path:
    """``src/`` of commit ``rev``, extracted into ``folder`` (git archive: no worktree, nothing changed in git)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder / "src"


def run_step(src: Path, out: Path, *extra: str) -> dict:
    """One teacher step in a subprocess with ``src`` first on the path; returns its JSON record."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, str(REPO / "bench/teacher_step.py"), "--out", str(out), *extra],
                          cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"teacher step with {src} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(out.read_text())


def by_checkpoint(record: dict) -> dict[int, dict]:
    """checkpoint -> its metric row."""
    return {int(row["checkpoint"]): row for row in record["metrics"]}


def same_metrics(a: dict, b: dict, logits: bool = True) -> tuple[list[int], list[str]]:
    """The checkpoints both records scored, and every difference among their metrics and (with ``logits``)
    transfer logits (empty: identical)."""
    rows_a, rows_b = by_checkpoint(a), by_checkpoint(b)
    common = sorted(set(rows_a) & set(rows_b))
    problems = []
    for checkpoint in common:
        for key in METRIC_KEYS:
            x, y = rows_a[checkpoint].get(key), rows_b[checkpoint].get(key)
            if not (x == y or (x != x and y != y)):  # equal, or both nan
                problems.append(f"checkpoint {checkpoint} {key}: {x!r} vs {y!r}")
    if logits and a["transfer_logits_sum"] != b["transfer_logits_sum"]:
        problems.append(f"transfer logits differ: sum {a['transfer_logits_sum']!r} vs {b['transfer_logits_sum']!r}")
    return common, problems


def phase_table(records: list[dict], key: str = "phases_s") -> dict[str, float]:
    """Median seconds per phase over ``records``."""
    names = sorted({name for record in records for name in record[key]})
    return {name: statistics.median(record[key].get(name, 0.0) for record in records) for name in names}


def describe(name: str, records: list[dict]) -> None:
    walls = [r["total_s"] for r in records]
    cpus = [r["total_cpu_s"] for r in records]
    phases = phase_table(records)
    cpu_phases = phase_table(records, "phases_cpu_s")
    print(f"{name}: wall {statistics.median(walls):.1f} s (runs: {', '.join(f'{w:.1f}' for w in walls)}), "
          f"CPU {statistics.median(cpus):.1f} s; {len(by_checkpoint(records[0]))} checkpoints scored")
    for phase in sorted(phases, key=lambda p: -phases[p]):
        print(f"    {phase:<16} wall {phases[phase]:7.1f} s   CPU {cpu_phases.get(phase, 0.0):7.1f} s")


#: This checkout's settings per arm: teacher_step.py flags.
ARMS = {
    "shares": ["--evaluate", "shares", "--precision", "fp32"],
    "shares-no-transfer": ["--evaluate", "shares", "--precision", "fp32", "--no-transfer"],
    "every_increment": ["--evaluate", "every_increment", "--precision", "fp32"],
}
ARM_WORDS = {"shares": "teacher.evaluate: shares, fp32",
             "shares-no-transfer": "teacher.evaluate: shares, fp32, no transfer logits (a teacher nobody distils)",
             "every_increment": "teacher.evaluate: every_increment, fp32"}


def teacher_step_bench(args) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="bench-training-"))
    baseline = baseline_source(args.baseline_rev, scratch)
    this = REPO / "src"
    common = ["--replicate", "0", "--temperature", "0.7", "--shares", "0.2,0.4,0.6,0.8"]
    if args.base_cache == "warm":
        cache = scratch / "base_teachers"
        print("warming the base-teacher cache (the human fine-tune of replicate 0) …", flush=True)
        run_step(this, scratch / "warm.json", *common, "--base-cache", str(cache))
        common += ["--base-cache", str(cache)]
    arms = [a.strip() for a in args.arms.split(",")]
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        sys.exit(f"--arms: unknown {unknown}; choose from {sorted(ARMS)}")
    records = {"baseline": [], **{arm: [] for arm in arms}}
    for repeat in range(args.repeats):  # A B (C …) in turn: load drift cancels in the per-repeat ratios
        for name in records:
            src, extra = (baseline, []) if name == "baseline" else (this, ARMS[name])
            record = run_step(src, scratch / f"{name}-{repeat}.json", *common, *extra)
            records[name].append(record)
            print(f"  {name} run {repeat + 1}: {record['total_s']:.1f} s wall, {record['total_cpu_s']:.1f} s CPU, "
                  f"load {record['load_average'][0]:.1f}", flush=True)
    print(f"\nteacher step, replicate 0, t = 0.7, incremental to 80%, one thread, base cache {args.base_cache}; "
          f"baseline = {args.baseline_rev}")
    describe(f"baseline ({args.baseline_rev}, scored after every increment)", records["baseline"])
    for arm in arms:
        describe(f"this checkout ({ARM_WORDS[arm]})", records[arm])
    for arm in arms:
        wall = [a["total_s"] / b["total_s"] for a, b in zip(records["baseline"], records[arm])]
        cpu = [a["total_cpu_s"] / b["total_cpu_s"] for a, b in zip(records["baseline"], records[arm])]
        print(f"speed-up baseline / {arm} (median of {len(wall)} pairs): wall {statistics.median(wall):.2f}x "
              f"(pairs: {', '.join(f'{r:.2f}' for r in wall)}), CPU {statistics.median(cpu):.2f}x "
              f"(pairs: {', '.join(f'{r:.2f}' for r in cpu)})")
        checkpoints, problems = same_metrics(records["baseline"][0], records[arm][0],
                                             logits=arm != "shares-no-transfer")
        print(f"  {arm}: metrics at the checkpoints both score ({checkpoints})"
              + (" and the transfer logits" if arm != "shares-no-transfer" else "")
              + f" identical to the baseline's, bit for bit: {not problems}"
              + "".join(f"\n    {p}" for p in problems[:10]))
    for name, runs in records.items():
        repeatable = all(not same_metrics(runs[0], other)[1] for other in runs[1:])
        print(f"{name}: every repeat identical to the first: {repeatable}")
    print(f"{os.cpu_count()} CPU cores, load average now {', '.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"records in {scratch}")


def extras(args) -> None:
    """Per-batch padding vs padding to 128 in a teacher epoch, and student vs teacher latency."""
    sys.path.insert(0, str(REPO / "src"))
    import time

    import numpy as np
    import torch

    from synthmix.data.splits import load_study_data
    from synthmix.params import TeacherParams, parse_params
    from synthmix.steps.distill import measure_latency
    from synthmix.steps.models import load_classifier, make_student, parameter_count
    from synthmix.steps.training import fine_tune

    torch.set_num_threads(1)
    split = load_study_data(parse_params({"study": "bench"}))
    texts, labels = [], []
    for name in ("train", "validation", "test"):
        texts += list(split[name]["text"])
        labels += list(split[name]["label"])
    texts, labels = texts[:120], np.asarray(labels[:120])
    params = TeacherParams(max_length=128, batch_size=16)

    def epoch_seconds(pad: bool) -> float:
        times = []
        for _ in range(args.repeats):
            model, tokenizer = load_classifier("minilm-l6", seed=0)
            fine_tune(model, tokenizer, texts[:16], labels[:16], params, 0, epochs=1, pad_to_max_length=pad)  # warm-up
            began = time.perf_counter()
            fine_tune(model, tokenizer, texts, labels, params, 0, epochs=1, pad_to_max_length=pad)
            times.append(time.perf_counter() - began)
        return statistics.median(times)

    dynamic, fixed = epoch_seconds(False), epoch_seconds(True)
    print(f"teacher epoch (120 texts, one thread): per-batch padding {dynamic:.2f} s, pad-to-128 {fixed:.2f} s, "
          f"ratio {fixed / dynamic:.1f}x")
    teacher, teacher_tokenizer = load_classifier("minilm-l6", seed=0)
    student, student_tokenizer = make_student("minilm-l6", 3, seed=0)
    print(f"parameters: teacher {parameter_count(teacher) / 1e6:.1f} M, student {parameter_count(student) / 1e6:.1f} M")
    timed = list(split["test"]["text"])[:64]
    for batch_size in (1, 32):
        t = measure_latency(teacher, teacher_tokenizer, timed, batch_size, repeats=args.repeats)
        s = measure_latency(student, student_tokenizer, timed, batch_size, repeats=args.repeats)
        print(f"inference batch {batch_size:>2}: teacher {t * 1e3:.2f} ms/response, student {s * 1e3:.2f} ms/response, "
              f"speed-up {t / s:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="A B pairs (and repeats of the extras)")
    parser.add_argument("--base-cache", choices=["cold", "warm"], default="cold")
    parser.add_argument("--baseline-rev", default=BASELINE_REV, help="the commit whose code is 'today's'")
    parser.add_argument("--arms", default="shares", help=f"this checkout's settings, comma-separated: {', '.join(ARMS)}")
    parser.add_argument("--extras", action="store_true", help="only the padding and latency measurements")
    args = parser.parse_args()
    if args.extras:
        extras(args)
    else:
        teacher_step_bench(args)


if __name__ == "__main__":
    main()
