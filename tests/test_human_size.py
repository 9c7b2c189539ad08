"""The human-size experiment: nested subsamples, the design and its validation, the exchange rate, claim 4 and cost."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, cli_here

from synthmix.analysis import cost, exchange
from synthmix.data.design import study_design
from synthmix.data.sampling import (
    extra_human_shares,
    increment_schedule,
    largest_supplied,
    nested_order,
    subsample_train,
    synthetic_count,
)
from synthmix.data.splits import load_study_data
from synthmix.errors import InputError
from synthmix.params import parse_params
from synthmix.run.graph import plan_study

DEFAULT = REPO / "params" / "default.yaml"


def human_size_params(**experiment) -> dict:
    """A study on the embedded data (96 training responses per replicate) with a human-size experiment."""
    return {"study": "hs", "replicates": 2, "generation": {"temperatures": [0.7]}, "filter": {"methods": ["none"]},
            "experiments": {"human_size": {"temperatures": [0.7], "filters": ["none"], "synthetic_shares": [0.4],
                                           "human_sizes": [24, 48, "all"], "distill": False, **experiment}},
            "claims": {"human_size_share": 0.4}}


# ------------------------------------------------------------------------------ sampling
def test_nested_subsamples_are_stratified_by_item_and_label_and_nested():
    rng = np.random.default_rng(3)
    items = np.repeat(["a", "b", "c"], [60, 30, 10])
    labels = (rng.random(100) < np.where(items == "a", 0.3, 0.6)).astype(int)
    order = nested_order(labels, items, seed=[13, 0, 16])
    assert sorted(order) == list(range(100))  # every row once
    for size in (10, 25, 50):
        chosen = order[:size]
        for item in "abc":
            for label in (0, 1):
                whole = np.sum((items == item) & (labels == label))
                taken = np.sum((items[chosen] == item) & (labels[chosen] == label))
                assert abs(taken - whole * size / 100) < 1.0 + 1e-9, (size, item, label)
    assert set(order[:25]) <= set(order[:50])  # nested by construction: a prefix
    assert not np.array_equal(order, nested_order(labels, items, seed=[13, 1, 16]))  # each replicate its own


def test_subsample_train_cuts_only_train_and_returns_the_rest():
    study = parse_params(human_size_params())
    human = load_study_data(study, DEFAULT, replicate=1)
    cut, rest = subsample_train(human, 24, seed=[13, 1, 16])
    assert len(cut["train"]) == 24 and len(rest) == len(human["train"]) - 24
    assert set(cut["train"]["row"]).isdisjoint(rest["row"])
    assert set(cut["train"]["row"]) | set(rest["row"]) == set(human["train"]["row"])
    for split in ("validation", "test"):
        assert list(cut[split]["row"]) == list(human[split]["row"])
    bigger, _ = subsample_train(human, 48, seed=[13, 1, 16])
    assert set(cut["train"]["row"]) <= set(bigger["train"]["row"])
    whole, none_left = subsample_train(human, "all", seed=[13, 1, 16])
    assert list(whole["train"]["row"]) == list(human["train"]["row"]) and none_left.empty
    with pytest.raises(InputError, match="human size 97 is larger than the training split it is drawn from"):
        subsample_train(human, 97, seed=[13, 1, 16])


def test_the_extra_human_schedule_is_the_synthetic_one_continued_where_the_split_has_responses():
    synthetic = increment_schedule(24, [0.4], 25)
    assert synthetic == [16]
    curve = increment_schedule(24, extra_human_shares(24, [0.4], 25, 2.0, available=72), 25)
    assert curve == [16, 25, 32] and curve[:len(synthetic)] == synthetic
    capped = increment_schedule(48, extra_human_shares(48, [0.4], 25, 2.0, available=48), 25)
    assert capped == [25, 32, 48]  # the synthetic arm's 25 and 32, then up to what the rest holds
    short = increment_schedule(48, extra_human_shares(48, [0.4], 25, 2.0, available=20), 25)
    assert short == [20]  # fewer extra responses than the synthetic count: the curve stops below it
    assert extra_human_shares(96, [0.4], 25, 2.0, available=0) == []
    assert synthetic_count(24, extra_human_shares(24, [0.4], 25, 3.0, available=72)[-1]) == 48


def test_largest_supplied_keeps_the_label_balance():
    rest = pd.DataFrame({"text": [f"r{i}" for i in range(30)], "label": [1] * 6 + [0] * 24})
    assert largest_supplied(rest, 0.4, 30) == 16  # 6 coded 1 at a 40% rate: 17 would need 7
    assert largest_supplied(rest, 0.2, 30) == 30
    assert largest_supplied(rest, 0.2, 10) == 10
    assert largest_supplied(rest.iloc[:0], 0.2, 10) == 0


# --------------------------------------------------------------------------- the design
def test_each_size_runs_the_synthetic_arm_and_an_extra_human_arm_where_the_split_has_more(tmp_path):
    params = parse_params(human_size_params())
    steps, _ = plan_study(params, DEFAULT, tmp_path)
    teachers = {s.condition: s for s in steps if s.kind == "train_teacher"}
    assert sorted(teachers) == sorted(f"{name}-r{r}" for r in (0, 1) for name in (
        "t0.7-none-incremental40-h24", "t0.7-none-incremental40-h48", "t0.7-none-incremental40",
        "extrahuman40-h24", "extrahuman40-h48"))  # no extra human responses at 'all'
    extra = teachers["extrahuman40-h24-r1"]
    assert extra.parameters["protocol"] == "extra_human" and extra.parameters["human_size"] == 24
    assert extra.depends_on == () and extra.parameters["extra_human_extent"] == 2.0
    assert "human_size" not in teachers["t0.7-none-incremental40-r0"].parameters  # 'all': the whole split
    assert teachers["t0.7-none-incremental40-h24-r0"].digest != teachers["t0.7-none-incremental40-h48-r0"].digest
    design = study_design(params, DEFAULT)
    # the largest draw: 40% synthetic on all 96 responses (42% coded 1) is 64 responses, 27 coded 1
    assert design.needs[next(iter(design.needs))] == {1: 27, 0: 37}


def test_a_human_size_larger_than_a_replicates_training_split_is_rejected_naming_both(tmp_path):
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(human_size_params(human_sizes=[24, 120])))
    result = cli_here("validate", str(params_file))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [f"{params_file}: experiments.human_size.human_sizes: human size 120 is larger than replicate {r}'s "
                     f"human training split (96 responses: the training part of split_seed 13, replicate {r}, after "
                     "validation is held out); ask for at most 96, or 'all'" for r in (0, 1)]


def test_a_human_size_experiment_trains_incremental_runs_with_one_filter():
    with pytest.raises(InputError, match="trains protocol 'incremental' only"):
        parse_params(human_size_params(protocols=["incremental", "mixed"]))
    data = human_size_params(filters=None)
    data["filter"] = {"methods": ["none", "teacher_agreement"]}
    with pytest.raises(InputError, match="name one filter"):
        parse_params(data)
    with pytest.raises(InputError, match="human sizes are repeated"):
        parse_params(human_size_params(human_sizes=[24, 24]))


# ----------------------------------------------------------------------- exchange rate
def test_read_off_inverts_the_monotone_human_curve():
    counts, gains = [10, 20, 40], [0.01, 0.03, 0.05]
    assert exchange.read_off(0.02, counts, gains) == pytest.approx(15.0)
    assert exchange.read_off(0.04, counts, gains) == pytest.approx(30.0)
    assert exchange.read_off(0.06, counts, gains) == float("inf")
    assert exchange.read_off(-0.01, counts, gains) == 0.0
    # a dip between checkpoints is pooled away: 0.03 then 0.02 read as 0.025 at both
    assert exchange.read_off(0.025, [10, 20, 40], [0.03, 0.02, 0.05]) == pytest.approx(10.0)


def _table(gain_synthetic, human_curve: dict, replicates: int = 6, noise: float = 0.004, seed: int = 0):
    """A human-size table of one size (24): per replicate, the given mean gains plus or minus ``noise`` (half
    the replicates each way, in a random order per quantity), so the means are exactly the given ones."""
    rng = np.random.default_rng(seed)
    signs = np.array([1.0, -1.0] * (replicates // 2))

    def spread():
        return noise * rng.permutation(signs)

    synthetic, human = spread(), {count: spread() for count in human_curve}
    rows = []
    for r in range(replicates):
        base = 0.7 + rng.normal(0, 0.02)
        rows.append({"size": "24", "n_human": 24, "replicate": r, "arm": exchange.BASE, "n_added": 0,
                     "target_share": 0.0, "checkpoint": 0, "auc": base, "base_auc": base, "gain": 0.0, "step": "s"})
        rows.append({"size": "24", "n_human": 24, "replicate": r, "arm": exchange.SYNTHETIC, "n_added": 16,
                     "target_share": 0.4, "checkpoint": 1, "gain": gain_synthetic + synthetic[r], "step": "s"})
        for count, gain in human_curve.items():
            rows.append({"size": "24", "n_human": 24, "replicate": r, "arm": exchange.HUMAN, "n_added": count,
                         "target_share": 0.4 if count == 16 else np.nan, "checkpoint": 1,
                         "gain": gain + human[count][r], "step": "h"})
    frame = pd.DataFrame(rows)
    frame["size"] = pd.Categorical(frame["size"], ["24"], ordered=True)
    return frame


CURVE = {16: 0.04, 25: 0.06, 32: 0.08}


@pytest.mark.parametrize("gain, status, rate", [
    (0.04, "measured", 1.0),              # as good as the same number of human responses
    (0.06, "measured", 25 / 16),          # as good as 25 human responses
    (0.02, "measured", 0.5),              # half as good: read off between 0 and 16
    (-0.001, "worth nothing", 0.0),       # not above the human-only teacher
    (-0.05, "harmful", 0.0),              # clearly below it
])
def test_exchange_rate_recovers_a_known_curve(gain, status, rate):
    rates = exchange.exchange_rates(_table(gain, CURVE), 0.4, 0.02, draws=2000)
    row = rates.iloc[0]
    assert row["status"] == status and row["synthetic"] == 16
    assert row["rate"] == pytest.approx(rate, abs=0.08)
    if status == "measured":
        assert row["rate_low"] <= row["rate"] <= row["rate_high"]
        assert row["rate_high"] - row["rate_low"] < 0.5  # small noise, narrow interval
        assert f"{row['worth']:.0f} extra human-coded responses" in row["text"]


def test_a_size_without_extra_human_responses_says_so_unless_the_synthetic_arm_is_worth_nothing():
    gaining = exchange.exchange_rates(_table(0.04, {}), 0.4, 0.02, draws=500).iloc[0]
    assert gaining["status"] == "no extra human responses" and np.isnan(gaining["rate"])
    assert "no extra human responses to compare with" in gaining["text"]
    losing = exchange.exchange_rates(_table(-0.001, {}), 0.4, 0.02, draws=500).iloc[0]
    assert losing["status"] == "worth nothing" and losing["rate"] == 0.0


def test_exchange_rate_beyond_the_human_curve_is_censored_not_extrapolated():
    row = exchange.exchange_rates(_table(0.2, CURVE), 0.4, 0.02, draws=1000).iloc[0]
    assert row["worth"] == float("inf") and row["worth_high"] == float("inf")
    assert "more than the 32 extra human-coded responses its human curve reaches" in row["text"]


def test_exchange_rate_interval_widens_with_the_replicates_overlap():
    from synthmix.analysis.verdicts import ResamplingDesign

    table = _table(0.04, CURVE, noise=0.01)
    plain = exchange.exchange_rates(table, 0.4, 0.02, draws=2000).iloc[0]
    overlapping = exchange.exchange_rates(table, 0.4, 0.02, draws=2000,
                                          design=ResamplingDesign(n_train=128, n_test=256)).iloc[0]
    assert overlapping["rate_high"] - overlapping["rate_low"] > 1.5 * (plain["rate_high"] - plain["rate_low"])


# ------------------------------------------------------------------------------ claim 4
def _gain_table(gains_by_size: dict, replicates: int = 8, noise: float = 0.003, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for size, gain in gains_by_size.items():
        for r in range(replicates):
            rows.append({"size": str(size), "n_human": size, "replicate": r, "arm": exchange.SYNTHETIC,
                         "n_added": 16, "target_share": 0.4, "checkpoint": 1, "gain": gain + rng.normal(0, noise)})
    frame = pd.DataFrame(rows)
    frame["size"] = pd.Categorical(frame["size"], [str(s) for s in gains_by_size], ordered=True)
    return frame


def test_claim_4_is_supported_when_the_gain_shrinks_with_human_size_and_contradicted_when_it_does_not():
    shrinking = exchange.judge_human_size(_gain_table({24: 0.08, 48: 0.04, 96: 0.0}), 0.4, 0.02)
    assert [r["id"] for r in shrinking] == ["4", "4"]
    verdict, crossing = shrinking
    assert verdict["verdict"] == "supported" and verdict["estimate"] == pytest.approx(0.08, abs=0.005)
    assert verdict["ci_low"] > 0.02 and verdict["direction"] == "helps"
    # the mean gain 0.04 at 48 and 0.0 at 96 crosses 0.02 halfway on log size: sqrt(48 * 96)
    assert crossing["verdict"] == "estimate" and crossing["estimate"] == pytest.approx(np.sqrt(48 * 96), rel=0.05)
    assert crossing["ci_low"] < crossing["estimate"] < crossing["ci_high"]
    flat = exchange.judge_human_size(_gain_table({24: 0.03, 48: 0.03, 96: 0.03}), 0.4, 0.02)
    assert flat[0]["verdict"] == "contradicted"
    assert flat[1]["estimate"] is None and flat[1]["censored"]["estimate"] == "above the largest size"
    json.dumps(shrinking + flat)  # claims.json records are plain JSON


def test_claim_4_needs_two_sizes():
    (record,) = exchange.judge_human_size(_gain_table({24: 0.05}), 0.4, 0.02)
    assert record["verdict"] == "not tested" and record["id"] == "4"


# -------------------------------------------------------------------------------- cost
def _step(folder, kind: str, condition: str, parameters: dict):
    folder.mkdir(parents=True)
    (folder / "_complete.json").write_text(json.dumps({"kind": kind, "condition": condition,
                                                       "parameters": parameters, "experiments": ["human_size"]}))


def test_cost_table_prices_synthetic_responses_from_their_pools_calls_and_coding_by_hand(tmp_path):
    study = tmp_path / "study"
    pool = study / "01_generate" / "t0.7-aaaa"
    _step(pool, "generate", "t0.7", {"temperature": 0.7, "own_pool": False})
    pd.DataFrame({"text": [f"s{i}" for i in range(10)], "label": [1, 0] * 5}).to_parquet(pool / "pool.parquet")
    pd.DataFrame({"kind": "generate", "prompt_tokens": [300, 300, 400], "completion_tokens": [100, 50, 50],
                  "seconds": [1.0, 2.0, 2.0], "replayed": [False, True, False]}).to_parquet(pool / "calls.parquet")
    _step(study / "02_filter" / "t0.7-none-bbbb", "filter", "t0.7-none",
          {"method": "none", "pool_dir": "01_generate/t0.7-aaaa"})
    _step(study / "03_train_teacher" / "syn-h24-r0-cccc", "train_teacher", "syn-h24-r0",
          {"protocol": "incremental", "filtered_dir": "02_filter/t0.7-none-bbbb"})
    table = pd.DataFrame([
        {"size": "24", "n_human": 24, "replicate": 0, "arm": exchange.SYNTHETIC, "n_added": 4, "target_share": 0.4,
         "gain": 0.03, "step": "03_train_teacher/syn-h24-r0-cccc"},
        {"size": "24", "n_human": 24, "replicate": 0, "arm": exchange.HUMAN, "n_added": 4, "target_share": 0.4,
         "gain": 0.02, "step": "x"}])
    table["size"] = pd.Categorical(table["size"], ["24"], ordered=True)
    rates = pd.DataFrame({"size": ["24"], "worth": [3.0]})
    prices = {"currency": "USD", "llm_price_per_million_input_tokens": 2.5, "llm_price_per_million_output_tokens": 10.0,
              "human_coding_cost_per_response": 0.5, "human_coding_seconds_per_response": 60}
    row = cost.cost_table(study, table, rates, prices, 0.4).iloc[0]
    # the pool: 1000 tokens in, 200 out, 5 s for 10 responses kept; 4 drawn -> 400 in, 80 out, 2 s
    assert (row["prompt_tokens"], row["completion_tokens"], row["llm_seconds"]) == pytest.approx((400, 80, 2.0))
    assert row["llm_money"] == pytest.approx(400 / 1e6 * 2.5 + 80 / 1e6 * 10)
    assert row["auc_per_money_synthetic"] == pytest.approx(0.03 / row["llm_money"])
    assert (row["human_money"], row["human_seconds"]) == pytest.approx((2.0, 240))
    assert row["auc_per_hour_human"] == pytest.approx(0.02 / (240 / 3600))
    assert row["worth_by_hand_money"] == pytest.approx(1.5)
    unpriced = cost.cost_table(study, table, rates, None, 0.4).iloc[0]
    assert np.isnan(unpriced["llm_money"]) and np.isnan(unpriced["human_money"])  # blank, never zero
    assert unpriced["prompt_tokens"] == pytest.approx(400)
    assert "no costs section" in cost.cost_words(None)
