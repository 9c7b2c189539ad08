"""Classification metrics for a binary classifier evaluated on a human-coded test set.

All functions are pure: they take array-likes and return plain Python values.

Conventions
-----------
* ``labels`` are the human-coded gold labels, 0/1 (booleans are accepted).
* ``scores`` are predicted probabilities of class 1.
* A hard prediction is ``scores >= threshold`` (a score exactly at the threshold
  counts as class 1).
* Macro-F1 is the unweighted mean of the F1 of class 0 and class 1; both classes are
  always included, and a class whose F1 is undefined (0/0) contributes 0
  (sklearn's ``zero_division=0``).
* Metrics that are undefined for the input (e.g. AUC with a single class present,
  kappa when chance agreement is 1) are ``nan`` rather than an exception.
"""

from __future__ import annotations

import warnings
from typing import Dict, Tuple

import numpy as np
from sklearn import metrics as skm

__all__ = [
    "classification_metrics",
    "bootstrap_ci",
    "evaluate",
    "grader_agreement",
    "auc_by_item",
    "METRICS",
]

#: Metric names accepted by :func:`bootstrap_ci`.
METRICS = ("auc", "macro_f1", "accuracy", "kappa")

# Upper bound on the number of elements of one (resamples x items) block in the
# bootstrap, to keep memory bounded for large test sets.
_BLOCK_ELEMENTS = 4_000_000


# --------------------------------------------------------------------------- inputs
def _as_binary(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if arr.size and not np.all(np.isin(arr, (0, 1))):
        raise ValueError(f"{name} must contain only 0/1 values")
    return arr.astype(np.int64)


def _check_inputs(labels, scores) -> Tuple[np.ndarray, np.ndarray]:
    y = _as_binary(labels, "labels")
    s = np.asarray(scores, dtype=float)
    if s.ndim != 1:
        raise ValueError(f"scores must be one-dimensional, got shape {s.shape}")
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} vs {s.size}")
    if y.size == 0:
        raise ValueError("labels and scores are empty")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinite values")
    return y, s


# ---------------------------------------------------------------- point estimates
def _safe_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa via sklearn; nan when undefined (chance agreement == 1)."""
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        k = skm.cohen_kappa_score(a, b, labels=[0, 1])
    k = float(k)
    return k if np.isfinite(k) else float("nan")


def classification_metrics(labels, scores, threshold: float = 0.5) -> Dict[str, float]:
    """Point metrics of 0/1 ``labels`` vs class-1 probabilities ``scores``.

    Returns a dict with ``auc`` (ROC AUC; nan if only one class is present),
    ``macro_f1``, ``accuracy``, ``kappa`` (Cohen's, of ``scores >= threshold`` vs
    ``labels``; nan if undefined), ``n`` (items) and ``n_positive`` (items labelled 1).
    """
    y, s = _check_inputs(labels, scores)
    pred = (s >= threshold).astype(np.int64)
    n_pos = int(y.sum())
    if 0 < n_pos < y.size:
        auc = float(skm.roc_auc_score(y, s))
    else:
        auc = float("nan")
    macro_f1 = float(
        skm.f1_score(y, pred, labels=[0, 1], average="macro", zero_division=0)
    )
    return {
        "auc": auc,
        "macro_f1": macro_f1,
        "accuracy": float(skm.accuracy_score(y, pred)),
        "kappa": _safe_kappa(y, pred),
        "n": int(y.size),
        "n_positive": n_pos,
    }


# ---------------------------------------------------------------------- bootstrap
class _Prepared:
    """Per-sample quantities reused by every bootstrap block, with the items
    permuted into ascending-score order (``order``); count matrices passed to
    :func:`_metric_values` use this sorted item order."""

    def __init__(self, y: np.ndarray, s: np.ndarray, threshold: float):
        self.n = y.size
        order = np.argsort(s, kind="mergesort")
        self.order = order
        self.position = np.empty_like(order)  # original index -> sorted position
        self.position[order] = np.arange(order.size)
        s_sorted = s[order]
        # start index of each run of tied scores; None when there are no ties
        starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
        self.starts = starts if starts.size < self.n else None
        self.y = y[order].astype(float)
        pred = (s_sorted >= threshold).astype(float)
        self.tp_mask = self.y * pred
        self.fp_mask = (1.0 - self.y) * pred
        self.fn_mask = self.y * (1.0 - pred)


def _metric_values(counts: np.ndarray, prep: _Prepared, metrics) -> Dict[str, np.ndarray]:
    """Metrics for weighted samples: row ``b`` of ``counts`` gives how often each item
    (in ``prep``'s sorted order) occurs in resample ``b``. Rows with a single class
    give nan for every metric."""
    counts = np.asarray(counts, dtype=float)
    n_tot = counts.sum(axis=1)
    n1 = counts @ prep.y
    n0 = n_tot - n1
    both = (n1 > 0) & (n0 > 0)
    out: Dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        if "auc" in metrics:
            pos_g = counts * prep.y
            neg_g = counts - pos_g
            if prep.starts is not None:  # sum weights within runs of tied scores
                pos_g = np.add.reduceat(pos_g, prep.starts, axis=1)
                neg_g = np.add.reduceat(neg_g, prep.starts, axis=1)
            neg_below = np.cumsum(neg_g, axis=1) - neg_g
            num = np.sum(pos_g * (neg_below + 0.5 * neg_g), axis=1)
            out["auc"] = num / (n1 * n0)
        if {"macro_f1", "accuracy", "kappa"} & set(metrics):
            tp = counts @ prep.tp_mask
            fp = counts @ prep.fp_mask
            fn = counts @ prep.fn_mask
            tn = n_tot - tp - fp - fn
            if "macro_f1" in metrics:
                d1 = 2 * tp + fp + fn
                d0 = 2 * tn + fp + fn
                f1_1 = np.where(d1 > 0, 2 * tp / d1, 0.0)
                f1_0 = np.where(d0 > 0, 2 * tn / d0, 0.0)
                out["macro_f1"] = 0.5 * (f1_1 + f1_0)
            po = (tp + tn) / n_tot
            if "accuracy" in metrics:
                out["accuracy"] = po
            if "kappa" in metrics:
                pred1 = (tp + fp) / n_tot
                true1 = n1 / n_tot
                pe = true1 * pred1 + (1 - true1) * (1 - pred1)
                out["kappa"] = np.where(pe < 1, (po - pe) / (1 - pe), np.nan)
    for k in out:
        out[k] = np.where(both, out[k], np.nan)
    return out


def _bootstrap_values(y, s, metrics, n_resamples: int, seed, threshold: float):
    """Bootstrap distributions (arrays of length ``n_resamples``; nan marks a
    resample that contained only one class, or where the metric was undefined)."""
    prep = _Prepared(y, s, threshold)
    n = prep.n
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_ELEMENTS // n)
    chunks = {m: [] for m in metrics}
    done = 0
    while done < n_resamples:
        b = min(block, n_resamples - done)
        idx = rng.integers(0, n, size=(b, n))
        flat = (prep.position[idx] + (np.arange(b) * n)[:, None]).ravel()
        counts = np.bincount(flat, minlength=b * n).reshape(b, n)
        vals = _metric_values(counts, prep, metrics)
        for m in metrics:
            chunks[m].append(vals[m])
        done += b
    return {m: np.concatenate(chunks[m]) for m in metrics}


def _percentile_ci(values: np.ndarray, confidence: float) -> Tuple[float, float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return float("nan"), float("nan")
    alpha = 1.0 - confidence
    lo, hi = np.percentile(v, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def _check_boot_args(n_resamples: int, confidence: float, metrics) -> None:
    if int(n_resamples) < 1:
        raise ValueError("n_resamples must be >= 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    for m in metrics:
        if m not in METRICS:
            raise ValueError(f"unknown metric {m!r}; choose from {METRICS}")


def bootstrap_ci(
    labels,
    scores,
    metric: str = "auc",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed=0,
    threshold: float = 0.5,
) -> Tuple[float, float]:
    """Percentile bootstrap CI ``(low, high)`` for ``metric`` (one of :data:`METRICS`).

    Test items are resampled with replacement ``n_resamples`` times from a
    ``numpy.random.default_rng(seed)`` stream, so the result is deterministic for a
    given seed. Resamples that contain only one class are skipped (not redrawn), as
    are resamples where the metric is undefined (e.g. kappa with chance agreement 1);
    the percentiles are taken over the remaining resamples, and ``(nan, nan)`` is
    returned when none remain (e.g. the whole test set has a single class).
    Vectorised: each resample is a row of item counts, AUC is rank-based with ties
    counted as 1/2.
    """
    _check_boot_args(n_resamples, confidence, [metric])
    y, s = _check_inputs(labels, scores)
    vals = _bootstrap_values(y, s, [metric], int(n_resamples), seed, threshold)
    return _percentile_ci(vals[metric], confidence)


def evaluate(
    labels,
    scores,
    n_resamples: int = 1000,
    seed=0,
    threshold: float = 0.5,
    confidence: float = 0.95,
) -> Dict[str, float]:
    """:func:`classification_metrics` plus percentile-bootstrap CIs.

    Adds ``auc_ci_low``, ``auc_ci_high``, ``macro_f1_ci_low`` and ``macro_f1_ci_high``
    (both computed from the same resamples; see :func:`bootstrap_ci` for the
    resampling rules) and ``confidence``. With ``n_resamples=0`` the CI fields are nan.
    """
    out: Dict[str, float] = dict(classification_metrics(labels, scores, threshold))
    keys = ("auc", "macro_f1")
    if int(n_resamples) > 0:
        _check_boot_args(n_resamples, confidence, keys)
        y, s = _check_inputs(labels, scores)
        vals = _bootstrap_values(y, s, keys, int(n_resamples), seed, threshold)
        cis = {k: _percentile_ci(vals[k], confidence) for k in keys}
    else:
        cis = {k: (float("nan"), float("nan")) for k in keys}
    for k in keys:
        out[f"{k}_ci_low"], out[f"{k}_ci_high"] = cis[k]
    out["confidence"] = float(confidence)
    return out


# ----------------------------------------------------------------- grader agreement
def grader_agreement(intended, graded) -> Dict[str, float]:
    """Agreement of a grader's 0/1 ``graded`` labels with the ``intended`` 0/1 labels.

    Returns ``kappa`` (Cohen's), ``accuracy``, and ``precision``, ``recall``, ``f1``
    for class 1 (``intended`` as truth); undefined values (e.g. precision when the
    grader never says 1) are nan. Also ``n``, ``tp``, ``fp``, ``fn``, ``tn``.
    """
    t = _as_binary(intended, "intended")
    g = _as_binary(graded, "graded")
    if t.shape != g.shape:
        raise ValueError(f"intended and graded differ in length: {t.size} vs {g.size}")
    if t.size == 0:
        raise ValueError("intended and graded are empty")
    tp = int(np.sum((t == 1) & (g == 1)))
    fp = int(np.sum((t == 0) & (g == 1)))
    fn = int(np.sum((t == 1) & (g == 0)))
    tn = int(np.sum((t == 0) & (g == 0)))
    nan = float("nan")
    precision = tp / (tp + fp) if tp + fp else nan
    recall = tp / (tp + fn) if tp + fn else nan
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else nan
    return {
        "kappa": _safe_kappa(t, g),
        "accuracy": float(skm.accuracy_score(t, g)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "n": int(t.size),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


# ------------------------------------------------------------------------ per item
def auc_by_item(labels, scores, items) -> Dict[str, object]:
    """ROC AUC pooled over every response and per item (question), with the macro mean over items.

    Returns ``pooled`` (AUC of all responses together), ``macro`` (unweighted mean of the
    per-item AUCs that are defined; nan when none is), ``n_items``, ``n_items_scored``,
    ``items_one_class`` (the items left out of the macro mean because their responses carry a
    single class; counted, never dropped silently) and ``table``: a DataFrame with one row per
    item (``item``, ``n``, ``n_positive``, ``auc``; auc nan for a one-class item).
    """
    import pandas as pd

    y, s = _check_inputs(labels, scores)
    item_ids = np.asarray([str(i) for i in items], dtype=object)
    if item_ids.shape != y.shape:
        raise ValueError(f"items and labels differ in length: {item_ids.size} vs {y.size}")
    rows = []
    for item in sorted(set(item_ids)):
        mask = item_ids == item
        n_pos = int(y[mask].sum())
        auc = float(skm.roc_auc_score(y[mask], s[mask])) if 0 < n_pos < mask.sum() else float("nan")
        rows.append({"item": item, "n": int(mask.sum()), "n_positive": n_pos, "auc": auc})
    table = pd.DataFrame(rows, columns=["item", "n", "n_positive", "auc"])
    scored = table["auc"].dropna()
    pooled = float(skm.roc_auc_score(y, s)) if 0 < y.sum() < y.size else float("nan")
    return {
        "pooled": pooled,
        "macro": float(scored.mean()) if len(scored) else float("nan"),
        "n_items": int(len(table)),
        "n_items_scored": int(len(scored)),
        "items_one_class": table.loc[table["auc"].isna(), "item"].tolist(),
        "table": table,
    }
