"""Diagnostics of synthetic text: how varied it is, whether it copies the test set, how far it is from human text.

* Diversity: distinct-n, mean pairwise Jaccard similarity and length (``diversity_table``), per
  temperature with the human responses as a reference (``diversity_by_temperature``).
* Leakage: synthetic responses that nearly copy a human test response (``near_copies``, ``leakage``).
* Distance: a classifier two-sample test of synthetic against human responses (``two_sample_auc``,
  ``distance_by_temperature``).
* The filter: how often its grades agree with the labels the generator was asked to write
  (``grader_agreement_table``).

``synthetic_pools`` and ``grader_agreement_table`` read a study's results tree; the rest take tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from synthmix.analysis.diversity import diversity_table
from synthmix.analysis.results import collect_steps, noted, steps_by_name, temperature_of
from synthmix.core import io
from synthmix.data.loading import normalise_text


# ------------------------------------------------------------------------ a study's pools
def synthetic_pools(study_dir) -> pd.DataFrame:
    """All generated (unfiltered) synthetic responses of a study, one row each, with their temperature."""
    frames = []
    for step in steps_by_name(collect_steps(study_dir), "generate").values():
        pool = io.read_table(Path(step["folder"]) / "pool.parquet")
        if "temperature" not in pool.columns:
            pool["temperature"] = temperature_of(step, step["condition"])
        frames.append(pool)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["text", "label", "temperature"])


def diversity_by_temperature(pools: pd.DataFrame, human: pd.DataFrame | None = None) -> pd.DataFrame:
    """Distinct-1/2, mean pairwise Jaccard similarity and length per temperature, and for ``human`` as a reference."""
    parts = []
    if human is not None and len(human):
        parts.append(diversity_table(human.assign(source="human"), by="source").assign(temperature=np.nan))
    if len(pools):
        table = diversity_table(pools, by="temperature")
        parts.append(table.assign(source=table["temperature"].map(lambda t: f"synthetic t={t:g}")))
    if not parts:
        return noted(pd.DataFrame(), "no responses")
    out = pd.concat(parts, ignore_index=True)
    return out[["source", "temperature", *[c for c in out.columns if c not in ("source", "temperature")]]]


# -------------------------------------------------------------------------------- leakage
def _char_tfidf(texts: list[str]):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=True).fit(texts)


def near_copies(synthetic: list[str], reference: list[str], threshold: float = 0.9) -> pd.DataFrame:
    """Synthetic texts that nearly copy a reference text, with the reference text each copies.

    A near copy has a character 3–5-gram TF-IDF cosine ≥ ``threshold``, or the same normalised text (``exact``).
    """
    columns = ["synthetic", "nearest", "similarity", "exact"]
    synthetic, reference = [str(t) for t in synthetic], [str(t) for t in reference]
    if not synthetic or not reference:
        return pd.DataFrame(columns=columns)
    vectorizer = _char_tfidf(synthetic + reference)
    left, right = vectorizer.transform(synthetic), vectorizer.transform(reference).T
    nearest, best = np.zeros(len(synthetic), dtype=int), np.zeros(len(synthetic))
    for start in range(0, len(synthetic), 1000):  # blocks keep the dense similarity matrix small
        block = (left[start:start + 1000] @ right).toarray()
        nearest[start:start + 1000] = block.argmax(axis=1)
        best[start:start + 1000] = block.max(axis=1)
    normal = {normalise_text(t): t for t in reference}
    rows = []
    for i, text in enumerate(synthetic):
        exact = normalise_text(text) in normal
        if exact or best[i] >= threshold:
            rows.append({"synthetic": text, "nearest": normal.get(normalise_text(text), reference[nearest[i]]),
                         "similarity": 1.0 if exact else float(best[i]), "exact": exact})
    return pd.DataFrame(rows, columns=columns)


def leakage(pools: pd.DataFrame, test: pd.DataFrame, threshold: float = 0.9) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Synthetic responses that nearly copy a human test response: (counts per temperature, examples)."""
    tables, examples = [], []
    for temperature, group in pools.groupby("temperature"):
        copies = near_copies(group["text"].tolist(), test["text"].tolist(), threshold)
        tables.append({"temperature": temperature, "responses": len(group), "near_copies": len(copies),
                       "exact_copies": int(copies["exact"].sum()) if len(copies) else 0,
                       "near_copy_share": len(copies) / len(group) if len(group) else np.nan})
        examples.append(copies.assign(temperature=temperature))
    table = pd.DataFrame(tables, columns=["temperature", "responses", "near_copies", "exact_copies", "near_copy_share"])
    found = pd.concat(examples, ignore_index=True) if examples else pd.DataFrame()
    return noted(table, f"near copy: char 3–5-gram TF-IDF cosine ≥ {threshold} or equal normalised text"), found


# ------------------------------------------------------------------------------- distance
def two_sample_auc(human_texts, synthetic_texts, folds: int = 5, seed: int = 0) -> dict:
    """Classifier two-sample test: cross-validated AUC of a TF-IDF logistic regression telling the two apart.

    0.5 means indistinguishable; nan when either side has fewer than 2 texts.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    human, synthetic = [str(t) for t in human_texts], [str(t) for t in synthetic_texts]
    k = min(folds, len(human), len(synthetic))
    out = {"auc": np.nan, "auc_sd": np.nan, "folds": k, "n_human": len(human), "n_synthetic": len(synthetic)}
    if k < 2:
        return out
    texts, labels = human + synthetic, np.r_[np.zeros(len(human)), np.ones(len(synthetic))]
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          LogisticRegression(max_iter=2000, C=1.0))
    scores = cross_val_score(model, texts, labels, cv=StratifiedKFold(k, shuffle=True, random_state=seed),
                             scoring="roc_auc")
    return {**out, "auc": float(np.mean(scores)), "auc_sd": float(np.std(scores, ddof=1))}


def distance_by_temperature(pools: pd.DataFrame, human: pd.DataFrame, folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """Per temperature, the two-sample AUC of human training responses vs that temperature's synthetic responses."""
    rows = [{"temperature": t, **two_sample_auc(human["text"], group["text"], folds, seed)}
            for t, group in pools.groupby("temperature")]
    return noted(pd.DataFrame(rows, columns=["temperature", "auc", "auc_sd", "folds", "n_human", "n_synthetic"]),
                 "cross-validated AUC of a TF-IDF logistic regression; 0.5 = indistinguishable from human")


# ---------------------------------------------------------------------------- the filter
def grader_agreement_table(study_dir) -> pd.DataFrame:
    """Per filter step and temperature: responses kept and graded, and the grades' agreement with intended labels.

    Agreement is Cohen's kappa, accuracy, and precision, recall and F1 for label 1 (graded responses only).
    ``replicate`` is the replicate whose human data trained the grader (-1: one grader for every replicate).
    """
    from synthmix.steps.metrics import grader_agreement

    rows = []
    for step in steps_by_name(collect_steps(study_dir), "filter").values():
        folder, parameters = Path(step["folder"]), step["parameters"]
        method, replicate = parameters.get("method", ""), int(parameters.get("replicate", -1))
        grades = io.read_table(folder / "grades.parquet") if (folder / "grades.parquet").is_file() else pd.DataFrame()
        for temperature, group in grades.groupby("temperature") if len(grades) else []:
            usable = group[group["status"] == "graded"]
            agreement = {}
            if len(usable):
                agreement = grader_agreement(usable["label"].astype(int).to_numpy(),
                                             usable["grade"].astype(int).to_numpy())
            rows.append({"method": method, "replicate": replicate, "temperature": float(temperature),
                         "responses": len(group), "kept": int(group["kept"].sum()),
                         "unparseable": int((group["status"] == "unparseable").sum()), "graded": len(usable),
                         **{k: agreement.get(k, np.nan) for k in ("kappa", "accuracy", "precision", "recall", "f1")}})
    columns = ["method", "replicate", "temperature", "responses", "kept", "unparseable", "graded", "kappa", "accuracy",
               "precision", "recall", "f1"]
    frame = pd.DataFrame(rows, columns=columns).sort_values(["method", "temperature", "replicate"])
    graded = (frame["graded"] > 0).any()
    note = "" if graded else "no filter graded the pools ('none' keeps every response)"
    return noted(frame.reset_index(drop=True), note)
