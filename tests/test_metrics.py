import math
import time

import numpy as np
import pytest
from scipy.stats import norm
from sklearn import metrics as skm

from synthmix.steps import metrics as M
from synthmix.steps.metrics import bootstrap_ci, classification_metrics, evaluate, grader_agreement

# Hand-worked confusion example (threshold 0.5):
#   labels 1 1 1 1 0 0 0 0 0 0
#   preds  1 1 1 0 1 0 0 0 0 0   -> TP=3 FN=1 FP=1 TN=5
HAND_LABELS = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
HAND_SCORES = [0.9, 0.8, 0.5, 0.3, 0.6, 0.4, 0.2, 0.1, 0.05, 0.0]


def test_auc_hand_worked():
    # positives 0.35, 0.8; negatives 0.1, 0.4 -> 3 of 4 pairs ordered correctly
    r = classification_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert r["auc"] == pytest.approx(0.75)
    assert r["n"] == 4 and r["n_positive"] == 2


def test_auc_ties_count_half():
    # positives 0.5, 0.9; negatives 0.2, 0.5 -> 1 + 0.5 + 1 + 1 = 3.5 of 4
    r = classification_metrics([0, 1, 0, 1], [0.2, 0.5, 0.5, 0.9])
    assert r["auc"] == pytest.approx(0.875)


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0, 0]])
def test_auc_nan_with_one_class(labels):
    r = classification_metrics(labels, [0.2, 0.6, 0.9])
    assert math.isnan(r["auc"])
    assert r["n"] == 3
    assert r["n_positive"] == sum(labels)


def test_kappa_f1_accuracy_hand_computed():
    r = classification_metrics(HAND_LABELS, HAND_SCORES)
    assert r["accuracy"] == pytest.approx(0.8)
    # F1(1) = 2*3/(6+1+1) = 0.75 ; F1(0) = 2*5/(10+1+1) = 10/12
    assert r["macro_f1"] == pytest.approx((0.75 + 10 / 12) / 2)
    # po = 0.8 ; pe = 0.4*0.4 + 0.6*0.6 = 0.52 ; kappa = 0.28/0.48
    assert r["kappa"] == pytest.approx(0.28 / 0.48)
    assert r["n"] == 10 and r["n_positive"] == 4


def test_threshold_is_inclusive_and_configurable():
    # score 0.5 counts as class 1 at threshold 0.5
    assert classification_metrics([1, 0], [0.5, 0.4])["accuracy"] == 1.0
    assert classification_metrics([1, 0], [0.5, 0.4], threshold=0.6)["accuracy"] == 0.5


def test_input_validation():
    with pytest.raises(ValueError):
        classification_metrics([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        classification_metrics([0, 1], [0.1])
    with pytest.raises(ValueError):
        classification_metrics([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError):
        bootstrap_ci([0, 1], [0.1, 0.9], metric="nope")


def test_vectorised_resample_metrics_match_sklearn():
    """The count-weighted formulas used by the bootstrap equal sklearn on the
    explicitly expanded resample (with ties in the scores)."""
    rng = np.random.default_rng(1)
    n = 60
    y = rng.integers(0, 2, n)
    s = np.round(rng.random(n), 1)  # many ties
    prep = M._Prepared(y, s, 0.5)
    assert prep.starts is not None
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(15)])
    counts = np.vstack([np.ones(n, dtype=int), counts])
    vals = M._metric_values(counts[:, prep.order], prep, M.METRICS)  # sorted item order
    for b, c in enumerate(counts):
        yy, ss = np.repeat(y, c), np.repeat(s, c)
        pp = (ss >= 0.5).astype(int)
        assert vals["auc"][b] == pytest.approx(skm.roc_auc_score(yy, ss), abs=1e-12)
        assert vals["macro_f1"][b] == pytest.approx(
            skm.f1_score(yy, pp, average="macro", labels=[0, 1], zero_division=0), abs=1e-12
        )
        assert vals["accuracy"][b] == pytest.approx(skm.accuracy_score(yy, pp), abs=1e-12)
        assert vals["kappa"][b] == pytest.approx(skm.cohen_kappa_score(yy, pp), abs=1e-12)


def test_vectorised_auc_without_ties_matches_sklearn():
    rng = np.random.default_rng(2)
    y, s = rng.integers(0, 2, 50), rng.random(50)
    prep = M._Prepared(y, s, 0.5)
    assert prep.starts is None
    counts = np.stack([np.bincount(rng.integers(0, 50, 50), minlength=50) for _ in range(10)])
    vals = M._metric_values(counts[:, prep.order], prep, ["auc"])["auc"]
    ref = [skm.roc_auc_score(np.repeat(y, c), np.repeat(s, c)) for c in counts]
    np.testing.assert_allclose(vals, ref, atol=1e-12)


def test_single_class_resamples_are_nan():
    prep = M._Prepared(np.array([0, 1, 1]), np.array([0.1, 0.7, 0.8]), 0.5)
    # scores already ascending, so sorted order == input order
    vals = M._metric_values(np.array([[0, 2, 1], [1, 1, 1]]), prep, M.METRICS)
    for m in M.METRICS:
        assert math.isnan(vals[m][0])
        assert not math.isnan(vals[m][1])


def _two_normals(n, seed):
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(n // 2, int), np.ones(n - n // 2, int)]
    s = np.r_[rng.normal(0, 1, n // 2), rng.normal(1, 1, n - n // 2)]
    return y, s


def test_bootstrap_deterministic_for_seed():
    y, s = _two_normals(300, 3)
    a = bootstrap_ci(y, s, n_resamples=200, seed=7)
    b = bootstrap_ci(y, s, n_resamples=200, seed=7)
    c = bootstrap_ci(y, s, n_resamples=200, seed=8)
    assert a == b
    assert a != c
    assert a[0] < a[1]


def test_bootstrap_equals_naive_loop_percentiles():
    """Same resamples (rows of default_rng(seed).integers(0, n, (B, n)); a single
    block at this size), metric by sklearn in a plain loop, then 2.5/97.5 percentiles."""
    y, s = _two_normals(120, seed=9)
    B, n = 400, 120
    idx = np.random.default_rng(3).integers(0, n, size=(B, n))
    aucs = [skm.roc_auc_score(y[i], s[i]) for i in idx if 0 < y[i].sum() < n]
    expected = tuple(np.percentile(aucs, [2.5, 97.5]))
    assert bootstrap_ci(y, s, "auc", n_resamples=B, seed=3) == pytest.approx(expected, abs=1e-12)
    lo50, hi50 = bootstrap_ci(y, s, "auc", n_resamples=B, seed=3, confidence=0.5)
    assert (lo50, hi50) == pytest.approx(tuple(np.percentile(aucs, [25, 75])), abs=1e-12)


def test_bootstrap_perfect_separation():
    y = np.r_[np.zeros(20, int), np.ones(20, int)]
    s = np.r_[np.linspace(0.0, 0.4, 20), np.linspace(0.6, 1.0, 20)]
    assert bootstrap_ci(y, s, metric="auc", n_resamples=500) == (1.0, 1.0)
    assert bootstrap_ci(y, s, metric="macro_f1", n_resamples=500) == (1.0, 1.0)


def test_bootstrap_one_class_gives_nan():
    lo, hi = bootstrap_ci([1, 1, 1, 1], [0.1, 0.5, 0.6, 0.9], n_resamples=50)
    assert math.isnan(lo) and math.isnan(hi)


def test_bootstrap_covers_population_auc_and_shrinks():
    true_auc = norm.cdf(1 / math.sqrt(2))  # ~0.7602
    assert true_auc == pytest.approx(0.7602, abs=1e-4)
    widths = []
    for n in (500, 4000):
        y, s = _two_normals(n, seed=11)
        lo, hi = bootstrap_ci(y, s, metric="auc", n_resamples=1000, seed=0)
        assert lo < true_auc < hi
        point = classification_metrics(y, s)["auc"]
        assert lo < point < hi
        widths.append(hi - lo)
    # width ~ 1/sqrt(n): expected ratio ~ sqrt(8) ~ 2.8
    assert widths[1] < 0.6 * widths[0]
    assert 0.02 < widths[1] < 0.05  # analytic SE ~0.0075 -> 95% width ~0.03


def test_bootstrap_auc_speed():
    y, s = _two_normals(1000, seed=5)
    bootstrap_ci(y, s, n_resamples=50)  # warm-up
    t0 = time.perf_counter()
    bootstrap_ci(y, s, metric="auc", n_resamples=1000, seed=0)
    assert time.perf_counter() - t0 < 1.0


def test_evaluate_contents():
    y, s = _two_normals(400, seed=2)
    r = evaluate(y, s, n_resamples=300, seed=1)
    base = classification_metrics(y, s)
    for k, v in base.items():
        assert r[k] == v
    assert r["auc_ci_low"] < r["auc"] < r["auc_ci_high"]
    assert r["macro_f1_ci_low"] < r["macro_f1"] < r["macro_f1_ci_high"]
    assert (r["auc_ci_low"], r["auc_ci_high"]) == bootstrap_ci(y, s, "auc", 300, seed=1)
    assert (r["macro_f1_ci_low"], r["macro_f1_ci_high"]) == bootstrap_ci(
        y, s, "macro_f1", 300, seed=1
    )


def test_grader_agreement_hand_computed():
    graded = [1, 1, 1, 0, 1, 0, 0, 0, 0, 0]
    r = grader_agreement(HAND_LABELS, graded)
    assert r["n"] == 10
    assert (r["tp"], r["fp"], r["fn"], r["tn"]) == (3, 1, 1, 5)
    assert r["accuracy"] == pytest.approx(0.8)
    assert r["precision"] == pytest.approx(0.75)
    assert r["recall"] == pytest.approx(0.75)
    assert r["f1"] == pytest.approx(0.75)
    assert r["kappa"] == pytest.approx(0.28 / 0.48)
    assert r["kappa"] == pytest.approx(skm.cohen_kappa_score(HAND_LABELS, graded))


def test_grader_agreement_undefined_precision_is_nan():
    r = grader_agreement([1, 0, 1], [0, 0, 0])
    assert math.isnan(r["precision"])
    assert r["recall"] == 0.0
    assert r["f1"] == 0.0
    assert r["kappa"] == pytest.approx(0.0)
    # perfect constant agreement: kappa undefined
    assert math.isnan(grader_agreement([1, 1], [1, 1])["kappa"])
