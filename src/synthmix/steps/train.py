"""Teacher training: fine-tune, predict, and the protocols of the study.

Read top to bottom: seeding, batching, one fine-tuning loop (AdamW, optional early stopping on
the human validation split), prediction, then the protocols that produce a ``TeacherRun``:

* ``train_incremental`` -- fine-tune on human train (early stopping on human validation), then
  add synthetic responses in increments (``sampling.increment_schedule``: a checkpoint at exactly
  every share asked for), one pass each, and evaluate on the human test split at checkpoint 0 and
  at every share asked for (``teacher.evaluate: shares``) or after every step (``every_increment``);
  with ``replay=True`` the increments are human training responses drawn afresh: the control
  that separates "more synthetic data" from "more training";
* ``train_extra_human`` -- the human-size experiment's human arm: ``train_incremental`` on extra human
  responses from the rest of the training split (the human learning curve);
* ``train_mixed`` -- fine-tune from the pre-trained model on human train plus synthetic
  responses making up exactly a given share of the training data (early stopping on validation).

A replicate's training seed, synthetic draw and human split all derive from its number.

The human test split is only ever predicted and scored: no choice (early stopping, best epoch)
looks at it. ``TeacherRun.used_rows`` records which human rows went where, so this can be checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from synthmix.core import io
from synthmix.core.progress import report_progress
from synthmix.data.sampling import (
    draw_human_replay,
    draw_mixture,
    draw_schedule,
    extra_human_shares,
    increment_schedule,
    largest_supplied,
    positive_rate,
    share_checkpoints,
    synthetic_count,
)
from synthmix.errors import InputError
from synthmix.params import TeacherParams
from synthmix.steps import metrics as metrics_module
from synthmix.steps.devices import use_precision
from synthmix.steps.models import load_classifier
from synthmix.steps.phases import PhaseTimer
from synthmix.steps.training import TokenCache, fine_tune, predict_logits, predict_proba

#: The columns that identify a row of ``TeacherRun.metrics``; the metric columns follow them.
METRIC_COLUMNS = ("protocol", "replicate", "checkpoint", "n_human", "n_added", "n_synthetic", "synthetic_share",
                  "target_share", "positive_rate")


# ------------------------------------------------------------------------------ protocols
@dataclass
class TeacherRun:
    """What one teacher training run produced (see ``train_incremental`` / ``train_mixed``).

    ``metrics``: one row per checkpoint (``METRIC_COLUMNS``: protocol, replicate, checkpoint, the
    responses trained on, shares and the positive rate seen, then every key of ``metrics.evaluate``); ``test_predictions``: checkpoint,
    id, row, label, score for each human test item; ``transfer_logits``: text, logit_0, logit_1
    of the final model (empty without transfer texts); ``history``: the fine-tuning histories;
    ``used_rows``: the human ``row`` values used for ``train``, ``validation`` and
    ``evaluation``; ``phase_seconds``: wall seconds per phase (loading, human_fine_tune,
    increments, evaluation, bootstrap_cis, transfer_logits); ``model``/``tokenizer``: the final model.
    """

    metrics: pd.DataFrame
    test_predictions: pd.DataFrame
    transfer_logits: pd.DataFrame
    history: dict
    used_rows: dict
    phase_seconds: dict = field(default_factory=dict)
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
    """Collects the metric rows and test predictions of one run, checkpoint by checkpoint, and the
    time of its phases (``timer``); ``tokens`` is the run's ``TokenCache`` once its model is loaded."""

    def __init__(self, protocol: str, replicate: int, human, params: TeacherParams, timer: PhaseTimer | None = None):
        self.protocol, self.replicate, self.params = protocol, replicate, params
        self.test = human["test"]
        self.rows, self.predictions = [], []
        self.timer = timer or PhaseTimer()
        self.tokens: TokenCache | None = None

    def evaluate(self, model, tokenizer, checkpoint: int, n_human: int, n_synthetic: int, *, n_added: int | None = None,
                 positives_seen: int = 0, target_share: float = float("nan"), stored: Path | None = None) -> None:
        """Score the test split at one checkpoint and record its row and predictions. With ``stored``
        (a .npy file), the scores are read from it when it exists, else computed and written there."""
        labels = np.asarray(self.test["label"], dtype=np.int64)
        with self.timer("evaluation"):
            if stored is not None and stored.is_file():
                scores = np.load(stored)
            else:
                scores = predict_proba(model, tokenizer, self.test["text"], max_length=self.params.max_length,
                                       tokens=self.tokens)
                if stored is not None:
                    _store_scores(stored, scores)
        n_added = n_synthetic if n_added is None else n_added
        total = n_human + n_synthetic
        share = n_synthetic / total if total else float("nan")
        seen = n_human + n_added
        row = dict(zip(METRIC_COLUMNS, (self.protocol, self.replicate, checkpoint, n_human, n_added, n_synthetic, share,
                                        target_share, positives_seen / seen if seen else float("nan"))))
        with self.timer("bootstrap_cis"):
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
            with self.timer("transfer_logits"):
                logits = predict_logits(model, tokenizer, transfer_texts, max_length=self.params.max_length,
                                        tokens=self.tokens)
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
            phase_seconds=self.timer.as_dict(),
            model=model,
            tokenizer=tokenizer,
        )


def _store_scores(path: Path, scores: np.ndarray) -> None:
    """Write ``scores`` to ``path`` (.npy) beside a cache entry, atomically and with the normal modes."""
    with io.atomic_path(path) as scratch, open(scratch, "wb") as out:
        np.save(out, np.asarray(scores, dtype=np.float64))


def training_seed(replicate: int, step: int = 0) -> int:
    """The torch seed of replicate ``replicate``'s training (``step`` > 0: its k-th increment)."""
    return int(replicate) * 10_000 + int(step)


def base_teacher_entry(human, params: TeacherParams, seed: int, cache_dir, precision: str = "fp32") -> Path | None:
    """The folder of ``fine_tune_on_human``'s cache entry for these inputs (None without ``cache_dir``).

    Keyed by everything that determines the fine-tune: model, settings, the human training and
    validation texts and labels, seed, and the precision and batching unless they are the defaults
    (so fp32 keeps the keys it had before either existed).
    """
    if not cache_dir:
        return None
    train_texts, train_labels = _split(human, "train")
    validation = _split(human, "validation")
    identity = {"model": params.model, "settings": params.model_dump(include={
        "max_length", "batch_size", "learning_rate", "max_epochs", "patience"}),
        "train": [train_texts, train_labels.tolist()], "validation": [validation[0], validation[1].tolist()],
        "seed": seed}
    if precision != "fp32":
        identity["precision"] = precision
    if params.length_bucketing:
        identity["length_bucketing"] = True
    return Path(cache_dir) / io.stable_hash(identity, length=16)


def fine_tune_on_human(human, params: TeacherParams, seed: int, cache_dir=None, device=None, precision: str = "fp32",
                       timer: PhaseTimer | None = None):
    """The pre-trained model fine-tuned on human train with early stopping on human validation.

    Returns ``(model, tokenizer, history)``, the model set to train and predict in ``precision``
    (``devices.resolve_precision``). With ``cache_dir``, the result is stored there
    (``base_teacher_entry``), so the conditions that share it (every incremental run of a
    replicate, the replay control, the teacher-agreement filter) compute it once; a cached model
    is loaded bit-for-bit, so results do not change. Entries are written with the normal file
    modes. ``timer`` times the loading apart from the fine-tune.
    """
    import json
    import shutil
    import tempfile

    timer = timer or PhaseTimer()
    train_texts, train_labels = _split(human, "train")
    validation = _split(human, "validation")
    folder = base_teacher_entry(human, params, seed, cache_dir, precision)
    key = folder.name if folder is not None else ""
    if folder is not None and (folder / "history.json").is_file():
        with timer("loading"):
            model, tokenizer = load_classifier(str(folder), seed, device)
        return use_precision(model, precision), tokenizer, json.loads((folder / "history.json").read_text())
    with timer("loading"):
        model, tokenizer = load_classifier(params.model, seed, device)
    use_precision(model, precision)
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
                      replay: bool = False, what: str = "pool", device=None, item_weights: dict | None = None,
                      precision: str = "fp32") -> TeacherRun:
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

    The test split is scored at checkpoint 0 and at the checkpoint of each share asked for
    (``params.evaluate: shares``), or after every increment (``every_increment``); scoring changes
    nothing in training, so a checkpoint scored by both has the same numbers. With
    ``base_cache_dir``, checkpoint 0's test scores are kept beside the shared fine-tune, so the
    replicate's other runs read them instead of predicting again. Training and prediction run in
    ``precision`` (``devices.resolve_precision``).
    """
    train_texts, train_labels = _split(human, "train")
    n_human = len(train_texts)
    rate = positive_rate(train_labels, label_balance)
    schedule = increment_schedule(n_human, shares, params.increment)
    at_share = {count: share for share, count in share_checkpoints(n_human, shares).items()}
    protocol = "replay" if replay else "incremental"
    timer = PhaseTimer()
    recorder = _Recorder(protocol, replicate, human, params, timer)
    # the draws first: a pool that cannot supply the schedule stops the run before any training
    if replay:
        chunks = [(np.asarray(train_texts, dtype=object)[rows].tolist(), train_labels[rows])
                  for rows in draw_human_replay(train_labels, schedule, rate, [replicate, 3])]
    else:
        synthetic = _check_synthetic(synthetic)
        chunks = [(list(chunk["text"]), chunk["label"].to_numpy(dtype=np.int64))
                  for chunk in draw_schedule(synthetic, schedule, rate, [replicate, 1], what, item_weights)]

    with timer("human_fine_tune"):
        model, tokenizer, initial = fine_tune_on_human(human, params, training_seed(replicate), base_cache_dir, device,
                                                       precision, timer)
    recorder.tokens = tokens = TokenCache(tokenizer, params.max_length)
    positives = int(train_labels.sum())
    entry = base_teacher_entry(human, params, training_seed(replicate), base_cache_dir, precision)
    stored = None  # checkpoint 0 is the shared human-only fine-tune: its test scores are kept beside it
    if entry is not None and entry.is_dir():
        test_key = io.stable_hash([list(human["test"]["text"]), params.max_length], length=12)
        stored = entry / f"test_scores-{test_key}.npy"
    recorder.evaluate(model, tokenizer, 0, n_human, 0, positives_seen=positives, target_share=at_share.get(0, 0.0),
                      stored=stored)
    steps = []
    for checkpoint, ((texts, labels), count) in enumerate(zip(chunks, schedule), start=1):
        with timer("increments"):
            steps.append(fine_tune(model, tokenizer, texts, labels, params, training_seed(replicate, checkpoint),
                                   epochs=1, tokens=tokens))
        positives += int(np.sum(labels))
        if params.evaluate == "every_increment" or count in at_share:
            recorder.evaluate(model, tokenizer, checkpoint, n_human, 0 if replay else count, n_added=count,
                              positives_seen=positives, target_share=at_share.get(count, float("nan")))
        report_progress(count, schedule[-1], "responses added")

    used_rows = {
        "train": [int(r) for r in human["train"]["row"]],
        "validation": [int(r) for r in human["validation"]["row"]],
    }
    history = {"initial": initial, "increments": steps, "schedule": schedule, "positive_rate_drawn": rate,
               "label_balance": label_balance, "shares": [float(s) for s in shares], "evaluate": params.evaluate,
               "precision": precision}
    return recorder.run(model, tokenizer, history, used_rows, transfer_texts)


def train_extra_human(human, rest: pd.DataFrame, params: TeacherParams, replicate: int, shares, extent: float,
                      label_balance: str = "match_human", transfer_texts=None, base_cache_dir=None, device=None,
                      item_weights: dict | None = None, precision: str = "fp32") -> TeacherRun:
    """The human arm of a human-size experiment: the incremental protocol on extra *human* responses.

    ``human["train"]`` is the nested subsample (``sampling.subsample_train``) and ``rest`` the rest
    of the replicate's training split. After the same human-only fine-tune as the synthetic arm, the
    run adds responses drawn from ``rest`` without replacement at the same label balance, on the
    synthetic arm's schedule continued up to ``extent`` times its last count where ``rest`` can supply
    them (``sampling.extra_human_shares``): the human learning curve the exchange rate is read off.
    Rows are recorded as protocol ``extra_human`` (no synthetic responses; ``target_share`` marks the
    checkpoints at the synthetic arm's shares).
    """
    n_human = len(human["train"])
    rate = positive_rate(np.asarray(human["train"]["label"]), label_balance)
    schedule = increment_schedule(n_human, shares, params.increment)
    upto = int(round(extent * schedule[-1])) if schedule else 0
    available = largest_supplied(rest, rate, upto, item_weights)
    curve = extra_human_shares(n_human, shares, params.increment, extent, available)
    if not curve:
        raise InputError(f"extra_human: the rest of the training split ({len(rest)} responses) supplies no extra "
                         f"human response at the human positive rate {rate:.0%}")
    run = train_incremental(human, rest, params, replicate, curve, label_balance, transfer_texts, base_cache_dir,
                            what="the rest of the human training split", device=device, item_weights=item_weights,
                            precision=precision)
    asked = {synthetic_count(n_human, s): float(s) for s in shares if 0 < s < 1}
    metrics = run.metrics
    metrics["protocol"] = "extra_human"
    metrics["target_share"] = [0.0 if n == 0 else asked.get(int(n), float("nan")) for n in metrics["n_added"]]
    metrics["n_synthetic"], metrics["synthetic_share"] = 0, 0.0
    run.history["extra_human"] = {"rest": int(len(rest)), "available": int(available), "extent": float(extent),
                                  "shares_asked": [float(s) for s in shares]}
    return run


def train_mixed(human, synthetic: pd.DataFrame | None, share: float, params: TeacherParams, replicate: int,
                label_balance: str = "match_human", transfer_texts=None, what: str = "pool", device=None,
                item_weights: dict | None = None, precision: str = "fp32") -> TeacherRun:
    """The mixed protocol: fine-tune the pre-trained model on human + synthetic at exactly ``share``.

    The synthetic responses are drawn by ``sampling.draw_mixture`` (share 1: synthetic only, as
    many as the human training data), training uses early stopping on human validation, and the
    result is scored once on human test (checkpoint 0). A pool that cannot supply the share
    raises ``sampling.PoolShortage``: a share is never silently capped. Training and prediction
    run in ``precision``.
    """
    synthetic = _check_synthetic(synthetic)
    train_texts, train_labels = _split(human, "train")
    rate = positive_rate(train_labels, label_balance)
    n_human, chosen = draw_mixture(synthetic, len(train_texts), share, rate, [replicate, 2], what, item_weights)
    texts = train_texts[:n_human] + list(chosen["text"])
    labels = np.concatenate([train_labels[:n_human], chosen["label"].to_numpy(dtype=np.int64)])

    timer = PhaseTimer()
    with timer("loading"):
        model, tokenizer = load_classifier(params.model, training_seed(replicate), device)
    use_precision(model, precision)
    recorder = _Recorder("mixed", replicate, human, params, timer)
    recorder.tokens = tokens = TokenCache(tokenizer, params.max_length)
    with timer("mixed_fine_tune"):
        fit = fine_tune(model, tokenizer, texts, labels, params, training_seed(replicate),
                        validation=_split(human, "validation"), tokens=tokens)
    recorder.evaluate(model, tokenizer, 0, n_human, len(chosen), positives_seen=int(labels.sum()),
                      target_share=float(share))

    used_rows = {
        "train": [int(r) for r in human["train"]["row"]][:n_human],
        "validation": [int(r) for r in human["validation"]["row"]],
    }
    history = {"fit": fit, "target_share": float(share), "achieved_share": len(chosen) / len(labels),
               "synthetic_index": chosen.index.tolist(), "label_balance": label_balance, "precision": precision}
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
        "phase_seconds": run.phase_seconds,
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
