"""Benchmark: what per-batch padding saves in training, and what the student saves in inference.

On the embedded tutor-feedback data (human train + validation, topped up with test texts to
~120 training texts; a benchmark, so no evaluation is done), on CPU:

* one teacher epoch (all-MiniLM-L6-v2, batch 16, max_length 128) with per-batch padding vs
  padding every batch to 128 tokens, from the same initial weights;
* inference latency per response of the 3-layer student vs the 6-layer teacher at batch 1 and 32.

Run: ``.venv/bin/python bench/bench_training.py [--texts 120] [--repeats 3] [--threads N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from synthmix.data.splits import load_study_data  # noqa: E402
from synthmix.params import TeacherParams, parse_params  # noqa: E402
from synthmix.steps.distill import measure_latency  # noqa: E402
from synthmix.steps.models import load_classifier, make_student, parameter_count  # noqa: E402
from synthmix.steps.training import fine_tune  # noqa: E402


def training_texts(n: int):
    """Human train + validation, topped up with test texts, to ``n`` labelled texts."""
    split = load_study_data(parse_params({"study": "bench"}))
    texts, labels = [], []
    for name in ("train", "validation", "test"):
        texts += list(split[name]["text"])
        labels += list(split[name]["label"])
    return texts[:n], np.asarray(labels[:n]), list(split["test"]["text"])


def epoch_seconds(texts, labels, params: TeacherParams, pad_to_max_length: bool, repeats: int) -> float:
    """Median wall time of one epoch from the same pre-trained weights (a warm-up step first)."""
    times = []
    for _ in range(repeats):
        model, tokenizer = load_classifier("minilm-l6", seed=0)
        fine_tune(model, tokenizer, texts[: params.batch_size], labels[: params.batch_size], params, 0, epochs=1,
                  pad_to_max_length=pad_to_max_length)  # warm-up
        start = time.perf_counter()
        fine_tune(model, tokenizer, texts, labels, params, 0, epochs=1, pad_to_max_length=pad_to_max_length)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=120, help="training texts per epoch")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median)")
    parser.add_argument("--latency-texts", type=int, default=64, help="texts timed for latency")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    params = TeacherParams(max_length=128, batch_size=16)
    texts, labels, test_texts = training_texts(args.texts)
    _, tokenizer = load_classifier("minilm-l6", seed=0)
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=128)["input_ids"]]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; all-MiniLM-L6-v2 teacher")
    print(f"training texts: {len(texts)} (tokens: mean {np.mean(lengths):.1f}, max {max(lengths)}), "
          f"batch {params.batch_size}, max_length {params.max_length}")

    dynamic = epoch_seconds(texts, labels, params, False, args.repeats)
    fixed = epoch_seconds(texts, labels, params, True, args.repeats)
    print(f"teacher epoch: per-batch padding {dynamic:.2f} s, pad-to-128 {fixed:.2f} s, ratio {fixed / dynamic:.1f}x")

    teacher, teacher_tokenizer = load_classifier("minilm-l6", seed=0)
    student, student_tokenizer = make_student("minilm-l6", 3, seed=0)
    print(f"parameters: teacher {parameter_count(teacher) / 1e6:.1f} M (6 layers), "
          f"student {parameter_count(student) / 1e6:.1f} M (3 layers: {student.config.synthmix_student_of['layers']}), "
          f"ratio {parameter_count(teacher) / parameter_count(student):.2f}x")
    timed = test_texts[: args.latency_texts]
    for batch_size in (1, 32):
        t = measure_latency(teacher, teacher_tokenizer, timed, batch_size, repeats=args.repeats)
        s = measure_latency(student, student_tokenizer, timed, batch_size, repeats=args.repeats)
        print(f"inference batch {batch_size:>2}: teacher {t * 1e3:.2f} ms/response, "
              f"student {s * 1e3:.2f} ms/response, speed-up {t / s:.2f}x")


if __name__ == "__main__":
    main()
