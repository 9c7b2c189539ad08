"""The verdict rule measured on real coded responses: a fast version of bench/calibrate_verdicts.py.

Simulated studies of the default's size and resampling structure (384 Beetle answers resplit into
one third train / two thirds test, a pool shared by the replicates, drawn per item as the study
draws synthetic responses) with a TF-IDF + logistic
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
            design = shape.design(arm, study.n_test, study.pool_size)
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
    # 0.70 here (the new rule's 1.02); over 500 MiniLM studies its 90% interval covers 0.81 at R = 10
    assert reported / squared_errors < 0.8, (reported, squared_errors)


def test_nadeau_bengio_without_a_measured_floor_overstates_it(calibration):
    """Why the floor is measured: assuming replicates correlate as much as their test sets overlap (2/3) makes
    intervals several times too wide for paired differences of models trained on different splits."""
    truth, _, rows = calibration
    squared_errors = np.mean([(mean - truth) ** 2 for *_, mean in rows])
    assert np.mean([assumed.se**2 for _, _, assumed, _ in rows]) / squared_errors > 1.8


def _toy_population(items: list[str], labels: list[int]):
    from synthmix.analysis.calibration import Population

    n = len(items)
    return Population(np.zeros((n, 1)), np.asarray(labels), [f"answer {i}" for i in range(n)], items, "tfidf",
                      np.arange(n, dtype=np.int64))


def test_extra_responses_are_drawn_per_item_like_the_studys_synthetic_draws():
    """As 03_train_teacher splits synthetic draws across items in proportion to the human training
    responses per item, the harness draws its extra responses the same way (else outside data of another
    item mix looks less useful in the study than in the population, a bias the rule cannot see)."""
    from collections import Counter

    from synthmix.analysis.calibration import _take, _wanted
    from synthmix.data.sampling import item_targets, label_counts

    items = ["a"] * 300 + ["b"] * 300 + ["c"] * 300
    population = _toy_population(items, [i % 2 for i in range(900)])
    train = np.concatenate([np.arange(0, 40), np.arange(300, 310), np.arange(600, 602)])  # 40 : 10 : 2 by item
    arm = Arm("more human (+26)", "more_human", 26)
    wanted = _wanted(population, arm, train, StudyShape())
    expected = item_targets(label_counts(26, 0.5), {"a": 40, "b": 10, "c": 2})
    assert wanted == {(item, label): n for item, by in expected.items() for label, n in by.items()}
    drawn = _take(population, np.arange(900), wanted, True, np.random.default_rng(0), "the pool")
    per_item = {item: sum(by.values()) for item, by in expected.items() if sum(by.values())}
    assert Counter(population.items[i] for i in drawn) == per_item and per_item["a"] > 3 * per_item["b"]
    assert set(_wanted(population, arm, train, StudyShape(match_items=False))) == {("", 0), ("", 1)}


def test_a_short_item_gives_what_it_has_and_the_rest_comes_from_its_label():
    from synthmix.analysis.calibration import PoolShortage, _take

    population = _toy_population(["a"] * 10 + ["b"] * 2, [1] * 12)
    drawn = _take(population, np.arange(12), {("a", 1): 3, ("b", 1): 5}, True, np.random.default_rng(0), "the pool")
    assert len(set(drawn)) == 8 and set(range(10, 12)) <= set(drawn)  # both of b, and six of a
    with pytest.raises(PoolShortage, match="labelled 1"):
        _take(population, np.arange(12), {("a", 1): 11, ("b", 1): 2}, True, np.random.default_rng(0), "the pool")


def test_a_flipped_arm_keeps_the_human_positive_rate_in_the_labels_it_trains_on():
    """A label-flipped arm stands in for a generator whose intended codes are wrong: like any synthetic
    draw (``label_balance: match_human``), the labels it is trained on keep the training positive rate."""
    from synthmix.analysis.calibration import _arms, _take, _wanted

    population = _toy_population(["a"] * 200, [int(i < 50) for i in range(200)])  # a quarter coded 1
    train = np.concatenate([np.arange(0, 10), np.arange(100, 130)])  # 10 of 40 coded 1
    arm = Arm("flipped (+20)", "flipped", 20)
    extra = _take(population, np.arange(200), _wanted(population, arm, train, StudyShape()), True,
                  np.random.default_rng(0), "the pool")
    _, labels = _arms(population, arm, train, extra, np.random.default_rng(0))
    assert labels[train.size:].sum() == 5 and population.labels[extra].sum() == 15  # trained as 1: five true 0s


def test_a_pool_per_replicate_is_judged_as_one():
    """With ``shared_pool=False`` the rule is told the replicates share no pool (their draws do not overlap
    by design), as the claims code reads it from a study whose replicates each have their own pool."""
    arm = Arm("more human (+64)", "more_human", 64)
    shared, own = StudyShape().design(arm, 256, 100), StudyShape(shared_pool=False).design(arm, 256, 100)
    assert shared.shared_pool and shared.pool_overlap == 0.64
    assert not own.shared_pool and own.pool_overlap == 0.0 and own.test_overlap == shared.test_overlap
