"""Distillation: train a smaller student on the teacher's logits, and measure what it saves.

``kd_loss`` is Hinton et al.'s knowledge-distillation loss; ``distill`` builds a student
(``models.make_student`` for ``'teacher-layers:N'``, else ``models.load_classifier``), trains it
on a transfer set labelled with the teacher's logits, scores it on the human test split, and
compares its size and CPU latency with the teacher's (``measure_latency``).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from synthmix.core import io
from synthmix.core.progress import report_progress
from synthmix.errors import InputError
from synthmix.params import StudentParams
from synthmix.steps import metrics as metrics_module
from synthmix.steps.devices import autocast, grad_scaler, model_precision, use_precision
from synthmix.steps.models import (
    load_classifier,
    make_student,
    model_device,
    parameter_count,
    resolve_model,
    size_on_disk_mb,
    student_spec,
)
from synthmix.steps.training import (
    TokenCache,
    _generator,
    batches,
    make_optimizer,
    predict_proba,
    set_seed,
    to_device,
    tokenize_batch,
)

LATENCY_BATCH_SIZES = (1, 32)
LATENCY_TEXTS = 64  # responses timed per repeat when no latency texts are given


# --------------------------------------------------------------------------------- the loss
def kd_loss(student_logits, teacher_logits, labels, temperature: float, alpha: float):
    """alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(softmax(teacher/T) || softmax(student/T)).

    The KL term is averaged over the batch (``batchmean``); T^2 keeps its gradients on the same
    scale as the cross-entropy's whatever T is. ``alpha=1`` is plain cross-entropy on labels,
    ``alpha=0`` pure imitation of the teacher. Returns a scalar tensor.
    """
    import torch.nn.functional as F

    hard = F.cross_entropy(student_logits, labels)
    soft = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=-1),
        F.log_softmax(teacher_logits / temperature, dim=-1),
        reduction="batchmean",
        log_target=True,
    )
    return alpha * hard + (1.0 - alpha) * temperature**2 * soft


# ------------------------------------------------------------------------------- latency
def measure_latency(model, tokenizer, texts, batch_size: int, repeats: int = 3, max_length: int = 128) -> float:
    """Seconds per response to score ``texts`` on the model's device in batches of ``batch_size``.

    Tokenising is included (it is part of serving a response). One warm-up batch first, then
    ``repeats`` timed passes over all texts under ``torch.inference_mode``; the median pass time
    divided by the number of texts is returned.
    """
    import torch

    texts = list(texts)
    if not texts:
        raise ValueError("measure_latency needs at least one text")
    model.eval()
    device = model_device(model)
    timings = []
    with torch.inference_mode(), autocast(device, model_precision(model)):
        model(**to_device(tokenize_batch(tokenizer, texts[:batch_size], max_length), device))  # warm-up
        for _ in range(repeats):
            _synchronise(device)
            start = time.perf_counter()
            for begin in range(0, len(texts), batch_size):
                model(**to_device(tokenize_batch(tokenizer, texts[begin : begin + batch_size], max_length), device))
            _synchronise(device)
            timings.append(time.perf_counter() - start)
    return statistics.median(timings) / len(texts)


def _synchronise(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------ the run
@dataclass
class StudentRun:
    """What one distillation produced.

    ``metrics``: ``metrics.evaluate`` on the human test split; ``test_predictions``: id, label,
    score per test item; ``history``: mean KD loss per epoch; parameter counts and sizes on disk
    (MB) of student and teacher; ``latency``: seconds per response, ``{"student": {1: s, 32: s},
    "teacher": {...}}``; ``speedup``: teacher / student latency per batch size;
    ``student_layers``: the teacher layers the student kept (``None`` for a named student model).
    """

    metrics: dict
    test_predictions: pd.DataFrame
    history: dict
    student_parameters: int
    teacher_parameters: int
    student_size_mb: float
    teacher_size_mb: float
    latency: dict
    speedup: dict
    student_layers: list | None = None
    model: object = field(default=None, repr=False)
    tokenizer: object = field(default=None, repr=False)

    def summary(self) -> dict:
        """One flat JSON-ready dict: metrics, sizes, latencies and speed-ups."""
        out = dict(self.metrics)
        out.update(
            student_parameters=self.student_parameters,
            teacher_parameters=self.teacher_parameters,
            parameter_ratio=self.teacher_parameters / self.student_parameters,
            student_size_mb=self.student_size_mb,
            teacher_size_mb=self.teacher_size_mb,
            student_layers=self.student_layers,
        )
        for who, by_batch in self.latency.items():
            for batch_size, seconds in by_batch.items():
                out[f"{who}_latency_batch{batch_size}_s"] = seconds
        for batch_size, ratio in self.speedup.items():
            out[f"speedup_batch{batch_size}"] = ratio
        return out


def _check_transfer(transfer: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("text", "label", "logit_0", "logit_1") if c not in transfer.columns]
    if missing:
        raise InputError(
            f"transfer set: column {', '.join(missing)} not found; columns are: {', '.join(map(str, transfer.columns))}"
        )
    if transfer.empty:
        raise InputError("transfer set: no responses to distil on")
    labels = pd.to_numeric(transfer["label"], errors="coerce")
    if not labels.isin([0, 1]).all():
        raise InputError("transfer set: column 'label' must hold 0/1")
    return transfer.assign(label=labels.astype("int64")).reset_index(drop=True)


def train_student(model, tokenizer, transfer: pd.DataFrame, params: StudentParams, seed: int, max_length: int = 128,
                  tokens: TokenCache | None = None) -> dict:
    """Train ``model`` in place for ``params.epochs`` shuffled passes over ``transfer`` with ``kd_loss``.

    Runs in the model's precision (``devices.use_precision``); the transfer texts are tokenised
    once (``tokens``, or a ``TokenCache`` made here). Returns ``{"train_losses": [mean loss per
    epoch], "n_transfer": n}``.
    """
    import torch

    transfer = _check_transfer(transfer)
    device, precision = model_device(model), model_precision(model)
    tokens = tokens if tokens is not None else TokenCache(tokenizer, max_length)
    teacher_logits = torch.as_tensor(transfer[["logit_0", "logit_1"]].to_numpy(dtype=np.float32, copy=True)).to(device)
    set_seed(seed)
    generator = _generator(seed)
    optimizer = make_optimizer(model, params.learning_rate)
    scaler = grad_scaler(device, precision)
    history = {"train_losses": [], "n_transfer": len(transfer)}
    model.train()
    for epoch in range(1, params.epochs + 1):
        losses = []
        for index, inputs in batches(tokenizer, transfer["text"], transfer["label"], params.batch_size, max_length, generator,
                                     tokens=tokens):
            inputs = to_device(inputs, device)
            labels = inputs.pop("labels")
            with autocast(device, precision):
                logits = model(**inputs).logits
            loss = kd_loss(logits.float(), teacher_logits[torch.as_tensor(index, device=device)], labels,
                           params.temperature, params.alpha)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(loss.item())
        history["train_losses"].append(float(np.mean(losses)))
        report_progress(epoch, params.epochs, "student epoch")
    model.eval()
    return history


def distill(
    base_model: str,
    student_params: StudentParams,
    transfer: pd.DataFrame,
    test_texts,
    test_labels,
    seed: int,
    max_length: int = 128,
    *,
    teacher=None,
    test_ids=None,
    n_resamples: int = 1000,
    latency_texts=None,
    batch_sizes=LATENCY_BATCH_SIZES,
    device=None,
    precision: str = "fp32",
) -> StudentRun:
    """Distil a teacher into a student and return a ``StudentRun``.

    ``base_model`` is the teacher's *pre-trained* model name (``teacher.model``): a
    ``'teacher-layers:N'`` student is built from its layers (``models.make_student``), any other
    ``student_params.model`` is loaded as is. ``transfer`` holds text, label and the teacher's
    logit_0/logit_1 for each transfer response (``TeacherRun.transfer_logits`` plus labels).
    The student trains ``student_params.epochs`` passes with ``kd_loss`` and is scored on the
    human test texts. ``teacher=(model, tokenizer)`` is the fine-tuned teacher used for the
    size and latency comparison; without it a freshly loaded ``base_model`` classifier stands in
    (same architecture and size, so the same latency). Latency is timed on ``latency_texts``
    (default: the first 64 test texts) at each of ``batch_sizes``. The student trains and predicts
    in ``precision`` (``devices.resolve_precision``); latencies are timed in each model's own.
    """
    n_layers = student_spec(student_params.model)
    if n_layers is not None:
        student, tokenizer = make_student(base_model, n_layers, seed, device)
        kept = list(student.config.synthmix_student_of["layers"])
    else:
        resolve_model(student_params.model, key="student.model")  # fail with the right key
        student, tokenizer = make_student(student_params.model, None, seed, device)
        kept = None
    use_precision(student, precision)
    tokens = TokenCache(tokenizer, max_length)
    history = train_student(student, tokenizer, transfer, student_params, seed, max_length, tokens)

    test_texts, test_labels = list(test_texts), np.asarray(test_labels, dtype=np.int64)
    scores = predict_proba(student, tokenizer, test_texts, max_length=max_length, tokens=tokens)
    scored = metrics_module.evaluate(test_labels, scores, n_resamples=n_resamples, seed=seed)
    predictions = pd.DataFrame(
        {"id": list(test_ids) if test_ids is not None else list(range(len(test_texts))), "label": test_labels, "score": scores}
    )

    teacher_model, teacher_tokenizer = teacher if teacher is not None else load_classifier(base_model, seed, device)
    timed = list(latency_texts) if latency_texts is not None else test_texts[:LATENCY_TEXTS]
    latency = {
        "student": {b: measure_latency(student, tokenizer, timed, b, max_length=max_length) for b in batch_sizes},
        "teacher": {b: measure_latency(teacher_model, teacher_tokenizer, timed, b, max_length=max_length) for b in batch_sizes},
    }
    return StudentRun(
        metrics=scored,
        test_predictions=predictions,
        history=history,
        student_parameters=parameter_count(student),
        teacher_parameters=parameter_count(teacher_model),
        student_size_mb=size_on_disk_mb(student),
        teacher_size_mb=size_on_disk_mb(teacher_model),
        latency=latency,
        speedup={b: latency["teacher"][b] / latency["student"][b] for b in batch_sizes},
        student_layers=kept,
        model=student,
        tokenizer=tokenizer,
    )


# --------------------------------------------------------------------------------- saving
def save_student_run(run: StudentRun, teacher_metrics: pd.DataFrame, output_dir, replicate: int) -> dict:
    """Write student_metrics.json and student_predictions.parquet; return the summary written.

    The summary is ``StudentRun.summary()`` plus ``replicate`` and ``comparison``: one record each for
    the teacher (test metrics of its final checkpoint in ``teacher_metrics``) and the student,
    with AUC and its CI, macro F1, kappa, parameters, size on disk and latency per response.
    """
    output_dir = Path(output_dir)
    final = teacher_metrics.sort_values("checkpoint").iloc[-1] if len(teacher_metrics) else pd.Series(dtype=float)
    keys = ("auc", "auc_ci_low", "auc_ci_high", "macro_f1", "accuracy", "kappa")

    def record(model: str, scores, parameters: int, size_mb: float) -> dict:
        out = {"model": model}
        out.update({k: float(scores[k]) if k in scores else float("nan") for k in keys})
        out.update(parameters=int(parameters), size_mb=float(size_mb))
        for batch_size, seconds in run.latency[model].items():
            out[f"latency_batch{batch_size}_s"] = float(seconds)
        return out

    summary = run.summary()
    summary["replicate"] = int(replicate)
    summary["comparison"] = [
        record("teacher", final, run.teacher_parameters, run.teacher_size_mb),
        record("student", run.metrics, run.student_parameters, run.student_size_mb),
    ]
    io.write_table(output_dir / "student_predictions.parquet", run.test_predictions)
    io.write_json(output_dir / "student_metrics.json", summary)
    return summary
