import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.oneway import anova_oneway

from synthmix.analysis.stats import (
    brown_forsythe,
    describe_groups,
    games_howell,
    holm,
    kruskal_wallis,
    paired_vs_baseline,
    pairwise_mannwhitney_holm,
    welch_anova,
)


def tidy(groups: dict, group="temperature", value="auc") -> pd.DataFrame:
    rows = [(g, v) for g, vals in groups.items() for v in vals]
    return pd.DataFrame(rows, columns=[group, value])


# ---------------------------------------------------------------- holm
def test_holm_hand_computed():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> max(0.06, 0.04)
    adj = holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adj, [0.03, 0.06, 0.06, 0.02], rtol=0, atol=1e-12)


def test_holm_capped_monotone_nan_and_statsmodels():
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])
    out = holm([0.02, np.nan, 0.01])  # m = 2
    np.testing.assert_allclose(out[[0, 2]], [0.02, 0.02])
    assert math.isnan(out[1])
    assert holm([]).shape == (0,)
    p = np.random.default_rng(0).random(12) ** 3
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1], atol=1e-12)


# ---------------------------------------------------------------- describe
def test_describe_groups_known_values_and_small_n():
    df = tidy({0.0: [1.0, 2.0, 3.0], 1.0: [5.0], 0.5: [2.0, 4.0, np.nan]})
    out = describe_groups(df, "temperature", "auc").set_index("temperature")
    assert list(out.index) == [0.0, 0.5, 1.0]
    a = out.loc[0.0]
    assert a["n"] == 3 and a["mean"] == 2.0 and a["sd"] == pytest.approx(1.0)
    half = 4.302652729911275 / math.sqrt(3)  # t_{0.975, 2} * sd / sqrt(n)
    assert a["ci_low"] == pytest.approx(2 - half) and a["ci_high"] == pytest.approx(2 + half)
    assert a["median"] == 2.0
    assert out.loc[0.5, "n"] == 2  # NaN dropped
    single = out.loc[1.0]
    assert single["n"] == 1 and single["mean"] == 5.0
    assert math.isnan(single["sd"]) and math.isnan(single["ci_low"])


# ---------------------------------------------------------------- brown-forsythe
BASE = np.array([0.70, 0.72, 0.75, 0.71, 0.74, 0.69, 0.73, 0.76, 0.68, 0.72])


def test_brown_forsythe_equal_spread_not_flagged():
    df = tidy({"a": BASE, "b": BASE + 0.05, "c": BASE - 0.1})
    r = brown_forsythe(df, "temperature", "auc")
    assert r.p_value > 0.05
    assert r.statistic == pytest.approx(0.0, abs=1e-6)
    assert (r.df_between, r.df_within, r.n_groups, r.n_total) == (2, 27, 3, 30)


def test_brown_forsythe_variance_difference_flagged():
    rng = np.random.default_rng(42)
    df = tidy({"low": 0.7 + rng.normal(0, 0.01, 10), "high": 0.7 + rng.normal(0, 0.1, 10)})
    r = brown_forsythe(df, "temperature", "auc")
    assert r.p_value < 0.05
    ref = sps.levene(df.auc[df.temperature == "high"], df.auc[df.temperature == "low"],
                     center="median")
    assert r.statistic == pytest.approx(ref.statistic)


# ---------------------------------------------------------------- welch anova
def test_welch_anova_matches_statsmodels():
    rng = np.random.default_rng(7)
    groups = {
        "t0": rng.normal(0.70, 0.01, 8),
        "t1": rng.normal(0.72, 0.03, 10),
        "t2": rng.normal(0.69, 0.06, 12),
        "t3": rng.normal(0.75, 0.02, 5),
    }
    r = welch_anova(tidy(groups), "temperature", "auc")
    ref = anova_oneway(list(groups.values()), use_var="unequal", welch_correction=True)
    assert r.statistic == pytest.approx(ref.statistic, rel=0, abs=1e-8)
    assert r.p_value == pytest.approx(ref.pvalue, rel=0, abs=1e-8)
    assert r.df1 == pytest.approx(ref.df[0], abs=1e-8)
    assert r.df2 == pytest.approx(ref.df[1], abs=1e-8)
    assert (r.n_groups, r.n_total) == (4, 35)


def test_welch_anova_two_groups_equals_welch_t_squared():
    a, b = [1.0, 2.0, 4.0, 7.0], [3.0, 5.0, 6.0, 9.0, 12.0]
    r = welch_anova(tidy({"a": a, "b": b}), "temperature", "auc")
    t = sps.ttest_ind(a, b, equal_var=False)
    assert r.statistic == pytest.approx(t.statistic**2)
    assert r.p_value == pytest.approx(t.pvalue)


def test_welch_anova_small_n_or_zero_variance_is_nan():
    r = welch_anova(tidy({"a": [1.0, 2.0], "b": [3.0]}), "temperature", "auc")
    assert math.isnan(r.statistic) and math.isnan(r.p_value)
    r = welch_anova(tidy({"a": [1.0, 2.0], "b": [3.0, 3.0]}), "temperature", "auc")
    assert math.isnan(r.p_value)
    assert math.isnan(welch_anova(tidy({"a": [1.0, 2.0]}), "temperature", "auc").p_value)


# ---------------------------------------------------------------- games-howell
def test_games_howell_flags_only_pairs_with_the_outlying_group():
    rng = np.random.default_rng(3)
    df = tidy({
        "a": 0.70 + rng.normal(0, 0.01, 10),
        "b": 0.70 + rng.normal(0, 0.02, 10),
        "c": 0.70 + rng.normal(0, 0.015, 10),
        "d": 0.80 + rng.normal(0, 0.01, 10),
    })
    gh = games_howell(df, "temperature", "auc")
    assert len(gh) == 6
    flagged = {frozenset((a, b)) for a, b, p in gh[["group_a", "group_b", "p_value"]].values
               if p < 0.05}
    assert flagged == {frozenset(("a", "d")), frozenset(("b", "d")), frozenset(("c", "d"))}
    assert (gh["p_value"].between(0, 1)).all()


def test_games_howell_two_groups_equals_welch_t_test_and_hedges_g():
    a, b = [1.0, 2.0, 3.0], [2.0, 3.0, 4.0]
    gh = games_howell(tidy({"a": a, "b": b}), "temperature", "auc").iloc[0]
    t = sps.ttest_ind(a, b, equal_var=False)
    assert gh["diff"] == pytest.approx(-1.0)
    assert gh["se"] == pytest.approx(math.sqrt(2 / 3))
    assert gh["t"] == pytest.approx(t.statistic)
    assert gh["df"] == pytest.approx(4.0)
    # with k = 2 the studentized range at |t|*sqrt(2) equals the two-sided t tail
    assert gh["p_value"] == pytest.approx(t.pvalue, abs=1e-6)
    # pooled sd 1 -> d = -1 ; J = 1 - 3/(4*6 - 9) = 0.8
    assert gh["hedges_g"] == pytest.approx(-0.8)


def test_games_howell_small_group_gives_nan_not_crash():
    gh = games_howell(tidy({"a": [1.0, 2.0, 3.0], "b": [5.0], "c": [2.0, 2.5]}),
                      "temperature", "auc")
    row = gh[(gh.group_a == "a") & (gh.group_b == "b")].iloc[0]
    assert math.isnan(row["p_value"]) and math.isnan(row["hedges_g"])
    assert row["diff"] == pytest.approx(-3.0)
    assert not math.isnan(gh[(gh.group_a == "a") & (gh.group_b == "c")].iloc[0]["p_value"])


# ---------------------------------------------------------------- rank-based
def test_kruskal_wallis_matches_scipy_and_degenerate():
    groups = {"a": [1.0, 2.0, 3.0, 4.0], "b": [3.5, 5.0, 6.0], "c": [7.0, 8.0, 9.0, 10.0]}
    r = kruskal_wallis(tidy(groups), "temperature", "auc")
    ref = sps.kruskal(*groups.values())
    assert r.statistic == pytest.approx(ref.statistic)
    assert r.p_value == pytest.approx(ref.pvalue)
    assert r.df == 2
    assert r.epsilon_squared == pytest.approx(ref.statistic / 10)
    same = kruskal_wallis(tidy({"a": [1.0, 1.0], "b": [1.0]}), "temperature", "auc")
    assert math.isnan(same.statistic)


def test_pairwise_mannwhitney_holm():
    groups = {"a": [1.0, 2.0, 3.0, 4.0, 5.0], "b": [1.5, 2.5, 3.5, 4.5, 5.5],
              "c": [10.0, 11.0, 12.0, 13.0, 14.0]}
    out = pairwise_mannwhitney_holm(tidy(groups), "temperature", "auc")
    assert list(zip(out.group_a, out.group_b)) == [("a", "b"), ("a", "c"), ("b", "c")]
    ac = out.iloc[1]
    assert ac["u"] == 0.0
    assert ac["rank_biserial"] == pytest.approx(-1.0)  # every a < every c
    # a vs b: P(a>b) = 10/25, P(a<b) = 15/25
    assert out.iloc[0]["rank_biserial"] == pytest.approx(-0.2)
    ref = sps.mannwhitneyu(groups["a"], groups["c"], alternative="two-sided").pvalue
    assert ac["p_value"] == pytest.approx(ref)
    np.testing.assert_allclose(out["p_holm"], holm(out["p_value"]))
    assert (out["p_holm"] >= out["p_value"]).all()


# ---------------------------------------------------------------- paired
def _paired_table(shifts: dict, n_seeds=8, noise=None, seed=0):
    rng = np.random.default_rng(seed)
    base = 0.7 + rng.normal(0, 0.03, n_seeds)
    rows = [("base", s, base[s]) for s in range(n_seeds)]
    for cond, shift in shifts.items():
        extra = rng.normal(0, noise, n_seeds) if noise else np.zeros(n_seeds)
        rows += [(cond, s, base[s] + shift + extra[s]) for s in range(n_seeds)]
    return pd.DataFrame(rows, columns=["condition", "seed", "auc"])


def test_paired_constant_shift_gives_that_mean_difference():
    df = _paired_table({"plus": 0.05, "minus": -0.02})
    out = paired_vs_baseline(df, "condition", "auc", "seed", "base").set_index("condition")
    assert out.loc["plus", "mean_diff"] == pytest.approx(0.05, abs=1e-12)
    assert out.loc["minus", "mean_diff"] == pytest.approx(-0.02, abs=1e-12)
    assert out.loc["plus", "n_pairs"] == 8
    assert "base" not in out.index


def test_paired_noisy_shift_tests_and_holm():
    df = _paired_table({"big": 0.05, "none": 0.0}, n_seeds=10, noise=0.01, seed=4)
    df = df.sample(frac=1.0, random_state=0)  # row order must not matter
    out = paired_vs_baseline(df, "condition", "auc", "seed", "base").set_index("condition")
    big = out.loc["big"]
    w = df.pivot(index="seed", columns="condition", values="auc")
    ref = sps.ttest_rel(w["big"], w["base"])
    d = (w["big"] - w["base"]).to_numpy()
    assert big["p_ttest"] == pytest.approx(ref.pvalue)
    assert big["cohens_dz"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert big["p_ttest"] < 0.001 and big["p_wilcoxon"] < 0.01
    assert big["ci_low"] < 0.05 < big["ci_high"]
    np.testing.assert_allclose(out["p_holm"], holm(out["p_ttest"]))


def test_paired_small_n_and_dz_hand_value():
    df = pd.DataFrame({
        "condition": ["base"] * 3 + ["x"] * 3,
        "seed": [0, 1, 2] * 2,
        "auc": [0.0, 0.0, 0.0, 1.0, 2.0, 3.0],  # diffs 1, 2, 3
    })
    row = paired_vs_baseline(df, "condition", "auc", "seed", "base").iloc[0]
    assert row["mean_diff"] == pytest.approx(2.0)
    assert row["cohens_dz"] == pytest.approx(2.0)
    assert math.isnan(row["p_wilcoxon"])  # n < 6
    one = paired_vs_baseline(df[df.seed == 0], "condition", "auc", "seed", "base").iloc[0]
    assert one["n_pairs"] == 1 and math.isnan(one["p_ttest"])


def test_paired_errors():
    df = _paired_table({"x": 0.1}, n_seeds=3)
    with pytest.raises(ValueError):
        paired_vs_baseline(df, "condition", "auc", "seed", "missing")
    with pytest.raises(ValueError):
        paired_vs_baseline(pd.concat([df, df.iloc[:1]]), "condition", "auc", "seed", "base")


# ---------------------------------------------------------------- against hand formulas and a second library
def test_welch_anova_matches_the_textbook_formula_and_pingouin():
    import pingouin

    groups = {"a": [0.71, 0.74, 0.69, 0.73], "b": [0.80, 0.66, 0.75, 0.91, 0.62], "c": [0.70, 0.71, 0.705]}
    x = [np.asarray(v) for v in groups.values()]
    n = np.array([v.size for v in x], float)
    m = np.array([v.mean() for v in x])
    w = n / np.array([v.var(ddof=1) for v in x])
    grand = (w * m).sum() / w.sum()
    k = len(x)
    lam = ((1 - w / w.sum()) ** 2 / (n - 1)).sum()
    f = ((w * (m - grand) ** 2).sum() / (k - 1)) / (1 + 2 * (k - 2) * lam / (k**2 - 1))
    df2 = (k**2 - 1) / (3 * lam)
    r = welch_anova(tidy(groups), "temperature", "auc")
    assert r.statistic == pytest.approx(f) and r.df2 == pytest.approx(df2) and r.df1 == 2
    assert r.p_value == pytest.approx(sps.f.sf(f, 2, df2))
    ref = pingouin.welch_anova(data=tidy(groups), dv="auc", between="temperature").iloc[0]
    assert r.statistic == pytest.approx(ref["F"]) and r.p_value == pytest.approx(ref["p_unc"])


def test_games_howell_matches_the_studentized_range_by_hand_for_three_groups():
    groups = {"a": [1.0, 2.0, 4.0, 3.0], "b": [3.0, 5.0, 6.0, 9.0, 12.0], "c": [2.0, 2.5, 3.5]}
    gh = games_howell(tidy(groups), "temperature", "auc").set_index(["group_a", "group_b"])
    a, b = np.asarray(groups["a"]), np.asarray(groups["b"])
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    row = gh.loc[("a", "b")]
    assert row["t"] == pytest.approx(t) and row["df"] == pytest.approx(dof)
    assert row["p_value"] == pytest.approx(sps.studentized_range.sf(abs(t) * math.sqrt(2), 3, dof))
    assert list(gh.index) == [("a", "b"), ("a", "c"), ("b", "c")]
    # more groups in the family -> a larger (more conservative) p than the two-group Welch t test
    assert row["p_value"] > sps.ttest_ind(a, b, equal_var=False).pvalue


def test_games_howell_zero_spread_and_single_group():
    gh = games_howell(tidy({"a": [0.7, 0.7, 0.7], "b": [0.7, 0.7]}), "temperature", "auc").iloc[0]
    assert gh["se"] == 0 and math.isnan(gh["t"]) and math.isnan(gh["p_value"])
    one = games_howell(tidy({"a": [1.0, 2.0]}), "temperature", "auc")
    assert one.empty and "p_value" in one.columns


def test_holm_rejects_values_outside_the_unit_interval():
    with pytest.raises(ValueError):
        holm([0.2, 1.5])
