"""Grouped, stratified splits of the human-coded data, one per replicate.

Responses identical after ``normalise_text`` always share a split; a replicate's split is
drawn from ``numpy.random.default_rng([split_seed, replicate])``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from synthmix.data.loading import SPLITS, _majority, load_human_data, normalise_text
from synthmix.errors import InputError
from synthmix.params import DatasetParams, StudyParams


def split_indices(labels, split_seed: int, train_fraction: float, validation_fraction: float,
                  texts=None, items=None, replicate: int = 0) -> dict[str, np.ndarray]:
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
    keys = [normalise_text(t) for t in texts] if texts is not None else [str(i) for i in range(n)]
    items = [str(i) for i in items] if items is not None else [""] * n
    rng = np.random.default_rng([split_seed, replicate])
    members: dict[str, list[int]] = {}
    for position, key in enumerate(keys):
        members.setdefault(key, []).append(position)
    groups = list(members.values())
    group_label = [_majority(labels[g]) for g in groups]
    group_item = [Counter(items[i] for i in g).most_common(1)[0][0] for g in groups]
    shares = {"validation": train_fraction * validation_fraction,
              "train": train_fraction * (1 - validation_fraction), "test": 1 - train_fraction}
    where = np.empty(len(groups), dtype=object)
    for code in (0, 1):
        chosen = [g for g in range(len(groups)) if group_label[g] == code]
        item_order = {item: rank for rank, item in enumerate(rng.permutation(sorted({group_item[g] for g in chosen})))}
        tiebreak = rng.permutation(len(chosen))
        chosen = [g for _, g in sorted(zip(tiebreak, chosen), key=lambda pair: (
            item_order[group_item[pair[1]]], -len(groups[pair[1]]), pair[0]))]
        assigned = dict.fromkeys(shares, 0)
        for g in chosen:
            total = sum(assigned.values()) + len(groups[g])
            split = max(shares, key=lambda name: total * shares[name] - assigned[name])
            where[g] = split
            assigned[split] += len(groups[g])
        _ensure_every_split_has(code, chosen, groups, where)
    parts = {name: [i for g, split in enumerate(where) if split == name for i in groups[g]] for name in SPLITS}
    return {name: np.sort(np.array(rows, dtype=int)) for name, rows in parts.items()}


def _ensure_every_split_has(code: int, chosen: list[int], groups: list[list[int]], where) -> None:
    """Move single groups so that train, validation and test each hold the label ``code``."""
    if len(chosen) < len(SPLITS):
        raise InputError(f"only {len(chosen)} distinct responses (after normalisation) are coded {code}; "
                         f"at least {len(SPLITS)} are needed for train, validation and test")
    for split in SPLITS:
        if any(where[g] == split for g in chosen):
            continue
        donors = Counter(where[g] for g in chosen)
        donor = donors.most_common(1)[0][0]
        smallest = min((g for g in chosen if where[g] == donor), key=lambda g: len(groups[g]))
        where[smallest] = split


def split_human_data(dataset, params: DatasetParams, replicate: int = 0):
    """Split a loaded dataset into a ``DatasetDict`` (train, validation, test) for replicate ``replicate``.

    Grouped by normalised text and stratified by item and label (see ``split_indices``); the
    split of replicate r is drawn from ``numpy.random.default_rng([split_seed, r])``.
    """
    import datasets

    indices = split_indices(dataset["label"], params.split_seed, params.train_fraction, params.validation_fraction,
                            texts=dataset["text"], items=dataset["item"], replicate=replicate)
    return datasets.DatasetDict({name: dataset.select(indices[name]) for name in SPLITS})


def split_report(splits) -> dict:
    """What a split holds: responses per split and label (and per item), and the duplicate groups kept together.

    ``splits`` maps split names to datasets (or DataFrames) with ``text``, ``label`` and ``item``.
    Returns ``counts`` (split -> {0: n, 1: n}), ``by_item`` (item -> split -> {0: n, 1: n}, empty
    without items), ``duplicate_groups`` (normalised texts with more than one response, each kept
    in one split), ``duplicate_rows`` and ``groups_across_splits`` (0 for a leak-free split).
    """
    frames = {name: pd.DataFrame({"text": list(part["text"]), "label": list(part["label"]),
                                  "item": list(part["item"]) if "item" in _columns(part) else ""})
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
