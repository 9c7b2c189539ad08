"""The verdict machinery checked by simulation: many replicate tables with a known truth.

Each table is what a study produces for one comparison: per replicate a paired AUC difference
(true effect + replicate-to-replicate variation + test-sampling noise) and its resamples over test
responses. The rates of each verdict must follow the truth: with no effect, a false "beyond the
margin" at most alpha plus a tolerance; with few replicates, inconclusive dominates; with many,
the right verdict dominates. Same for the SD ratio of claim 2.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from synthmix.analysis.verdicts import PairedEffect, judge_difference, judge_sd_ratio

MARGIN, ALPHA, TOLERANCE = 0.02, 0.05, 0.03
BETWEEN_SD, TEST_SD = 0.02, 0.01  # AUC differences: across replicates, and from sampling test responses
SIMULATIONS = 300


def simulated_effect(rng, true_effect: float, replicates: int, resamples: int = 200) -> PairedEffect:
    test_noise = rng.normal(0, TEST_SD, replicates)
    estimates = true_effect + rng.normal(0, BETWEEN_SD, replicates) + test_noise
    draws = estimates[:, None] + rng.normal(0, TEST_SD, (replicates, resamples))
    return PairedEffect(estimates, draws)


def outcome_rates(true_effect: float, replicates: int, seed: int = 0) -> Counter:
    rng = np.random.default_rng(seed)
    outcomes = Counter(judge_difference(simulated_effect(rng, true_effect, replicates), MARGIN, ALPHA,
                                        n_boot=400, seed=i).outcome for i in range(SIMULATIONS))
    return Counter({k: v / SIMULATIONS for k, v in outcomes.items()})


@pytest.mark.parametrize("replicates", [5, 40])
def test_no_effect_is_rarely_called_beyond_the_margin(replicates):
    rates = outcome_rates(0.0, replicates, seed=replicates)
    assert rates["above"] + rates["below"] <= ALPHA + TOLERANCE, rates


def test_no_effect_with_many_replicates_is_no_meaningful_difference():
    rates = outcome_rates(0.0, 40, seed=1)
    assert rates["within"] >= 0.8, rates


def test_effect_of_twice_the_margin_with_few_replicates_is_mostly_inconclusive():
    rates = outcome_rates(2 * MARGIN, 5, seed=2)
    assert rates["crosses"] >= 0.5 and rates["below"] == 0 and rates["within"] <= ALPHA + TOLERANCE, rates


def test_effect_of_twice_the_margin_with_many_replicates_is_found():
    rates = outcome_rates(2 * MARGIN, 40, seed=3)
    assert rates["above"] >= 0.8, rates


def test_harm_of_twice_the_margin_with_many_replicates_is_found():
    rates = outcome_rates(-2 * MARGIN, 40, seed=4)
    assert rates["below"] >= 0.8 and rates["above"] == 0, rates


def test_interval_covers_the_truth_at_its_level():
    rng = np.random.default_rng(5)
    covered = [(j.ci_low <= 0.01 <= j.ci_high) for j in
               (judge_difference(simulated_effect(rng, 0.01, 5), MARGIN, ALPHA, n_boot=400, seed=i)
                for i in range(SIMULATIONS))]
    assert np.mean(covered) >= 1 - 2 * ALPHA - TOLERANCE


def sd_ratio_rates(true_ratio: float, replicates: int, seed: int, high_groups: int = 2) -> Counter:
    rng = np.random.default_rng(seed)
    outcomes = Counter()
    for _ in range(SIMULATIONS):
        low = rng.normal(0, 0.01, replicates)
        high = [rng.normal(0, 0.01 * true_ratio, replicates) for _ in range(high_groups)]
        outcomes[judge_sd_ratio(high, low, margin=1.5, alpha=ALPHA).outcome] += 1
    return Counter({k: v / SIMULATIONS for k, v in outcomes.items()})


@pytest.mark.parametrize("replicates", [5, 40])
def test_equal_spread_is_rarely_called_different(replicates):
    rates = sd_ratio_rates(1.0, replicates, seed=10 + replicates)
    assert rates["above"] + rates["below"] <= ALPHA + TOLERANCE, rates


def test_sd_ratio_of_three_with_few_replicates_is_mostly_inconclusive():
    rates = sd_ratio_rates(3.0, 5, seed=20)
    assert rates["crosses"] >= 0.5 and rates["below"] == 0, rates


def test_sd_ratio_of_three_with_many_replicates_is_found():
    rates = sd_ratio_rates(3.0, 40, seed=21)
    assert rates["above"] >= 0.8, rates


def test_power_figures_follow_the_number_of_replicates():
    rng = np.random.default_rng(30)
    few = judge_difference(simulated_effect(rng, 0.0, 5), MARGIN, ALPHA)
    many = judge_difference(simulated_effect(rng, 0.0, 40), MARGIN, ALPHA)
    assert many.mde < few.mde
    assert few.replicates_needed == pytest.approx(many.replicates_needed, rel=0.6)
    assert few.power_at_margin < 0.8 <= many.power_at_margin
