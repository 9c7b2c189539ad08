"""Teacher training: fine-tune, predict, and the protocols of the study.

Read top to bottom: seeding, batching, one fine-tuning loop (AdamW, optional early stopping on
the human validation split), prediction, then the protocols that produce a ``TeacherRun``:

* ``train_incremental`` -- fine-tune on human train (early stopping on human validation), then
  add synthetic responses in increments (``sampling.increment_schedule``: a checkpoint at exactly
  every share asked for), one pass each, and evaluate on the human test split after every step;
  with ``replay=True`` the increments are human training responses drawn afresh: the control
  that separates "more synthetic data" from "more training";
* ``train_mixed`` -- fine-tune from the pre-trained model on human train plus synthetic
  responses making up exactly a given share of the training data (early stopping on validation).

A replicate's training seed, synthetic draw and human split all derive from its number.

The human test split is only ever predicted and scored: no choice (early stopping, best epoch)
looks at it. ``TeacherRun.used_rows`` records which human rows went where, so this can be checked.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from synthmix import io
from synthmix import metrics as metrics_module
from synthmix.errors import InputError
from synthmix.devices import autocast, grad_scaler, inference_batch_size, pin_memory
from synthmix.models import load_classifier, model_device
from synthmix.params import TeacherParams
from synthmix.progress import report_progress
from synthmix.sampling import (
    draw_human_replay,
    draw_mixture,
    draw_schedule,
    increment_schedule,
    positive_rate,
    share_checkpoints,
)

#: The columns that identify a row of ``TeacherRun.metrics``; the metric columns follow them.
METRIC_COLUMNS = ("protocol", "replicate", "checkpoint", "n_human", "n_added", "n_synthetic", "synthetic_share",
                  "target_share", "positive_rate")


# ------------------------------------------------------------------------------- seeding
def set_seed(seed: int) -> None:
    """Seed python ``random``, numpy and torch, and ask torch for deterministic kernels.

    Dropout draws from torch's global RNG, so this is called at the start of every training
    loop; the order of examples comes from explicit generators seeded from the same seed.
    """
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
    except Exception:  # an old or unusual build: CPU kernels used here are deterministic anyway
        pass


def _generator(seed: int):
    import torch

    return torch.Generator().manual_seed(int(seed))


def make_optimizer(model, learning_rate: float):
    """AdamW over all of ``model``'s parameters; the fused CPU kernel where torch has one.

    Fused AdamW does the same update as the per-tensor loop, several times faster on CPU
    (the optimizer step dominates a small batch's training time here).
    """
    import torch

    try:
        return torch.optim.AdamW(model.parameters(), lr=learning_rate, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(model.parameters(), lr=learning_rate)


# ------------------------------------------------------------------------------ batching
def tokenize_batch(tokenizer, texts, max_length: int = 128, pad_to_max_length: bool = False) -> dict:
    """Tensors for one batch: truncated to ``max_length`` and padded to the batch's longest text.

    ``pad_to_max_length=True`` pads every batch to ``max_length`` instead; it only exists so the
    benchmark can show what per-batch padding saves.
    """
    return tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        padding="max_length" if pad_to_max_length else True,
        return_tensors="pt",
    )


def iterate_batches(n: int, batch_size: int, generator=None):
    """Index arrays of successive batches over ``n`` examples; shuffled when ``generator`` is given."""
    import torch

    order = torch.randperm(n, generator=generator).numpy() if generator is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def batches(tokenizer, texts, labels, batch_size: int, max_length: int = 128, generator=None, pad_to_max_length: bool = False):
    """``(indices, inputs)`` per batch, ``inputs`` holding the tokens and, with ``labels``, ``labels``.

    The order is shuffled by ``generator`` (a seeded ``torch.Generator``) or kept as given.
    """
    import torch

    texts = list(texts)
    for index in iterate_batches(len(texts), batch_size, generator):
        inputs = tokenize_batch(tokenizer, [texts[i] for i in index], max_length, pad_to_max_length)
        if labels is not None:
            inputs["labels"] = torch.as_tensor(np.asarray(labels)[index], dtype=torch.long)
        yield index, inputs


# ----------------------------------------------------------------------------- predicting
def predict_logits(model, tokenizer, texts, batch_size: int = 64, max_length: int = 128) -> np.ndarray:
    """``(n, 2)`` float logits of ``model`` for ``texts``, in the order given.

    Texts are batched in order of length (stable sort) so that little padding is computed;
    the result is put back in the input order.
    """
    import torch

    texts = list(texts)
    out = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    if not texts:
        return out
    order = np.argsort([len(t) for t in texts], kind="stable")
    was_training = model.training
    model.eval()
    device = model_device(model)
    batch_size = inference_batch_size(device, batch_size)
    with torch.inference_mode(), autocast(device):
        for start in range(0, len(texts), batch_size):
            index = order[start : start + batch_size]
            inputs = to_device(tokenize_batch(tokenizer, [texts[i] for i in index], max_length), device)
            out[index] = model(**inputs).logits.float().cpu().numpy()
    model.train(was_training)
    return out


def to_device(inputs: dict, device) -> dict:
    """A batch's tensors on ``device`` (unchanged on the CPU; pinned and copied asynchronously to CUDA)."""
    if device.type == "cpu":
        return inputs
    pin = pin_memory(device)
    return {k: (v.pin_memory() if pin else v).to(device, non_blocking=pin) for k, v in inputs.items()}


def softmax_positive(logits: np.ndarray) -> np.ndarray:
    """P(label 1) from ``(n, 2)`` logits (computed in float64)."""
    logits = np.asarray(logits, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(logits[:, 0] - logits[:, 1]))


def predict_proba(model, tokenizer, texts, batch_size: int = 64, max_length: int = 128) -> np.ndarray:
    """P(label 1) for each text: the teacher's score, as ``metrics.evaluate`` wants it."""
    return softmax_positive(predict_logits(model, tokenizer, texts, batch_size, max_length))


# ----------------------------------------------------------------------------- fine-tuning
def fine_tune(
    model,
    tokenizer,
    train_texts,
    train_labels,
    params: TeacherParams,
    seed: int,
    validation=None,
    epochs: int | None = None,
    pad_to_max_length: bool = False,
) -> dict:
    """Train ``model`` in place with AdamW (``params.learning_rate``, constant) and return a history.

    Each epoch is one shuffled pass (order from a generator seeded by ``seed``) in batches of
    ``params.batch_size``, padded per batch. With ``validation=(texts, labels)``: after every
    epoch the mean cross-entropy on the validation texts is computed; training stops once it
    has not improved for ``params.patience`` epochs, and the weights of the best epoch (lowest
    validation loss) are restored. Validation *loss* rather than AUC is used because it still
    moves when a small validation split is already perfectly ranked. Without validation the
    model trains exactly ``epochs`` passes (default ``params.max_epochs``); ``epochs=1`` is one
    pass, as used for each synthetic increment. A fresh optimizer is made on every call.

    Returns ``{"epochs_run", "best_epoch", "train_losses", "validation_losses",
    "validation_auc", "stopped_early", "n_train"}`` (losses are per-epoch means).
    """
    import torch

    train_texts, train_labels = list(train_texts), np.asarray(train_labels, dtype=np.int64)
    max_epochs = int(epochs if epochs is not None else params.max_epochs)
    history = {
        "epochs_run": 0,
        "best_epoch": 0,
        "train_losses": [],
        "validation_losses": [],
        "validation_auc": [],
        "stopped_early": False,
        "n_train": len(train_texts),
    }
    if not train_texts:
        return history
    set_seed(seed)
    generator = _generator(seed)
    optimizer = make_optimizer(model, params.learning_rate)
    device = model_device(model)
    scaler = grad_scaler(device)  # disabled (a pass-through) on the CPU and for bf16
    best_loss, best_state, waited = float("inf"), None, 0

    for epoch in range(1, max_epochs + 1):
        model.train()
        losses = []
        for _, inputs in batches(
            tokenizer, train_texts, train_labels, params.batch_size, params.max_length, generator, pad_to_max_length
        ):
            with autocast(device):
                loss = model(**to_device(inputs, device)).loss
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(loss.item())
        model.eval()
        if validation is not None:  # the long, early-stopped fine-tunes; one-pass increments report below
            report_progress(epoch, max_epochs, "fine-tune epoch (early stopping may end it sooner)")
        history["epochs_run"] = epoch
        history["train_losses"].append(float(np.mean(losses)))
        if validation is None:
            history["best_epoch"] = epoch
            continue

        val_texts, val_labels = list(validation[0]), np.asarray(validation[1], dtype=np.int64)
        logits = predict_logits(model, tokenizer, val_texts, max(params.batch_size, 32), params.max_length)
        val_loss = float(
            torch.nn.functional.cross_entropy(torch.as_tensor(logits), torch.as_tensor(val_labels))
        )
        history["validation_losses"].append(val_loss)
        history["validation_auc"].append(
            metrics_module.classification_metrics(val_labels, softmax_positive(logits))["auc"]
        )
        if val_loss < best_loss:
            best_loss, waited, history["best_epoch"] = val_loss, 0, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
            if waited >= params.patience:
                history["stopped_early"] = epoch < max_epochs
                break

    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


# ------------------------------------------------------------------------------ protocols
@dataclass
class TeacherRun:
    """What one teacher training run produced (see ``train_incremental`` / ``train_mixed``).

    ``metrics``: one row per checkpoint (``METRIC_COLUMNS``: protocol, replicate, checkpoint, the
    responses trained on, shares and the positive rate seen, then every key of ``metrics.evaluate``); ``test_predictions``: checkpoint,
    id, row, label, score for each human test item; ``transfer_logits``: text, logit_0, logit_1
    of the final model (empty without transfer texts); ``history``: the fine-tuning histories;
    ``used_rows``: the human ``row`` values used for ``train``, ``validation`` and
    ``evaluation``; ``model``/``tokenizer``: the final model.
    """

    metrics: pd.DataFrame
    test_predictions: pd.DataFrame
    transfer_logits: pd.DataFrame
    history: dict
    used_rows: dict
    model: object = field(default=None, repr=False)
    tokenizer: object = field(default=None, repr=False)


def _check_synthetic(synthetic: pd.DataFrame | None) -> pd.DataFrame:
    if synthetic is None:
        return pd.DataFrame({"text": pd.Series(dtype=str), "label": pd.Series(dtype="int64")})
    missing = [c for c in ("text", "label") if c not in synthetic.columns]
    if missing:
        raise InputError(f"synthetic responses: column {', '.join(missing)} not found; columns are: {', '.join(map(str, synthetic.columns))}")
    labels = pd.to_numeric(synthetic["label"], errors="coerce")
    if not labels.isin([0, 1]).all():
        raise InputError("synthetic responses: column 'label' must hold 0/1 (the label each response was generated for)")
    return synthetic.assign(label=labels.astype("int64")).reset_index(drop=True)


def _split(human, name: str):
    part = human[name]
    return list(part["text"]), np.asarray(part["label"], dtype=np.int64)


class _Recorder:
    """Collects the metric rows and test predictions of one run, checkpoint by checkpoint."""

    def __init__(self, protocol: str, replicate: int, human, params: TeacherParams):
        self.protocol, self.replicate, self.params = protocol, replicate, params
        self.test = human["test"]
        self.rows, self.predictions = [], []

    def evaluate(self, model, tokenizer, checkpoint: int, n_human: int, n_synthetic: int, *, n_added: int | None = None,
                 positives_seen: int = 0, target_share: float = float("nan")) -> None:
        labels = np.asarray(self.test["label"], dtype=np.int64)
        scores = predict_proba(model, tokenizer, self.test["text"], max_length=self.params.max_length)
        n_added = n_synthetic if n_added is None else n_added
        total = n_human + n_synthetic
        share = n_synthetic / total if total else float("nan")
        seen = n_human + n_added
        row = dict(zip(METRIC_COLUMNS, (self.protocol, self.replicate, checkpoint, n_human, n_added, n_synthetic, share,
                                        target_share, positives_seen / seen if seen else float("nan"))))
        row.update(metrics_module.evaluate(labels, scores, n_resamples=self.params.bootstrap_resamples,
                                           seed=[self.replicate, checkpoint]))
        self.rows.append(row)
        self.predictions.append(
            pd.DataFrame(
                {
                    "checkpoint": checkpoint,
                    "id": list(self.test["id"]),
                    "row": np.asarray(self.test["row"], dtype=np.int64),
                    "item": list(self.test["item"]) if "item" in self.test.column_names else "",
                    "label": labels,
                    "score": scores,
                }
            )
        )

    def run(self, model, tokenizer, history, used_rows, transfer_texts) -> TeacherRun:
        if transfer_texts is not None:
            transfer_texts = list(transfer_texts)
            logits = predict_logits(model, tokenizer, transfer_texts, max_length=self.params.max_length)
            transfer = pd.DataFrame({"text": transfer_texts, "logit_0": logits[:, 0], "logit_1": logits[:, 1]})
        else:
            transfer = pd.DataFrame(columns=["text", "logit_0", "logit_1"])
        used_rows["evaluation"] = [int(r) for r in self.test["row"]]
        return TeacherRun(
            metrics=pd.DataFrame(self.rows),
            test_predictions=pd.concat(self.predictions, ignore_index=True),
            transfer_logits=transfer,
            history=history,
            used_rows=used_rows,
            model=model,
            tokenizer=tokenizer,
        )


def training_seed(replicate: int, step: int = 0) -> int:
    """The torch seed of replicate ``replicate``'s training (``step`` > 0: its k-th increment)."""
    return int(replicate) * 10_000 + int(step)


def fine_tune_on_human(human, params: TeacherParams, seed: int, cache_dir=None, device=None):
    """The pre-trained model fine-tuned on human train with early stopping on human validation.

    Returns ``(model, tokenizer, history)``. With ``cache_dir``, the result is stored there keyed
    by everything that determines it (model, settings, the human texts and labels, seed), so the
    conditions that share it (every incremental run of a replicate, the replay control, the
    teacher-agreement filter) compute it once; a cached model is loaded bit-for-bit, so results
    do not change. Entries are written with the normal file modes.
    """
    import json
    import shutil
    import tempfile

    train_texts, train_labels = _split(human, "train")
    validation = _split(human, "validation")
    key = io.stable_hash({"model": params.model, "settings": params.model_dump(include={
        "max_length", "batch_size", "learning_rate", "max_epochs", "patience"}),
        "train": [train_texts, train_labels.tolist()], "validation": [validation[0], validation[1].tolist()],
        "seed": seed}, length=16)
    folder = Path(cache_dir) / key if cache_dir else None
    if folder is not None and (folder / "history.json").is_file():
        model, tokenizer = load_classifier(str(folder), seed, device)
        return model, tokenizer, json.loads((folder / "history.json").read_text())
    model, tokenizer = load_classifier(params.model, seed, device)
    history = fine_tune(model, tokenizer, train_texts, train_labels, params, seed, validation=validation)
    if folder is not None:  # written aside, then renamed: a half-written cache entry is never read
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=folder.parent))
        model.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
        (scratch / "history.json").write_text(json.dumps(history))
        io.normal_modes(scratch)
        try:
            scratch.rename(folder)
        except OSError:  # another process stored the same entry first
            shutil.rmtree(scratch, ignore_errors=True)
    return model, tokenizer, history


def train_incremental(human, synthetic: pd.DataFrame | None, params: TeacherParams, replicate: int, shares,
                      label_balance: str = "match_human", transfer_texts=None, base_cache_dir=None,
                      replay: bool = False, what: str = "pool", device=None, item_weights: dict | None = None
                      ) -> TeacherRun:
    """The paper's incremental protocol (or, with ``replay``, its training-steps control).

    Checkpoint 0: the pre-trained ``params.model`` fine-tuned on human train with early stopping
    on human validation, scored on human test. Then the run continues one pass per increment on
    the responses of ``sampling.increment_schedule``: steps of ``params.increment`` up to the
    largest of ``shares``, with a checkpoint at exactly each share. Synthetic increments are drawn
    from ``synthetic`` without replacement at the label balance asked for (``sampling.draw_schedule``);
    with ``replay`` the same counts are drawn afresh from the human training data instead
    (``sampling.draw_human_replay``), so a gain of the synthetic arm over the replay arm is not
    just more training. Each increment is its own ``fine_tune`` call (fresh AdamW, no early
    stopping). ``n_added`` counts the responses added after the human fine-tune. With
    ``item_weights`` (item -> human training responses) every increment is split across items in
    proportion to the human data, from each item's own synthetic responses.
    """
    train_texts, train_labels = _split(human, "train")
    n_human = len(train_texts)
    rate = positive_rate(train_labels, label_balance)
    schedule = increment_schedule(n_human, shares, params.increment)
    at_share = {count: share for share, count in share_checkpoints(n_human, shares).items()}
    protocol = "replay" if replay else "incremental"
    recorder = _Recorder(protocol, replicate, human, params)

    model, tokenizer, initial = fine_tune_on_human(human, params, training_seed(replicate), base_cache_dir, device)
    positives = int(train_labels.sum())
    recorder.evaluate(model, tokenizer, 0, n_human, 0, positives_seen=positives, target_share=at_share.get(0, 0.0))
    if replay:
        chunks = [(np.asarray(train_texts, dtype=object)[rows].tolist(), train_labels[rows])
                  for rows in draw_human_replay(train_labels, schedule, rate, [replicate, 3])]
    else:
        synthetic = _check_synthetic(synthetic)
        chunks = [(list(chunk["text"]), chunk["label"].to_numpy(dtype=np.int64))
                  for chunk in draw_schedule(synthetic, schedule, rate, [replicate, 1], what, item_weights)]
    steps = []
    for checkpoint, ((texts, labels), count) in enumerate(zip(chunks, schedule), start=1):
        steps.append(fine_tune(model, tokenizer, texts, labels, params, training_seed(replicate, checkpoint), epochs=1))
        positives += int(np.sum(labels))
        recorder.evaluate(model, tokenizer, checkpoint, n_human, 0 if replay else count, n_added=count,
                          positives_seen=positives, target_share=at_share.get(count, float("nan")))
        report_progress(count, schedule[-1], "responses added")

    used_rows = {
        "train": [int(r) for r in human["train"]["row"]],
        "validation": [int(r) for r in human["validation"]["row"]],
    }
    history = {"initial": initial, "increments": steps, "schedule": schedule, "positive_rate_drawn": rate,
               "label_balance": label_balance, "shares": [float(s) for s in shares]}
    return recorder.run(model, tokenizer, history, used_rows, transfer_texts)


def train_mixed(human, synthetic: pd.DataFrame | None, share: float, params: TeacherParams, replicate: int,
                label_balance: str = "match_human", transfer_texts=None, what: str = "pool", device=None,
                item_weights: dict | None = None) -> TeacherRun:
    """The mixed protocol: fine-tune the pre-trained model on human + synthetic at exactly ``share``.

    The synthetic responses are drawn by ``sampling.draw_mixture`` (share 1: synthetic only, as
    many as the human training data), training uses early stopping on human validation, and the
    result is scored once on human test (checkpoint 0). A pool that cannot supply the share
    raises ``sampling.PoolShortage``: a share is never silently capped.
    """
    synthetic = _check_synthetic(synthetic)
    train_texts, train_labels = _split(human, "train")
    rate = positive_rate(train_labels, label_balance)
    n_human, chosen = draw_mixture(synthetic, len(train_texts), share, rate, [replicate, 2], what, item_weights)
    texts = train_texts[:n_human] + list(chosen["text"])
    labels = np.concatenate([train_labels[:n_human], chosen["label"].to_numpy(dtype=np.int64)])

    model, tokenizer = load_classifier(params.model, training_seed(replicate), device)
    recorder = _Recorder("mixed", replicate, human, params)
    fit = fine_tune(model, tokenizer, texts, labels, params, training_seed(replicate),
                    validation=_split(human, "validation"))
    recorder.evaluate(model, tokenizer, 0, n_human, len(chosen), positives_seen=int(labels.sum()),
                      target_share=float(share))

    used_rows = {
        "train": [int(r) for r in human["train"]["row"]][:n_human],
        "validation": [int(r) for r in human["validation"]["row"]],
    }
    history = {"fit": fit, "target_share": float(share), "achieved_share": len(chosen) / len(labels),
               "synthetic_index": chosen.index.tolist(), "label_balance": label_balance}
    return recorder.run(model, tokenizer, history, used_rows, transfer_texts)


# --------------------------------------------------------------------------------- saving
def transfer_set(human, pool: pd.DataFrame | None) -> pd.DataFrame:
    """The texts a student is distilled on: human train plus the *whole* synthetic pool.

    Columns text, label, source ('human' / 'synthetic'); the pool is taken before filtering, so
    it includes responses the teacher never trained on. The human test split is never included.
    """
    parts = [pd.DataFrame({"text": list(human["train"]["text"]), "label": np.asarray(human["train"]["label"], dtype=np.int64), "source": "human"})]
    pool = _check_synthetic(pool)
    parts.append(pd.DataFrame({"text": pool["text"].astype(str), "label": pool["label"], "source": "synthetic"}))
    return pd.concat(parts, ignore_index=True)


def _plain(value):
    """JSON-friendly python scalars from numpy/pandas values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def save_teacher_run(run: TeacherRun, transfer: pd.DataFrame | None, output_dir, protocol: str, replicate: int,
                     keep_model: bool = False, extra: dict | None = None) -> dict:
    """Write a teacher run for the next steps and return its report (also in teacher_report.json).

    Files: metrics.parquet, test_predictions.parquet, transfer_logits.parquet (the ``transfer``
    table -- text, label, source -- with the final model's logit_0/logit_1 beside it, as
    ``distill`` wants it) and teacher_report.json (early stopping, used rows, histories, final
    metrics); with ``keep_model`` also the model and tokenizer in ``model/``.
    """
    output_dir = Path(output_dir)
    logits = run.transfer_logits.reset_index(drop=True)
    if transfer is not None:
        transfer = transfer.reset_index(drop=True)
        if len(transfer) != len(logits) or list(transfer["text"]) != list(logits["text"]):
            raise ValueError("save_teacher_run: the transfer table does not match the texts the run was given")
        logits = pd.concat([transfer, logits[["logit_0", "logit_1"]]], axis=1)
    initial = run.history.get("initial", run.history.get("fit", {}))
    final = run.metrics.iloc[-1].to_dict()
    report = {
        "protocol": protocol,
        "replicate": int(replicate),
        "early_stopping": {key: initial.get(key) for key in ("epochs_run", "best_epoch", "stopped_early", "validation_losses")},
        "checkpoints": int(len(run.metrics)),
        "final": final,
        "used_rows": run.used_rows,
        "history": run.history,
        "model_kept": bool(keep_model),
        **(extra or {}),
    }
    report = _plain(report)
    io.write_table(output_dir / "metrics.parquet", run.metrics)
    io.write_table(output_dir / "test_predictions.parquet", run.test_predictions)
    io.write_table(output_dir / "transfer_logits.parquet", logits)
    if keep_model and run.model is not None:
        run.model.save_pretrained(output_dir / "model")
        run.tokenizer.save_pretrained(output_dir / "model")
    io.write_json(output_dir / "teacher_report.json", report)
    return report
