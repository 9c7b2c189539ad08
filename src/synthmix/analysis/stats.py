"""Statistics across replicates for the variance analysis, from kept libraries.

Welch's ANOVA and Holm's correction come from statsmodels, Games–Howell from pingouin;
Brown–Forsythe, Kruskal–Wallis, Mann–Whitney and the paired t from scipy. This module gives them
one calling convention and one result shape.

Input is a tidy :class:`pandas.DataFrame` with one row per replicate run, a group column
(e.g. ``temperature``) and a numeric value column (e.g. ``auc``).

Common conventions
------------------
* Rows whose value (or group) is missing are dropped before any computation.
* Groups are ordered as ``DataFrame.groupby(group, sort=True)`` orders them
  (sorted keys; category order for a categorical column).
* Sample standard deviations use ``ddof=1``.
* Small samples never raise: a statistic that is undefined for the data (a group
  with fewer than 2 values, zero variance where a variance is divided by, fewer
  than 2 groups) is ``nan``.
* Multi-group tests return frozen dataclasses; pairwise/per-group results return
  tidy DataFrames with one row per group or pair.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import asdict, dataclass
from typing import Dict

import numpy as np
import pandas as pd
from scipy import stats as sps

__all__ = [
    "describe_groups",
    "brown_forsythe",
    "welch_anova",
    "games_howell",
    "kruskal_wallis",
    "pairwise_mannwhitney_holm",
    "holm",
    "paired_vs_baseline",
    "BrownForsytheResult",
    "WelchAnovaResult",
    "KruskalResult",
]

_NAN = float("nan")


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class BrownForsytheResult:
    """Brown–Forsythe (median-centred Levene) test of equal variances.

    ``statistic`` is the W statistic, F-distributed with ``df_between = k - 1`` and
    ``df_within = N - k`` degrees of freedom; ``p_value`` is its upper tail.
    """

    statistic: float
    p_value: float
    df_between: float
    df_within: float
    n_groups: int
    n_total: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class WelchAnovaResult:
    """Welch's heteroscedastic one-way ANOVA.

    ``statistic`` is Welch's F with ``df1 = k - 1`` and the Welch–Satterthwaite
    ``df2``; ``p_value`` is its upper tail.
    """

    statistic: float
    df1: float
    df2: float
    p_value: float
    n_groups: int
    n_total: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class KruskalResult:
    """Kruskal–Wallis H test (tie-corrected, chi-square approximation).

    ``df = k - 1``; ``epsilon_squared = H / (N - 1)`` is the rank effect size.
    """

    statistic: float
    df: float
    p_value: float
    epsilon_squared: float
    n_groups: int
    n_total: int

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------- helpers
def _groups(df: pd.DataFrame, group: str, value: str) -> Dict[object, np.ndarray]:
    """Ordered mapping group key -> float array of non-missing values."""
    for col in (group, value):
        if col not in df.columns:
            raise KeyError(f"column {col!r} not in DataFrame")
    sub = df[[group, value]].copy()
    sub[value] = pd.to_numeric(sub[value], errors="raise").astype(float)
    sub = sub.dropna()
    out: Dict[object, np.ndarray] = {}
    for key, g in sub.groupby(group, sort=True, observed=True):
        vals = g[value].to_numpy(dtype=float)
        if vals.size:
            out[key] = vals
    return out


def _sd(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if x.size >= 2 else _NAN


def _var(x: np.ndarray) -> float:
    return float(np.var(x, ddof=1)) if x.size >= 2 else _NAN


# ------------------------------------------------------------------- descriptive
def describe_groups(
    df: pd.DataFrame, group: str, value: str, confidence: float = 0.95
) -> pd.DataFrame:
    """Per-group summary.

    Returns a DataFrame with one row per group and columns ``group`` (named after
    the group column), ``n``, ``mean``, ``sd``, ``se``, ``ci_low``, ``ci_high``
    (t-based CI for the mean, ``mean ± t_{(1+confidence)/2, n-1} · sd/√n``) and
    ``median``. ``sd``/``se``/CI are nan for groups with ``n < 2``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    rows = []
    for key, x in _groups(df, group, value).items():
        n = x.size
        mean = float(x.mean())
        sd = _sd(x)
        se = sd / np.sqrt(n) if n >= 2 else _NAN
        if n >= 2:
            half = float(sps.t.ppf(0.5 + confidence / 2.0, n - 1)) * se
            lo, hi = mean - half, mean + half
        else:
            lo = hi = _NAN
        rows.append(
            {
                group: key,
                "n": int(n),
                "mean": mean,
                "sd": sd,
                "se": se,
                "ci_low": lo,
                "ci_high": hi,
                "median": float(np.median(x)),
            }
        )
    cols = [group, "n", "mean", "sd", "se", "ci_low", "ci_high", "median"]
    return pd.DataFrame(rows, columns=cols)


# ------------------------------------------------------------ variance / location
def brown_forsythe(df: pd.DataFrame, group: str, value: str) -> BrownForsytheResult:
    """Brown–Forsythe test of equal variances across groups
    (``scipy.stats.levene(center="median")``).

    All non-empty groups are used. Statistic and p-value are nan with fewer than 2
    groups, when ``N - k < 1``, or when every value equals its group median.
    """
    groups = list(_groups(df, group, value).values())
    k = len(groups)
    n_total = int(sum(g.size for g in groups))
    df_b, df_w = float(k - 1), float(n_total - k)
    stat = p = _NAN
    if k >= 2 and df_w >= 1:
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore")
            res = sps.levene(*groups, center="median")
        stat, p = float(res.statistic), float(res.pvalue)
    if k < 2:
        df_b = df_w = _NAN
    return BrownForsytheResult(stat, p, df_b, df_w, k, n_total)


def welch_anova(df: pd.DataFrame, group: str, value: str) -> WelchAnovaResult:
    """Welch's one-way ANOVA for equal means without assuming equal variances.

    ``statsmodels.stats.oneway.anova_oneway(use_var="unequal", welch_correction=True)``: Welch's F
    with ``df1 = k - 1`` and the Welch–Satterthwaite ``df2``. All fields but the counts are nan with
    fewer than 2 groups, or if any group has ``n < 2`` or zero variance (the weights are then undefined).
    """
    from statsmodels.stats.oneway import anova_oneway

    groups = list(_groups(df, group, value).values())
    k = len(groups)
    n_total = int(sum(g.size for g in groups))
    bad = WelchAnovaResult(_NAN, _NAN, _NAN, _NAN, k, n_total)
    if k < 2 or any(g.size < 2 for g in groups) or not all(_var(g) > 0 for g in groups):
        return bad
    res = anova_oneway(groups, use_var="unequal", welch_correction=True)
    return WelchAnovaResult(float(res.statistic), float(res.df[0]), float(res.df[1]), float(res.pvalue), k, n_total)


def games_howell(df: pd.DataFrame, group: str, value: str) -> pd.DataFrame:
    """Games–Howell all-pairs comparison of group means (unequal variances), by ``pingouin.pairwise_gameshowell``.

    One row per pair ``(group_a, group_b)`` (groups in sorted order, ``a`` before
    ``b``) with columns ``group_a``, ``group_b``, ``n_a``, ``n_b``, ``mean_a``,
    ``mean_b``, ``diff`` (``mean_a - mean_b``), ``se`` (``√(s_a²/n_a + s_b²/n_b)``),
    ``t`` (``diff / se``), ``df`` (Welch–Satterthwaite), ``p_value`` (upper tail of
    the studentized range with ``k`` = number of groups, at ``q = |t|·√2``; already
    adjusted for the family of all pairs) and ``hedges_g`` (pooled-SD, small-sample
    corrected). Pairs with a group of ``n < 2``, or with ``se == 0``, get nan
    ``se``/``t``/``df``/``p_value`` as appropriate.
    """
    import pingouin

    cols = ["group_a", "group_b", "n_a", "n_b", "mean_a", "mean_b", "diff", "se",
            "t", "df", "p_value", "hedges_g"]
    gmap = _groups(df, group, value)
    if len(gmap) < 2:
        return pd.DataFrame(columns=cols)
    keys = list(gmap)
    long = pd.DataFrame({"g": np.repeat(np.arange(len(keys)), [x.size for x in gmap.values()]),
                         "v": np.concatenate(list(gmap.values()))})
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        res = pingouin.pairwise_gameshowell(data=long, dv="v", between="g", effsize="hedges")
    a, b = res["A"].astype(int).to_numpy(), res["B"].astype(int).to_numpy()
    sizes = np.array([x.size for x in gmap.values()])
    means = np.array([x.mean() for x in gmap.values()])
    out = pd.DataFrame({
        "group_a": [keys[i] for i in a], "group_b": [keys[i] for i in b],
        "n_a": sizes[a].astype(int), "n_b": sizes[b].astype(int),
        "mean_a": means[a], "mean_b": means[b],
        "diff": res["diff"].to_numpy(float), "se": res["se"].to_numpy(float), "t": res["T"].to_numpy(float),
        "df": res["df"].to_numpy(float), "p_value": res["pval"].to_numpy(float),
        "hedges_g": res["hedges"].to_numpy(float),
    })
    small = (out["n_a"] < 2) | (out["n_b"] < 2)
    out.loc[small, ["se", "t", "df", "p_value", "hedges_g"]] = _NAN
    out.loc[~(out["se"] > 0), ["t", "df", "p_value"]] = _NAN
    out.loc[~np.isfinite(out["hedges_g"]), "hedges_g"] = _NAN
    return out[cols]


# ------------------------------------------------------------------ rank based
def kruskal_wallis(df: pd.DataFrame, group: str, value: str) -> KruskalResult:
    """Kruskal–Wallis H test across groups (``scipy.stats.kruskal``).

    Statistic, p-value and effect size are nan with fewer than 2 groups or when all
    values are identical.
    """
    groups = list(_groups(df, group, value).values())
    k = len(groups)
    n_total = int(sum(g.size for g in groups))
    if k < 2:
        return KruskalResult(_NAN, _NAN, _NAN, _NAN, k, n_total)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sps.kruskal(*groups)
        h, p = float(res.statistic), float(res.pvalue)
    except ValueError:  # all numbers identical
        h = p = _NAN
    eps = h / (n_total - 1) if n_total > 1 and np.isfinite(h) else _NAN
    return KruskalResult(h, float(k - 1), p, eps, k, n_total)


def pairwise_mannwhitney_holm(df: pd.DataFrame, group: str, value: str) -> pd.DataFrame:
    """Two-sided Mann–Whitney U test for every pair of groups, Holm-adjusted.

    One row per pair (groups in sorted order) with columns ``group_a``,
    ``group_b``, ``n_a``, ``n_b``, ``u`` (U statistic of ``group_a``: number of
    pairs with ``a > b`` plus half the ties), ``p_value`` (``scipy.stats.mannwhitneyu``,
    ``method="auto"``), ``p_holm`` (Holm over all pairs with a p-value) and
    ``rank_biserial`` (``2U/(n_a n_b) - 1`` = P(a > b) - P(a < b), in [-1, 1]).
    """
    gmap = _groups(df, group, value)
    rows = []
    for (ka, a), (kb, b) in itertools.combinations(gmap.items(), 2):
        u = p = r = _NAN
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = sps.mannwhitneyu(a, b, alternative="two-sided")
            u, p = float(res.statistic), float(res.pvalue)
            r = 2.0 * u / (a.size * b.size) - 1.0
        except ValueError:
            pass
        rows.append(
            {"group_a": ka, "group_b": kb, "n_a": int(a.size), "n_b": int(b.size),
             "u": u, "p_value": p, "rank_biserial": r}
        )
    cols = ["group_a", "group_b", "n_a", "n_b", "u", "p_value", "p_holm", "rank_biserial"]
    out = pd.DataFrame(rows, columns=[c for c in cols if c != "p_holm"])
    out["p_holm"] = holm(out["p_value"].to_numpy(dtype=float)) if len(out) else []
    return out[cols]


# ----------------------------------------------------------- multiple comparisons
def holm(p_values) -> np.ndarray:
    """Holm step-down adjusted p-values, in the input order (``statsmodels`` ``multipletests(method="holm")``).

    For sorted p-values ``p_(1) <= ... <= p_(m)``, the adjusted value is
    ``max_{j <= i} min(1, (m - j + 1) p_(j))`` (monotone, capped at 1). NaN entries
    are left as NaN and do not count towards ``m``.
    """
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float).ravel()
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if not ok.any():
        return out
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    out[ok] = multipletests(p[ok], method="holm")[1]
    return out


# --------------------------------------------------------------------- paired
def paired_vs_baseline(
    df: pd.DataFrame,
    condition_col: str,
    value: str,
    seed_col: str,
    baseline,
) -> pd.DataFrame:
    """Paired comparison of each condition with ``baseline`` on matching replicates.

    ``seed_col`` names the column that numbers replicates (``replicate``; the name is kept for callers).

    For every condition other than ``baseline`` (sorted order), the differences
    ``d = value[condition] - value[baseline]`` over replicates present (non-missing) in
    both are summarised. One row per condition with columns ``condition``,
    ``n_pairs``, ``mean_baseline``, ``mean_condition`` (over the paired replicates),
    ``mean_diff``, ``sd_diff``, ``ci_low``/``ci_high`` (95 % t CI of the mean
    difference), ``t``, ``p_ttest`` (``scipy.stats.ttest_rel``), ``p_wilcoxon``
    (``scipy.stats.wilcoxon``, only when ``n_pairs >= 6``, else nan),
    ``cohens_dz`` (``mean_diff / sd_diff``) and ``p_holm`` (Holm over the t-test
    p-values of all conditions). Test statistics and ``cohens_dz`` are nan when
    ``n_pairs < 2`` or ``sd_diff == 0``; ``p_wilcoxon`` is nan when all differences
    are zero.

    Raises ``ValueError`` if ``baseline`` is absent or a (replicate, condition) pair
    occurs more than once.
    """
    for col in (condition_col, value, seed_col):
        if col not in df.columns:
            raise KeyError(f"column {col!r} not in DataFrame")
    sub = df[[seed_col, condition_col, value]].copy()
    sub[value] = pd.to_numeric(sub[value], errors="raise").astype(float)
    sub = sub.dropna()
    if sub.duplicated([seed_col, condition_col]).any():
        raise ValueError(f"duplicate ({seed_col}, {condition_col}) rows")
    wide = sub.pivot(index=seed_col, columns=condition_col, values=value)
    if baseline not in wide.columns:
        raise ValueError(f"baseline {baseline!r} not found in {condition_col!r}")
    conditions = [c for c in wide.columns if c != baseline]
    rows = []
    for cond in conditions:
        pair = wide[[baseline, cond]].dropna()
        base = pair[baseline].to_numpy(dtype=float)
        x = pair[cond].to_numpy(dtype=float)
        d = x - base
        n = d.size
        mean_d = float(d.mean()) if n else _NAN
        sd_d = _sd(d)
        t = p_t = p_w = dz = lo = hi = _NAN
        if n >= 2 and sd_d > 0:
            res = sps.ttest_rel(x, base)
            t, p_t = float(res.statistic), float(res.pvalue)
            dz = mean_d / sd_d
            half = float(sps.t.ppf(0.975, n - 1)) * sd_d / np.sqrt(n)
            lo, hi = mean_d - half, mean_d + half
        elif n >= 2:  # zero spread: the CI collapses onto the (constant) difference
            lo = hi = mean_d
        if n >= 6 and np.any(d != 0):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    p_w = float(sps.wilcoxon(x, base).pvalue)
            except ValueError:
                p_w = _NAN
        rows.append(
            {
                "condition": cond,
                "n_pairs": int(n),
                "mean_baseline": float(base.mean()) if n else _NAN,
                "mean_condition": float(x.mean()) if n else _NAN,
                "mean_diff": mean_d,
                "sd_diff": sd_d,
                "ci_low": lo,
                "ci_high": hi,
                "t": t,
                "p_ttest": p_t,
                "p_wilcoxon": p_w,
                "cohens_dz": dz,
            }
        )
    cols = ["condition", "n_pairs", "mean_baseline", "mean_condition", "mean_diff",
            "sd_diff", "ci_low", "ci_high", "t", "p_ttest", "p_wilcoxon", "cohens_dz"]
    out = pd.DataFrame(rows, columns=cols)
    out["p_holm"] = holm(out["p_ttest"].to_numpy(dtype=float)) if len(out) else []
    return out
