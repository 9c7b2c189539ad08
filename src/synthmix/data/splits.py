"""Grouped, stratified splits of the human-coded data, one per replicate.

Responses identical after ``normalise_text`` always share a split; a replicate's split is
drawn from ``numpy.random.default_rng([split_seed, replicate])``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from synthmix.data.loading import SPLITS, load_human_data, normalise_text, normalised_texts
from synthmix.errors import InputError
from synthmix.params import DatasetParams, StudyParams


def column_values(part, name: str) -> list:
    """The values of one column of a ``datasets.Dataset`` (or DataFrame) as a list, read in one go
    (iterating a ``datasets`` column reads it row by row, a hundred times slower)."""
    column = part[name]
    if hasattr(column, "tolist"):
        return column.tolist()
    try:
        return list(column[:])
    except (TypeError, KeyError, IndexError):
        return list(column)


def split_indices(labels, split_seed: int, train_fraction: float, validation_fraction: float,
                  texts=None, items=None, replicate: int = 0, keys=None) -> dict[str, np.ndarray]:
    """Deterministic grouped, stratified split of row positions into train, validation and test.

    Rows whose texts are identical after ``normalise_text`` form one group and always land in
    the same split (without ``texts`` every row is its own group). Groups are stratified by
    item and by their majority label: per label, the groups are walked item by item (items and
    groups in an order drawn from ``numpy.random.default_rng([split_seed, replicate])``, larger
    groups first) and each goes to the split furthest behind its share, so every item and label
    keeps about ``train_fraction`` in training, ``validation_fraction`` of that held out as
    validation (early stopping) and the rest as test (used for no decision).
    """
    labels = np.asarray(labels, dtype=int)
    n = len(labels)
    if keys is None:  # ``keys``: the normalised texts, when the caller has them
        keys = [normalise_text(t) for t in texts] if texts is not None else [str(i) for i in range(n)]
    items = [str(i) for i in items] if items is not None else [""] * n
    rng = np.random.default_rng([split_seed, replicate])
    codes, _ = pd.factorize(pd.Series(keys, dtype=object), sort=False)  # groups numbered by first occurrence
    n_groups = int(codes.max()) + 1 if n else 0
    sizes = np.bincount(codes, minlength=n_groups)
    positives = np.bincount(codes, weights=labels, minlength=n_groups)
    group_label = (2 * positives >= sizes).astype(int)  # the majority label; a tie counts as 1 (``_majority``)
    first = np.full(n_groups, n, dtype=np.int64)
    np.minimum.at(first, codes, np.arange(n))
    group_item = [items[i] for i in first]
    by_group = np.argsort(codes, kind="stable")  # positions grouped, each group's in ascending order
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1])) if n else np.array([], dtype=np.int64)
    for g in np.flatnonzero(sizes > 1):  # a repeated text: its most common item (ties: the first seen)
        members = by_group[starts[g]:starts[g] + sizes[g]]
        group_item[g] = Counter(items[i] for i in members).most_common(1)[0][0]
    names = ("validation", "train", "test")
    shares = (train_fraction * validation_fraction, train_fraction * (1 - validation_fraction), 1 - train_fraction)
    where = np.empty(n_groups, dtype=object)
    for code in (0, 1):
        chosen = np.flatnonzero(group_label == code)
        item_order = {item: rank for rank, item in enumerate(rng.permutation(sorted({group_item[g] for g in chosen})))}
        tiebreak = rng.permutation(len(chosen))
        ranks = np.array([item_order[group_item[g]] for g in chosen], dtype=np.int64)
        chosen = chosen[np.lexsort((tiebreak, -sizes[chosen], ranks))]  # item order, larger groups first, then drawn
        assigned = [0, 0, 0]
        for g in chosen.tolist():
            size = int(sizes[g])
            total = assigned[0] + assigned[1] + assigned[2] + size
            behind = [total * shares[k] - assigned[k] for k in range(3)]
            best = 0 if behind[0] >= behind[1] and behind[0] >= behind[2] else 1 if behind[1] >= behind[2] else 2
            where[g] = names[best]
            assigned[best] += size
        _ensure_every_split_has(code, chosen.tolist(), sizes, where)
    row_split = where[codes] if n else np.array([], dtype=object)
    return {name: np.flatnonzero(row_split == name).astype(int) for name in SPLITS}


def _ensure_every_split_has(code: int, chosen: list[int], sizes, where) -> None:
    """Move single groups so that train, validation and test each hold the label ``code``."""
    if len(chosen) < len(SPLITS):
        raise InputError(f"only {len(chosen)} distinct responses (after normalisation) are coded {code}; "
                         f"at least {len(SPLITS)} are needed for train, validation and test")
    for split in SPLITS:
        if any(where[g] == split for g in chosen):
            continue
        donors = Counter(where[g] for g in chosen)
        donor = donors.most_common(1)[0][0]
        smallest = min((g for g in chosen if where[g] == donor), key=lambda g: sizes[g])
        where[smallest] = split


def split_human_data(dataset, params: DatasetParams, replicate: int = 0):
    """Split a loaded dataset into a ``DatasetDict`` (train, validation, test) for replicate ``replicate``.

    Grouped by normalised text and stratified by item and label (see ``split_indices``); the
    split of replicate r is drawn from ``numpy.random.default_rng([split_seed, r])``.
    """
    import datasets

    texts = column_values(dataset, "text")
    indices = split_indices(column_values(dataset, "label"), params.split_seed, params.train_fraction,
                            params.validation_fraction, texts=texts, items=column_values(dataset, "item"),
                            replicate=replicate, keys=normalised_texts(dataset, texts))
    return datasets.DatasetDict({name: dataset.select(indices[name]) for name in SPLITS})


def split_frames(dataset, params: DatasetParams, replicate: int = 0, with_text: bool = True) -> dict[str, pd.DataFrame]:
    """Replicate ``replicate``'s split (exactly as ``split_human_data`` makes it) as plain DataFrames of
    ``label``, ``item`` (and ``text``) per part: what a design or a report reads, without copying a dataset."""
    texts = column_values(dataset, "text")
    labels, items = np.asarray(column_values(dataset, "label")), np.asarray(column_values(dataset, "item"), dtype=object)
    indices = split_indices(labels, params.split_seed, params.train_fraction, params.validation_fraction,
                            texts=texts, items=items, replicate=replicate, keys=normalised_texts(dataset, texts))
    text_array = np.asarray(texts, dtype=object) if with_text else None
    return {name: pd.DataFrame({"label": labels[rows], "item": items[rows],
                                **({"text": text_array[rows]} if with_text else {})}) for name, rows in indices.items()}


def split_part(dataset, params: DatasetParams, replicate: int, part: str = "train") -> pd.DataFrame:
    """One part of replicate ``replicate``'s split as a DataFrame of its ``label`` and ``item`` columns."""
    return split_frames(dataset, params, replicate, with_text=False)[part]


def split_report(splits) -> dict:
    """What a split holds: responses per split and label (and per item), and the duplicate groups kept together.

    ``splits`` maps split names to datasets (or DataFrames) with ``text``, ``label`` and ``item``.
    Returns ``counts`` (split -> {0: n, 1: n}), ``by_item`` (item -> split -> {0: n, 1: n}, empty
    without items), ``duplicate_groups`` (normalised texts with more than one response, each kept
    in one split), ``duplicate_rows`` and ``groups_across_splits`` (0 for a leak-free split).
    """
    frames = {name: pd.DataFrame({"text": column_values(part, "text"), "label": column_values(part, "label"),
                                  "item": column_values(part, "item") if "item" in _columns(part) else ""})
              for name, part in splits.items()}
    table = pd.concat([f.assign(split=name) for name, f in frames.items()], ignore_index=True)
    table["key"] = table["text"].map(normalise_text)
    counts = {name: {code: int((f["label"] == code).sum()) for code in (0, 1)} for name, f in frames.items()}
    by_item = {}
    if (table["item"] != "").any():
        for item, rows in table.groupby("item", sort=True):
            by_item[str(item)] = {name: {code: int(((rows["split"] == name) & (rows["label"] == code)).sum())
                                         for code in (0, 1)} for name in frames}
    sizes = table.groupby("key")["split"].agg(["size", "nunique"])
    repeated = sizes[sizes["size"] > 1]
    return {"counts": counts, "by_item": by_item, "duplicate_groups": int(len(repeated)),
            "duplicate_rows": int(repeated["size"].sum()), "groups_across_splits": int((sizes["nunique"] > 1).sum())}


def describe_split(report: dict) -> str:
    """One line for a notebook or ``synthmix validate``: sizes per split and label, duplicate groups."""
    parts = ", ".join(f"{name} {c[0] + c[1]} ({c[1]} coded 1)" for name, c in report["counts"].items())
    items = f"; {len(report['by_item'])} items, each stratified" if report["by_item"] else ""
    return (f"{parts}{items}; {report['duplicate_groups']} groups of identical responses "
            f"({report['duplicate_rows']} rows) each kept in one split")


def _columns(part) -> list[str]:
    return list(part.column_names) if hasattr(part, "column_names") else list(part.columns)


def remove_test_copies(pool, test):
    """Drop from ``pool`` every response identical (after ``normalise_text``) to a test response.

    ``pool`` is a DataFrame or ``datasets.Dataset`` with a ``text`` column; ``test`` is anything
    with a ``text`` column (or a list of texts). Returns ``(pool_without_copies, n_removed)``,
    the pool of the same type; call it before training so no test response is trained on.
    """
    test_texts = test if isinstance(test, (list, tuple)) else list(test["text"])
    seen = {normalise_text(t) for t in test_texts}
    keep = [normalise_text(str(t)) not in seen for t in pool["text"]]
    removed = len(keep) - sum(keep)
    if isinstance(pool, pd.DataFrame):
        return pool.loc[keep].reset_index(drop=True), removed
    return pool.select([i for i, kept in enumerate(keep) if kept]), removed


def load_study_data(params: StudyParams, params_path: str | Path | None = None, replicate: int = 0):
    """The study's human-coded data, validated and split (train / validation / test) for one replicate."""
    return split_human_data(load_human_data(params.dataset, params_path).dataset, params.dataset, replicate=replicate)
