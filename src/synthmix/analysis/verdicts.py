"""Deciding a claim from replicates: intervals, margins, power, and the four verdicts.

Everything here works on per-replicate numbers, so it can be checked by simulation on tables
with a known truth (tests/test_verdict_simulation.py) as well as run on a study's results:

* ``PairedEffect``: one paired difference per replicate (e.g. AUC with synthetic data minus the
  human-only AUC of the same replicate), each computed on that replicate's own test split, and
  optionally the same difference on resamples of the test responses (the inner level).
* ``effect_interval``: the mean difference with a (1 - 2 alpha) interval whose standard error
  comes from a two-level bootstrap (replicates, then test responses inside each replicate), with
  Student's t quantile on R - 1 degrees of freedom so that five replicates are not treated as many.
* ``judge_difference`` / ``judge_sd_ratio``: the interval against the smallest effect of interest
  (the margin) stated before the run:

      interval entirely beyond +margin          -> the effect is there       ("above")
      interval entirely beyond -margin          -> the opposite effect       ("below")
      interval entirely inside (-margin, margin) -> no meaningful difference ("within"; TOST)
      interval crosses a margin                 -> inconclusive              ("crosses")

  Each decision is a one-sided test at alpha, hence the 1 - 2 alpha interval (90% at alpha 0.05).
  A non-significant test is never a verdict by itself.
* ``Judgement``: the estimate, its interval, the margin, the minimum detectable effect at this
  number of replicates and the replicates that 80% power would need (statsmodels' power
  solvers for the paired t; the F distribution for an SD ratio).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps

OUTCOMES = ("above", "below", "within", "crosses")


@dataclass
class PairedEffect:
    """Per-replicate paired differences: ``estimates[r]`` on replicate r's test split, and
    ``draws[r, b]`` the same difference on the b-th resample of that test split (or None)."""

    estimates: np.ndarray
    draws: np.ndarray | None = None

    def __post_init__(self):
        self.estimates = np.asarray(self.estimates, dtype=float)
        if self.draws is not None:
            self.draws = np.asarray(self.draws, dtype=float)
            if self.draws.ndim != 2 or self.draws.shape[0] != self.estimates.size:
                raise ValueError(f"draws must be (replicates, resamples); got {self.draws.shape} for "
                                 f"{self.estimates.size} replicates")

    @property
    def replicates(self) -> int:
        """Number of replicates with an estimate."""
        return int(np.isfinite(self.estimates).sum())


@dataclass
class Judgement:
    """The decision on one effect, with everything a reader needs to check it."""

    outcome: str  # one of OUTCOMES, or "no data"
    estimate: float
    ci_low: float
    ci_high: float
    ci_level: float
    margin: float
    replicates: int
    se: float
    mde: float
    replicates_needed: float
    power_at_margin: float

    def as_dict(self) -> dict:
        """Plain JSON-ready values (nan becomes None)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def classify(ci_low: float, ci_high: float, low_margin: float, high_margin: float) -> str:
    """Where an interval lies relative to (low_margin, high_margin): above, below, within or crosses."""
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return "crosses"
    if ci_low > high_margin:
        return "above"
    if ci_high < low_margin:
        return "below"
    if ci_low > low_margin and ci_high < high_margin:
        return "within"
    return "crosses"


def effect_interval(effect: PairedEffect, alpha: float = 0.05, n_boot: int = 2000, seed=0):
    """``(mean, low, high, se)``: the mean paired difference and its (1 - 2 alpha) interval.

    With inner draws, the standard error is that of a two-level bootstrap: replicates are drawn
    with replacement, and for each the difference on one resample of its test responses, so
    both the variation between replicates (split, training seed, synthetic draw) and the
    sampling of test responses are carried (the R/(R-1) factor undoes the bootstrap's
    small-sample shrinkage). Without draws it is the plain SD / sqrt(R). The interval uses
    Student's t on R - 1 degrees of freedom. Fewer than 2 replicates: no interval (nan).
    """
    keep = np.isfinite(effect.estimates)
    estimates = effect.estimates[keep]
    replicates = estimates.size
    if replicates == 0:
        return float("nan"), float("nan"), float("nan"), float("nan")
    mean = float(estimates.mean())
    if replicates < 2:
        return mean, float("nan"), float("nan"), float("nan")
    if effect.draws is None:
        se = float(estimates.std(ddof=1) / math.sqrt(replicates))
    else:
        draws = effect.draws[keep]
        rng = np.random.default_rng(seed)
        columns = draws.shape[1]
        picks = rng.integers(0, replicates, size=(n_boot, replicates))
        inner = rng.integers(0, columns, size=(n_boot, replicates))
        boot = np.nanmean(draws[picks, inner], axis=1)
        se = float(np.nanstd(boot, ddof=1) * math.sqrt(replicates / (replicates - 1)))
    quantile = float(sps.t.ppf(1 - alpha, replicates - 1))
    return mean, mean - quantile * se, mean + quantile * se, se


def paired_power(replicates: int, sd: float, margin: float, alpha: float, power: float) -> tuple[float, float, float]:
    """``(mde, replicates_needed, power_at_margin)`` for a paired difference with replicate SD ``sd``.

    mde: the smallest true difference a one-sided paired t-test at ``alpha`` detects with
    ``power`` at this number of replicates; replicates_needed: the number at which a difference
    the size of ``margin`` is detected with ``power`` (so a true effect of twice the margin would
    be judged beyond the margin); power_at_margin: the power now. From statsmodels' TTestPower.
    """
    from statsmodels.stats.power import TTestPower

    nan = float("nan")
    if replicates < 2 or not (math.isfinite(sd) and sd > 0):
        return nan, nan, nan
    solver = TTestPower()
    try:
        d = solver.solve_power(nobs=replicates, alpha=alpha, power=power, alternative="larger")
        mde = float(d) * sd
    except Exception:  # noqa: BLE001 - the solver found no root
        mde = nan
    try:
        needed = float(math.ceil(solver.solve_power(effect_size=margin / sd, alpha=alpha, power=power,
                                                    alternative="larger")))
    except Exception:  # noqa: BLE001
        needed = nan
    now = float(solver.power(effect_size=margin / sd, nobs=replicates, alpha=alpha, alternative="larger"))
    return mde, max(needed, 2.0) if math.isfinite(needed) else needed, now


def judge_difference(effect: PairedEffect, margin: float, alpha: float = 0.05, power: float = 0.8,
                     n_boot: int = 2000, seed=0) -> Judgement:
    """Judge a paired difference against ``±margin`` (see the module docstring)."""
    mean, low, high, se = effect_interval(effect, alpha, n_boot, seed)
    replicates = effect.replicates
    if replicates == 0:
        return Judgement("no data", *(float("nan"),) * 3, 1 - 2 * alpha, margin, 0, *(float("nan"),) * 4)
    sd = se * math.sqrt(replicates) if math.isfinite(se) else float("nan")
    mde, needed, now = paired_power(replicates, sd, margin, alpha, power)
    outcome = classify(low, high, -margin, margin) if replicates >= 2 else "crosses"
    return Judgement(outcome, mean, low, high, 1 - 2 * alpha, margin, replicates, se, mde, needed, now)


# --------------------------------------------------------------------------- spread
def pooled_variance(groups: list[np.ndarray]) -> tuple[float, int]:
    """``(variance, degrees of freedom)`` pooled over groups (each with its own mean)."""
    groups = [np.asarray(g, dtype=float)[np.isfinite(g)] for g in groups]
    dof = sum(max(g.size - 1, 0) for g in groups)
    if dof == 0:
        return float("nan"), 0
    return float(sum(((g - g.mean()) ** 2).sum() for g in groups if g.size) / dof), dof


def sd_ratio_power(dof_high: int, dof_low: int, ratio: float, alpha: float) -> float:
    """Power of the one-sided F test (variance ratio > 1 at ``alpha``) when the true SD ratio is ``ratio``."""
    if dof_high < 1 or dof_low < 1:
        return float("nan")
    critical = sps.f.isf(alpha, dof_high, dof_low)
    return float(sps.f.sf(critical / ratio**2, dof_high, dof_low))


def judge_sd_ratio(high: list[np.ndarray], low: np.ndarray, margin: float, alpha: float = 0.05,
                   power: float = 0.8, max_replicates: int = 1000) -> Judgement:
    """Judge SD(high groups, pooled) / SD(low) against ``margin`` (> 1) and ``1 / margin``.

    The (1 - 2 alpha) interval is the F interval of the variance ratio (normal values, groups
    treated as independent: when they share replicates, and so are positively correlated, it is
    conservative). mde: the smallest SD ratio the one-sided F test detects with ``power`` now;
    replicates_needed: replicates per temperature for ``power`` at an SD ratio of ``margin``.
    """
    var_high, dof_high = pooled_variance(high)
    low = np.asarray(low, dtype=float)[np.isfinite(low)]
    dof_low = max(low.size - 1, 0)
    var_low = float(low.var(ddof=1)) if dof_low else float("nan")
    level = 1 - 2 * alpha
    replicates = int(low.size)
    if dof_high < 1 or dof_low < 1 or not var_low > 0:
        return Judgement("crosses", float("nan"), float("nan"), float("nan"), level, margin, replicates,
                         float("nan"), float("nan"), float("nan"), float("nan"))
    observed = var_high / var_low
    ratio = math.sqrt(observed)
    ci_low = math.sqrt(observed / sps.f.isf(alpha, dof_high, dof_low))
    ci_high = math.sqrt(observed / sps.f.ppf(alpha, dof_high, dof_low))
    critical = sps.f.isf(alpha, dof_high, dof_low)
    mde = math.sqrt(critical / sps.f.ppf(1 - power, dof_high, dof_low))
    groups_high = max(len([g for g in high if np.size(g) > 1]), 1)
    needed = float("nan")
    for n in range(2, max_replicates + 1):
        if sd_ratio_power(groups_high * (n - 1), n - 1, margin, alpha) >= power:
            needed = float(n)
            break
    now = sd_ratio_power(dof_high, dof_low, margin, alpha)
    outcome = classify(ci_low, ci_high, 1 / margin, margin)
    return Judgement(outcome, ratio, ci_low, ci_high, level, margin, replicates, float("nan"), mde, needed, now)


# ------------------------------------------------------------------------ test sampling
def auc_on_resamples(labels, scores, counts) -> np.ndarray:
    """AUC of ``scores`` on each row of ``counts`` (how often each test response is drawn).

    Rank-based with ties counted as 1/2; nan for a resample with one class.
    """
    from synthmix.steps.metrics import _metric_values, _Prepared  # the bootstrap's own vectorised AUC

    labels = np.asarray(labels, dtype=np.int64)
    prepared = _Prepared(labels, np.asarray(scores, dtype=float), 0.5)
    return _metric_values(np.asarray(counts)[:, prepared.order], prepared, ["auc"])["auc"]


def test_resamples(n_items: int, n_resamples: int, seed) -> np.ndarray:
    """``(n_resamples, n_items)`` counts of a bootstrap of ``n_items`` test responses."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_items, np.full(n_items, 1.0 / n_items), size=n_resamples)
