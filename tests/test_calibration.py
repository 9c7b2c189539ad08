"""The verdict rule measured on real coded responses: a fast version of bench/calibrate_verdicts.py.

Simulated studies of the default's size and resampling structure (384 Beetle answers resplit into
one third train / two thirds test, a pool shared by the replicates) with a TF-IDF + logistic
regression stand-in teacher, an arm whose true effect is known from the rest of the population,
through ``verdicts.judge_paired`` (the function that decides the study's verdicts) and through the
old two-level bootstrap. Few studies, so the checks are on the scale of the variance: the squared
standard errors the rule reports must match the squared errors of the study means around the truth
(the old rule's fall far short: it ignores that replicates resplit one data set and share a pool;
Nadeau & Bengio's assumed correlation overshoots). About 20 s of CPU; skips without the shared data.
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from synthmix.analysis.calibration import (
    Arm,
    StudyShape,
    beetle_population,
    old_rule_interval,
    simulate_study,
    true_difference,
)
from synthmix.analysis.verdicts import evaluation_noise, judge_paired

STUDIES, REPLICATES = 60, 10


@pytest.fixture(scope="module")
def calibration(beetle_dir):
    """(truth, its SE, per study: (new-rule judgement, old-rule interval, Nadeau–Bengio judgement, study mean)),
    all at R = 10."""
    with threadpool_limits(1):
        population = beetle_population(beetle_dir, "tfidf", subset=2400, seed=0)
        arm, shape = Arm("flipped (+20)", "flipped", 20), StudyShape()
        truth, truth_se = true_difference(population, arm, shape, draws=150, seed=0)
        rng = np.random.default_rng(1)
        rows = []
        for _ in range(STUDIES):
            study = simulate_study(population, arm, shape, REPLICATES, rng, inner_resamples=100)
            design = shape.design(arm, study.n_test)
            new = judge_paired(study.differences, "helps", 0.02, design=design,
                               noise=evaluation_noise(study.predictions))
            assumed = judge_paired(study.differences, "helps", 0.02, design=design)  # rho = overlap, no measurement
            _, low, high = old_rule_interval(study.differences, study.inner, n_boot=1000)
            rows.append((new, (low, high), assumed, float(study.differences.mean())))
    return truth, truth_se, rows


def test_the_stand_in_arm_has_a_real_effect(calibration):
    truth, truth_se, _ = calibration
    assert truth < -0.01 and truth_se < 0.004  # label-flipped copies hurt the stand-in teacher


def test_the_new_rule_reports_the_variance_the_study_means_really_have(calibration):
    truth, _, rows = calibration
    squared_errors = np.mean([(mean - truth) ** 2 for *_, mean in rows])
    reported = np.mean([new.se**2 for new, *_ in rows])
    assert 0.6 <= reported / squared_errors <= 1.8, (reported, squared_errors)
    covered = np.mean([new.ci_low <= truth <= new.ci_high for new, *_ in rows])
    assert covered >= 0.8


def test_the_old_two_level_bootstrap_understates_it(calibration):
    truth, _, rows = calibration
    squared_errors = np.mean([(mean - truth) ** 2 for *_, mean in rows])
    t = 1.833112932653634  # t(0.95, 9): the old interval's half width over its standard error
    reported = np.mean([((high - low) / (2 * t)) ** 2 for _, (low, high), *_ in rows])
    assert reported / squared_errors < 0.6, (reported, squared_errors)


def test_nadeau_bengio_without_a_measured_floor_overstates_it(calibration):
    """Why the floor is measured: assuming replicates correlate as much as their test sets overlap (2/3) makes
    intervals several times too wide for paired differences of models trained on different splits."""
    truth, _, rows = calibration
    squared_errors = np.mean([(mean - truth) ** 2 for *_, mean in rows])
    assert np.mean([assumed.se**2 for _, _, assumed, _ in rows]) / squared_errors > 1.8
