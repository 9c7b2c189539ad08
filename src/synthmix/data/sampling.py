"""How many synthetic responses a condition uses, of which label, and which ones.

Read top to bottom: the count a synthetic share needs (``synthetic_count``), its label split
(``label_counts``), the incremental schedule with a checkpoint at exactly every share asked for
(``increment_schedule``), and the draws: ``draw_schedule`` takes a pool's responses for every
checkpoint of a schedule without replacement, at the label balance asked for, so every prefix is
balanced; ``draw_human_replay`` takes the same counts from the human training data (the replay
control). ``PoolShortage`` says which condition a pool cannot supply, and by how much.

A share is reached exactly or not at all: nothing here caps a count at what a pool holds.
"""

from __future__ import annotations

import heapq
import math

import numpy as np
import pandas as pd

from synthmix.errors import InputError


class PoolShortage(InputError):
    """A pool (or a filtered pool) holds fewer responses of a label than a condition needs."""


def synthetic_count(n_human: int, share: float) -> int:
    """Synthetic responses that make up ``share`` of a training set with ``n_human`` human responses.

    share 0: none; share 1 (synthetic only, 'mixed' protocol): as many as the human training
    data, so the training-set size matches the human-only baseline; else round(n_h * s / (1 - s)).
    """
    if not 0 <= share <= 1:
        raise InputError(f"synthetic share {share} is outside [0, 1]")
    if share == 1:
        return int(n_human)
    return int(round(n_human * share / (1 - share)))


def positive_rate(labels, label_balance: str) -> float:
    """The positive rate synthetic draws keep: the human training data's ('match_human') or 0.5."""
    if label_balance == "balanced":
        return 0.5
    labels = np.asarray(labels)
    return float(labels.mean()) if labels.size else 0.5


def label_counts(count: int, rate: float) -> dict[int, int]:
    """``{1: positives, 0: negatives}`` for ``count`` responses at positive rate ``rate`` (rounded)."""
    positives = int(round(count * rate))
    return {1: positives, 0: int(count) - positives}


def increment_schedule(n_human: int, shares, increment: int) -> list[int]:
    """Cumulative synthetic counts at the checkpoints of an incremental run (checkpoint 0 excluded).

    Steps of ``increment`` up to the largest share asked for, plus a checkpoint at exactly the count
    of every share asked for, so each share is evaluated where it is reached, not at the nearest step.
    """
    exact = {synthetic_count(n_human, s) for s in shares if 0 < s < 1}
    if not exact:
        return []
    top = max(exact)
    return sorted(set(range(increment, top, increment)) | exact)


def share_checkpoints(n_human: int, shares) -> dict[float, int]:
    """``{share: synthetic count}`` for the shares of an incremental run (for picking checkpoints)."""
    return {float(s): synthetic_count(n_human, s) for s in shares if 0 <= s < 1}


def _permuted_by_label(frame: pd.DataFrame, rng: np.random.Generator) -> dict[int, np.ndarray]:
    labels = frame["label"].to_numpy()
    return {label: rng.permutation(np.flatnonzero(labels == label)) for label in (1, 0)}


def seat_order(weights: dict, seats: int) -> list:
    """The first ``seats`` seats of a D'Hondt allocation to the keys of ``weights``, in order.

    Any prefix of the order is a proportional allocation, and a larger count never takes a seat
    away from a key (house monotone), so nested draws stay nested when split across items.
    """
    keys = sorted(k for k, w in weights.items() if w > 0)
    if not keys:
        raise InputError("items: no item has human training responses to weigh synthetic draws by")
    heap = [(-weights[k], i, k) for i, k in enumerate(keys)]
    heapq.heapify(heap)
    given = dict.fromkeys(keys, 0)
    order = []
    for _ in range(seats):
        _, index, key = heapq.heappop(heap)
        order.append(key)
        given[key] += 1
        heapq.heappush(heap, (-weights[key] / (given[key] + 1), index, key))
    return order


def _strata(pool: pd.DataFrame, rng: np.random.Generator, item_weights: dict | None):
    """Row positions of ``pool`` by stratum, each permuted: labels, or (item, label) with item weights."""
    if item_weights is None:
        return _permuted_by_label(pool, rng)
    items = pool["item"].astype(str).to_numpy() if "item" in pool.columns else np.full(len(pool), "")
    labels = pool["label"].to_numpy()
    return {(item, label): rng.permutation(np.flatnonzero((items == item) & (labels == label)))
            for item in sorted(item_weights) for label in (1, 0)}


def _wanted(count: int, rate: float, item_weights: dict | None, orders: dict | None) -> dict:
    """Responses wanted per stratum for ``count`` responses at positive rate ``rate``."""
    by_label = label_counts(count, rate)
    if item_weights is None:
        return by_label
    wanted = {(item, label): 0 for item in item_weights for label in (1, 0)}
    for label, n in by_label.items():
        for item in orders[label][:n]:
            wanted[(item, label)] += 1
    return wanted


def check_supply(available: dict, needed: dict, what: str) -> None:
    """Raise ``PoolShortage`` naming ``what`` when ``available`` cannot supply ``needed`` in some stratum.

    Strata are labels (``{1: n, 0: n}``) or (item, label) pairs; ``available`` holds a count or
    the rows of each stratum. A draw is without replacement, so a need above the supply is an error.
    """
    def held(key) -> int:
        value = available.get(key, 0)
        return value if isinstance(value, (int, np.integer)) else len(value)

    short = [f"{need} coded {key[1]} of item {key[0]} but it holds {held(key)}"
             if isinstance(key, tuple) else f"{need} coded {key} but it holds {held(key)}"
             for key, need in needed.items() if need > held(key)]
    if short:
        raise PoolShortage(f"{what}: needs " + " and ".join(short) + " (drawn without replacement; "
                           "raise generation.pool_size_per_label or pool_margin, or ask for smaller shares)")


def draw_schedule(pool: pd.DataFrame, schedule: list[int], rate: float, seed, what: str = "pool",
                  item_weights: dict | None = None) -> list[pd.DataFrame]:
    """The increments of ``schedule`` drawn from ``pool`` without replacement, one frame per checkpoint.

    Checkpoint k holds ``label_counts(schedule[k], rate)`` responses in all (its own increment plus
    the earlier ones), so the label balance is exact at every checkpoint and the draws of two
    pools with the same schedule match in count and balance. With ``item_weights`` (item -> its
    human training responses), each label's responses are split across items in proportion
    (``seat_order``), from each item's own synthetic responses. Each increment is shuffled.
    """
    if not schedule:
        return []
    rng = np.random.default_rng(seed)
    strata = _strata(pool, rng, item_weights)
    orders = None if item_weights is None else {label: seat_order(item_weights, label_counts(schedule[-1], rate)[label])
                                                for label in (1, 0)}
    check_supply(strata, _wanted(schedule[-1], rate, item_weights, orders), what)
    increments, taken = [], dict.fromkeys(strata, 0)
    for count in schedule:
        wanted = _wanted(count, rate, item_weights, orders)
        rows = np.concatenate([strata[key][taken[key]:wanted[key]] for key in strata])
        taken = wanted
        increments.append(pool.iloc[rng.permutation(rows)])
    return increments


def draw_human_replay(human_labels, schedule: list[int], rate: float, seed) -> list[np.ndarray]:
    """Row positions of human training responses for each increment of ``schedule`` (the replay control).

    Each increment has the same label counts as a synthetic increment at ``rate``; within an
    increment responses are drawn without replacement (with replacement only when an increment
    needs more of a label than the human data holds); across increments they are drawn afresh.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(human_labels)
    members = {label: np.flatnonzero(labels == label) for label in (1, 0)}
    increments, before = [], {1: 0, 0: 0}
    for count in schedule:
        wanted = label_counts(count, rate)
        rows = []
        for label in (1, 0):
            n = wanted[label] - before[label]
            pool = members[label]
            if n and not len(pool):
                raise InputError(f"replay: the human training data has no response coded {label}")
            rows.append(rng.choice(pool, size=n, replace=n > len(pool)))
        before = wanted
        increments.append(rng.permutation(np.concatenate(rows)))
    return increments


def draw_mixture(pool: pd.DataFrame, n_human: int, share: float, rate: float, seed, what: str = "pool",
                 item_weights: dict | None = None):
    """``(n_human_used, synthetic rows)`` for the mixed protocol at exactly ``share``.

    share 1 trains on synthetic responses only (as many as the human training data). With
    ``item_weights`` the responses are split across items in proportion, as in ``draw_schedule``.
    """
    count = synthetic_count(n_human, share)
    rng = np.random.default_rng(seed)
    strata = _strata(pool, rng, item_weights)
    orders = None if item_weights is None else {label: seat_order(item_weights, label_counts(count, rate)[label])
                                                for label in (1, 0)}
    wanted = _wanted(count, rate, item_weights, orders)
    check_supply(strata, wanted, what)
    rows = np.concatenate([strata[key][:wanted[key]] for key in strata])
    return (0 if share == 1 else n_human), pool.iloc[rng.permutation(rows)]


def thin_to_match(pool: pd.DataFrame, reference: pd.DataFrame, seed) -> pd.DataFrame:
    """A random subset of ``pool`` holding as many responses per label (per item and label when the
    reference has items) as ``reference``, in pool order: the unfiltered arm of a filter comparison
    drawn from a pool the size of the filtered one, so both arms' draws take the same part of their pool.
    """
    def strata(frame: pd.DataFrame) -> pd.Series:
        items = frame["item"].astype(str) if "item" in frame.columns else pd.Series("", index=frame.index)
        return items + "\x1f" + frame["label"].astype(str)

    wanted = strata(reference).value_counts()
    keys = strata(pool)
    rng = np.random.default_rng(seed)
    keep = []
    for key, count in wanted.items():
        rows = np.flatnonzero((keys == key).to_numpy())
        if count > len(rows):
            raise PoolShortage(f"thinning the pool to match a filtered one: stratum {key.replace(chr(31), ' / ')} "
                               f"needs {count} but the pool holds {len(rows)}")
        keep.append(rng.choice(rows, size=count, replace=False))
    chosen = np.sort(np.concatenate(keep)) if keep else np.array([], dtype=int)
    return pool.iloc[chosen].reset_index(drop=True)


def item_targets(target: dict[int, int], item_weights: dict, margin: float = 1.0) -> dict[str, dict[int, int]]:
    """Per item, the responses of each label a pool should hold: ``target`` split in proportion to
    ``item_weights`` (``seat_order``), rounded up, so every item can supply its share of any draw."""
    out = {str(item): {1: 0, 0: 0} for item in item_weights}
    for label, n in target.items():
        for item in seat_order(item_weights, n):
            out[str(item)][label] += 1
    return {item: {label: math.ceil(n * margin) for label, n in counts.items()} for item, counts in out.items()}


def pool_target(needed: dict[int, int], margin: float) -> dict[int, int]:
    """Responses to generate per label: what the largest draw needs, times ``margin`` (at least 1 more)."""
    return {label: (math.ceil(n * margin) if n else 0) for label, n in needed.items()}


# --------------------------------------------------------------- human-size experiment
#: Tag in the seed of a replicate's nested human subsamples: [split_seed, replicate, HUMAN_SIZE_SEED].
HUMAN_SIZE_SEED = 16


def nested_order(labels, items=None, seed=0) -> np.ndarray:
    """Row positions in an order whose every prefix is a stratified subsample of the rows.

    Strata are labels (or item and label pairs with ``items``); each stratum's rows are permuted
    with ``seed``, and the strata take turns in the D'Hondt order of their sizes (``seat_order``),
    so the first n positions hold each stratum in proportion, and the subsample of 25 is inside
    the one of 50: a learning curve over human sizes adds responses, it never swaps them.
    """
    labels = np.asarray(labels)
    items = np.asarray([str(i) for i in items]) if items is not None else np.full(len(labels), "")
    rng = np.random.default_rng(seed)
    keys = sorted({(item, int(label)) for item, label in zip(items, labels)})
    members = {key: rng.permutation(np.flatnonzero((items == key[0]) & (labels == key[1]))) for key in keys}
    taken = dict.fromkeys(keys, 0)
    order = []
    for key in seat_order({key: len(rows) for key, rows in members.items()}, len(labels)):
        order.append(members[key][taken[key]])
        taken[key] += 1
    return np.asarray(order, dtype=int)


def resolve_human_size(size, n_train: int, where: str = "human_sizes") -> int:
    """A human size as a count: 'all' is the whole training split; a count above it is an ``InputError``."""
    if size == "all":
        return int(n_train)
    if int(size) > n_train:
        raise InputError(f"{where}: human size {size} is larger than the training split it is drawn from "
                         f"({n_train} responses)")
    return int(size)


def subsample_train(human, size, seed):
    """``(human with train cut to its first ``size`` rows of ``nested_order``, the rest of train)``.

    ``human`` maps split names to datasets (``.select``) or DataFrames; validation and test are
    unchanged. ``size`` is a count or 'all' (the whole split; the rest is then empty). The rest is
    returned as a DataFrame (text, label, item, row, id where present): the pool the extra-human arm
    of a human-size experiment draws from.
    """
    train = human["train"]
    frame = train.reset_index(drop=True) if isinstance(train, pd.DataFrame) else train.to_pandas()
    count = resolve_human_size(size, len(frame))
    order = nested_order(frame["label"], frame["item"] if "item" in frame.columns else None, seed)
    chosen, rest = np.sort(order[:count]), np.sort(order[count:])
    cut = frame.iloc[chosen].reset_index(drop=True) if isinstance(train, pd.DataFrame) else train.select(chosen)
    return type(human)({**human, "train": cut}), frame.iloc[rest].reset_index(drop=True)


def largest_supplied(pool: pd.DataFrame, rate: float, upto: int, item_weights: dict | None = None) -> int:
    """The largest count up to ``upto`` that ``pool`` can supply at positive rate ``rate`` without
    replacement (per item in proportion to ``item_weights`` when given), as ``draw_schedule`` draws it."""
    if not len(pool):
        return 0
    labels = pool["label"].to_numpy()
    items = pool["item"].astype(str).to_numpy() if "item" in pool.columns else np.full(len(pool), "")
    held = ({key: int(((items == key[0]) & (labels == key[1])).sum()) for key in
             [(str(i), label) for i in item_weights for label in (1, 0)]} if item_weights is not None else
            {label: int((labels == label).sum()) for label in (1, 0)})
    for count in range(min(int(upto), len(pool)), 0, -1):
        orders = None if item_weights is None else {label: seat_order(item_weights, label_counts(count, rate)[label])
                                                    for label in (1, 0)}
        wanted = _wanted(count, rate, item_weights, orders)
        if all(n <= held.get(key, 0) for key, n in wanted.items()):
            return count
    return 0


def extra_human_shares(n_human: int, shares, increment: int, extent: float, available: int) -> list[float]:
    """The shares whose ``increment_schedule`` is the extra-human arm's schedule, or [] when it has none.

    The arm follows the synthetic arm's schedule (the shares asked for) and continues in steps of
    ``increment`` up to ``extent`` times its last count, capped at ``available`` (what the rest of
    the training split can supply): the checkpoints it shares with the synthetic arm are the same
    counts after the same steps. The extra last count is expressed as the share it makes up.
    """
    schedule = increment_schedule(n_human, shares, increment)
    if not schedule or available < 1:
        return []
    top = min(int(round(extent * schedule[-1])), int(available))
    kept = [float(s) for s in sorted(shares) if 0 < s < 1 and synthetic_count(n_human, s) <= top]
    if top not in {synthetic_count(n_human, s) for s in kept}:
        kept.append(top / (n_human + top))
    return kept
