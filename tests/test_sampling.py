"""Shares reached exactly: counts, schedules with a checkpoint at every share, label-balanced draws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthmix.data.sampling import (
    PoolShortage,
    draw_human_replay,
    draw_mixture,
    draw_schedule,
    increment_schedule,
    label_counts,
    synthetic_count,
)


def pool(positives: int, negatives: int) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"p{i}" for i in range(positives)] + [f"n{i}" for i in range(negatives)],
                         "label": [1] * positives + [0] * negatives})


def test_counts_reach_each_share_exactly():
    for n_human in (96, 669, 13):
        for share in (0.2, 0.5, 0.8):
            count = synthetic_count(n_human, share)
            assert abs(count / (n_human + count) - share) <= 0.5 / (n_human + count) + 1e-12
    assert synthetic_count(96, 1.0) == 96 and synthetic_count(96, 0) == 0


def test_schedule_has_a_checkpoint_at_every_share_and_steps_of_the_increment():
    schedule = increment_schedule(96, [0.2, 0.8], 25)
    assert synthetic_count(96, 0.2) in schedule and schedule[-1] == synthetic_count(96, 0.8) == 384
    steps = np.diff([0, *schedule])
    assert steps.max() <= 25 and (steps > 0).all()


def test_draws_keep_the_label_balance_at_every_checkpoint_without_replacement():
    schedule = increment_schedule(96, [0.4, 0.8], 25)
    increments = draw_schedule(pool(300, 300), schedule, rate=0.42, seed=[0, 1])
    drawn = pd.concat(increments)
    assert not drawn["text"].duplicated().any()
    cumulative = 0
    for count, increment in zip(schedule, increments):
        cumulative += len(increment)
        assert cumulative == count
        positives = int(pd.concat(increments[: schedule.index(count) + 1])["label"].sum())
        assert positives == label_counts(count, 0.42)[1]


def test_replicates_draw_different_responses_from_a_larger_pool():
    first = set(pd.concat(draw_schedule(pool(150, 150), [100], 0.5, seed=[0, 1]))["text"])
    second = set(pd.concat(draw_schedule(pool(150, 150), [100], 0.5, seed=[1, 1]))["text"])
    assert first != second and len(first & second) < 100


def test_a_pool_too_small_for_a_share_is_an_error_not_a_cap():
    with pytest.raises(PoolShortage, match=r"t0.7-none-incremental: needs 161 coded 1 but it holds 100"):
        draw_schedule(pool(100, 400), increment_schedule(96, [0.8], 25), 0.42, seed=0, what="t0.7-none-incremental")
    with pytest.raises(PoolShortage, match="needs 40 coded 1 but it holds 10"):
        draw_mixture(pool(10, 400), 96, 0.5, 0.42, seed=0)


def test_mixture_at_share_one_is_synthetic_only_and_as_large_as_the_human_data():
    n_human, chosen = draw_mixture(pool(100, 100), 60, 1.0, 0.5, seed=0)
    assert n_human == 0 and len(chosen) == 60 and chosen["label"].sum() == 30


def test_replay_increments_match_the_synthetic_counts_and_balance():
    labels = np.array([1] * 40 + [0] * 56)
    schedule = increment_schedule(96, [0.5], 25)
    increments = draw_human_replay(labels, schedule, 40 / 96, seed=3)
    assert [len(i) for i in increments] == list(np.diff([0, *schedule]))
    total_positive = sum(int(labels[i].sum()) for i in increments)
    assert total_positive == label_counts(schedule[-1], 40 / 96)[1]


def two_item_pool(per_item_label: int = 40) -> pd.DataFrame:
    rows = [{"text": f"{item}-{label}-{i}", "label": label, "item": item}
            for item in ("a", "b") for label in (1, 0) for i in range(per_item_label)]
    return pd.DataFrame(rows)


def test_draws_are_split_across_items_in_proportion_to_the_human_data_and_stay_nested():
    from synthmix.data.sampling import seat_order

    weights = {"a": 60, "b": 30}  # item a has twice the human training responses of item b
    schedule = [12, 30, 48]
    increments = draw_schedule(two_item_pool(), schedule, rate=0.5, seed=0, item_weights=weights)
    drawn = pd.concat(increments)
    assert not drawn["text"].duplicated().any()
    at_end = drawn.groupby(["item", "label"]).size().to_dict()
    assert at_end == {("a", 1): 16, ("a", 0): 16, ("b", 1): 8, ("b", 0): 8}
    first = increments[0].groupby("item").size().to_dict()
    assert first == {"a": 8, "b": 4}
    order = seat_order(weights, 30)
    for n in range(1, 30):  # a larger count never takes a seat away from an item
        assert all(order[: n + 1].count(k) >= order[:n].count(k) for k in weights)


def test_an_item_without_enough_synthetic_responses_is_named():
    pool = two_item_pool(40)
    numbers = pool["text"].str.rsplit("-", n=1).str[1].astype(int)
    pool = pool[(pool["item"] == "a") | (numbers < 5)]  # item b: only 5 responses of each label
    with pytest.raises(PoolShortage, match="t0.7-none-incremental: needs 15 coded 1 of item b but it holds 5"):
        draw_schedule(pool, [60], 0.5, seed=0, item_weights={"a": 1, "b": 1}, what="t0.7-none-incremental")


def test_pool_targets_per_item_follow_the_human_data():
    from synthmix.data.sampling import item_targets

    assert item_targets({1: 30, 0: 60}, {"a": 2, "b": 1}) == {"a": {1: 20, 0: 40}, "b": {1: 10, 0: 20}}
    assert item_targets({1: 30, 0: 60}, {"a": 2, "b": 1}, margin=1.5) == {"a": {1: 30, 0: 60}, "b": {1: 15, 0: 30}}


def test_an_unfiltered_pool_is_thinned_to_the_filtered_pool_size_per_label_and_item():
    from synthmix.data.sampling import thin_to_match

    pool = pd.DataFrame({"text": [f"r{i}" for i in range(60)], "label": [i % 2 for i in range(60)],
                         "item": ["a" if i < 40 else "b" for i in range(60)]})
    filtered = pool[(pool.index % 3) != 0]  # what a grader kept: a subset, per item and label
    thinned = thin_to_match(pool, filtered, seed=[2, 1])
    counts = lambda frame: frame.groupby(["item", "label"]).size().to_dict()  # noqa: E731
    assert counts(thinned) == counts(filtered) and set(thinned["text"]) <= set(pool["text"])
    assert thinned["text"].tolist() != filtered["text"].tolist()  # drawn at random, not the filter's choice
    assert thin_to_match(pool, filtered, seed=[2, 1]).equals(thinned)  # reproducible per replicate
    with pytest.raises(PoolShortage, match="stratum b / 1 needs 11"):
        thin_to_match(pool.iloc[:50], pool.iloc[:10].assign(item="b", label=1).pipe(lambda f: pd.concat([f, f[:1]])),
                      seed=0)
