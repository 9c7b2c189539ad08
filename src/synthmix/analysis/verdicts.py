"""Deciding a claim from replicates: one-sided verdicts against a margin, with intervals right for resplits.

The estimand of a paired comparison is the expected difference in test AUC between models trained
with and without a treatment on this many human responses drawn from the data set's population
(the expectation runs over training sets, training seeds, synthetic draws and test responses).
Everything here works on per-replicate numbers, so the same functions decide a study's verdicts
and are measured against a known truth by the calibration on real data
(``synthmix.analysis.calibration``, ``bench/calibrate_verdicts.py``).

* ``judge_paired``: one paired difference per replicate, each already scored on that replicate's
  own test split (so the spread across replicates carries test-sampling noise: nothing is added on
  top). Replicates resplit one data set and may draw from one shared pool, so they are positively
  correlated and their mean has a variance floor; the interval is the corrected resampled t of
  Nadeau & Bengio (2003): ``se = sd * sqrt(1/R + rho/(1 - rho))`` with Student's t on R - 1 df,
  where ``rho`` is the overlap the ``ResamplingDesign`` describes (the test fraction of the data
  set, or the share of a shared pool each replicate draws, whichever is larger). This is also
  the posterior of the Bayesian correlated t-test (Benavoli et al. 2017) under its flat prior.
* Verdicts are one-sided, decided at alpha against the margin stated before the run, from the
  (1 - 2 alpha) interval:

      direction        supported               contradicted
      "helps"          lower bound > +margin   upper bound < +margin
      "does_not_help"  upper bound < +margin   lower bound > +margin

  otherwise "inconclusive". Where the interval lies against the band (-margin, +margin)
  ("beyond", "within", "crosses") is kept apart, as a description.
* ``judge_sd_ratio_paired``: the ratio of two SDs across the same replicates (Pitman–Morgan,
  valid for paired, correlated values); ``judge_every``: a claim about every part at once
  (intersection–union: the deciding bound at alpha per part, the other bound Bonferroni-adjusted).
* Power is for the rule actually used: the probability of a decisive verdict when the truth lies
  one margin beyond the boundary (0 or twice the margin), by the noncentral t of the corrected
  statistic. Where the overlap leaves a floor that no number of replicates gets under, the
  judgement says so and how many human-coded responses would decide.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Callable

import numpy as np
from scipy import optimize
from scipy import stats as sps

from synthmix.analysis.resampling import (  # noqa: F401  (re-exported: part of this API)
    EvaluationNoise,
    ResamplingDesign,
    auc_difference_influence,
    evaluation_noise,
)

DIRECTIONS = ("helps", "does_not_help")
VERDICTS = ("supported", "contradicted", "inconclusive", "not tested")
POSITIONS = ("beyond", "within", "crosses")
NAN = float("nan")
#: A search for the replicates needed stops here (a number beyond it is reported as None).
MAX_REPLICATES = 100_000


@dataclass
class Judgement:
    """The decision on one effect, with everything a reader needs to check it.

    estimate and the (ci_level) interval ci_low..ci_high are for the estimand of the effect (the
    caller states it); scale is "difference" (no effect = 0, band -margin..+margin) or "ratio" (no
    effect = 1, band 1/margin..margin). power: the probability of a decisive verdict when the truth
    lies one margin beyond the boundary; replicates_needed: the replicates that give the power asked
    for (None: no number does); what_would_decide: that, in a sentence with its number.
    """

    verdict: str
    direction: str
    estimate: float
    ci_low: float
    ci_high: float
    ci_level: float
    margin: float
    position: str
    replicates: int
    se: float = NAN
    df: float = NAN
    power: float = NAN
    replicates_needed: int | None = None
    what_would_decide: str = ""
    method: str = ""
    scale: str = "difference"

    def as_dict(self) -> dict:
        """Plain JSON-ready values (nan becomes None)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


# ------------------------------------------------------------------------------- decisions
def decide(ci_low: float, ci_high: float, direction: str, margin: float) -> str:
    """The verdict a (1 - 2 alpha) interval gives a claim of ``direction`` against ``margin`` (see module)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}; got {direction!r}")
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return "inconclusive"
    above, below = ci_low > margin, ci_high < margin
    if direction == "helps":
        return "supported" if above else "contradicted" if below else "inconclusive"
    return "supported" if below else "contradicted" if above else "inconclusive"


def position_of(ci_low: float, ci_high: float, low: float, high: float) -> str:
    """Where an interval lies against the band (low, high): "beyond" it, "within" it, or "crosses" an edge."""
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return "crosses"
    if ci_low > high or ci_high < low:
        return "beyond"
    if ci_low > low and ci_high < high:
        return "within"
    return "crosses"


def not_tested(direction: str, margin: float, why: str = "", scale: str = "difference") -> Judgement:
    """A judgement for an effect the study cannot estimate."""
    return Judgement("not tested", direction, NAN, NAN, NAN, NAN, margin, "crosses", 0, what_would_decide=why,
                     scale=scale)


# ----------------------------------------------------------------------------------- power
def decision_power(sd: float, replicates: int, distance: float, alpha: float, inflation: float = 0.0) -> float:
    """P(decisive verdict) when the truth lies ``distance`` beyond the margin, for the corrected t rule.

    The statistic (mean - margin) / se with se = sd * sqrt(1/R + inflation) is noncentral t on
    R - 1 df with noncentrality distance / (sd * sqrt(1/R + inflation)) when sd is the spread of
    the replicates within the data set (what their SD estimates).
    """
    if replicates < 2 or not (math.isfinite(sd) and sd >= 0):
        return NAN
    if sd == 0:
        return 1.0
    se = sd * math.sqrt(1 / replicates + inflation)
    return float(sps.nct.sf(sps.t.ppf(1 - alpha, replicates - 1), replicates - 1, distance / se))


def power_limit(sd: float, distance: float, alpha: float, inflation: float) -> float:
    """The power of ``decision_power`` as the replicates grow without bound (1 without a floor)."""
    if inflation <= 0 or sd == 0:
        return 1.0
    return float(sps.norm.cdf(distance / (sd * math.sqrt(inflation)) - sps.norm.ppf(1 - alpha)))


def replicates_for_power(sd: float, distance: float, alpha: float, power: float, inflation: float = 0.0) -> int | None:
    """The fewest replicates (at least 2) at which ``decision_power`` reaches ``power``; None when none does."""
    if not (math.isfinite(sd) and sd >= 0) or power_limit(sd, distance, alpha, inflation) <= power:
        return None
    return _smallest(lambda n: decision_power(sd, n, distance, alpha, inflation) >= power, 2, MAX_REPLICATES)


def _smallest(enough: Callable[[int], bool], start: int, stop: int) -> int | None:
    """The smallest n in [start, stop] with ``enough(n)`` (assumed monotone in n), or None."""
    if enough(start):
        return start
    low, high = start, start * 2
    while not enough(high):
        if high >= stop:
            return None
        low, high = high, min(high * 2, stop)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


def responses_for_power(sd: float, replicates: int, distance: float, alpha: float, power: float,
                        inflation: float, n_total: int) -> int | None:
    """Human-coded responses (same fractions, same replicates) that give ``power``, if the spread between
    replicates shrinks as 1 / sqrt(responses), as test-sampling noise does. None without a floor."""
    if replicates < 2 or not (sd > 0) or n_total <= 0:
        return None
    df = replicates - 1
    critical = sps.t.ppf(1 - alpha, df)
    noncentrality = optimize.brentq(lambda nc: sps.nct.sf(critical, df, nc) - power, 0.0, 100.0)
    se_now = sd * math.sqrt(1 / replicates + inflation)
    needed = n_total * (se_now * noncentrality / distance) ** 2
    return int(math.ceil(needed / 10.0) * 10)


# ------------------------------------------------------------------------- paired differences
def variance_floor(sd: float, design: ResamplingDesign, noise: EvaluationNoise | None = None) -> float:
    """The part of the variance of the replicates' mean that no number of replicates removes.

    Without test predictions (``noise`` None): Nadeau & Bengio's sd**2 * rho / (1 - rho), rho the
    largest overlap of the design. With them: the covariance of two replicates' test noise, measured
    on the responses both test on (``EvaluationNoise.covariance``), plus, for the rest of the spread (training
    sets, pool draws), rho_rest / (1 - rho_rest) times its within-data-set part, where rho_rest is the
    overlap of what else replicates share (training responses, or a shared pool's draws, the larger)
    scaled by the influence correlation kappa measured on the test responses.
    """
    if noise is None or not (math.isfinite(noise.variance) and math.isfinite(noise.covariance)):
        return sd * sd * design.inflation
    test_floor = max(noise.covariance, 0.0)
    rest_within = max(sd * sd - (noise.variance - test_floor), 0.0)
    rho_rest = noise.influence_correlation(design.test_overlap) * max(design.train_overlap, min(design.pool_overlap, 0.95))
    return test_floor + rho_rest / (1 - rho_rest) * rest_within


def judge_paired(differences, direction: str, margin: float, *, alpha: float = 0.05, power: float = 0.8,
                 design: ResamplingDesign | None = None, noise: EvaluationNoise | None = None) -> Judgement:
    """Judge per-replicate paired differences (one per replicate) against ``+margin`` in ``direction``.

    The interval is the (1 - 2 alpha) overlap-corrected t interval for the expected difference:
    ``se = sqrt(sd**2 / R + variance_floor(sd, design, noise))`` with t on R - 1 df. ``design=None``
    treats the replicates as independent; ``noise`` (``evaluation_noise(...)`` of the replicates' test
    predictions) measures the test part of the floor instead of assuming it. See the module docstring
    for the verdicts, position and power.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}; got {direction!r}")
    if not margin > 0:
        raise ValueError(f"margin must be positive; got {margin}")
    design = design or ResamplingDesign()
    values = np.asarray(differences, dtype=float).ravel()
    values = values[np.isfinite(values)]
    replicates, level = int(values.size), 1 - 2 * alpha
    floor_words = ("test-noise covariance measured on shared test responses, the rest scaled by overlap x kappa"
                   if noise is not None else "Nadeau & Bengio's rho = overlap")
    method = (f"mean of per-replicate paired differences; overlap-corrected t on R - 1 df ({floor_words}); "
              f"{design.describe()}")
    if replicates == 0:
        return not_tested(direction, margin, "no replicate has both arms")
    estimate = float(values.mean())
    if replicates < 2:
        return Judgement("inconclusive", direction, estimate, NAN, NAN, level, margin, "crosses", 1,
                         what_would_decide="At least 2 replicates are needed for an interval.", method=method)
    sd = float(values.std(ddof=1))
    floor = variance_floor(sd, design, noise)
    inflation = floor / (sd * sd) if sd > 0 else 0.0
    method += f"; floor of variance {floor:.2g} (correlation between replicates about {floor / (floor + sd * sd):.2f})" \
        if floor > 0 and sd > 0 else ""
    se = sd * math.sqrt(1 / replicates + inflation)
    half = float(sps.t.ppf(1 - alpha, replicates - 1)) * se
    low, high = estimate - half, estimate + half
    verdict = decide(low, high, direction, margin)
    now = decision_power(sd, replicates, margin, alpha, inflation)
    needed = replicates_for_power(sd, margin, alpha, power, inflation)
    judgement = Judgement(verdict, direction, estimate, low, high, level, margin, position_of(low, high, -margin, margin),
                          replicates, se, replicates - 1, now, needed, method=method)
    judgement.what_would_decide = _what_would_decide(judgement, sd, alpha, power, design, inflation)
    return judgement


def power_at(judgement: Judgement, distance: float, alpha: float | None = None) -> float:
    """P(decisive verdict) of the judgement's own rule (its se and df) if the truth lay ``distance`` beyond the margin."""
    if not (math.isfinite(judgement.se) and judgement.se > 0 and math.isfinite(judgement.df)):
        return NAN
    alpha = alpha if alpha is not None else (1 - judgement.ci_level) / 2
    return float(sps.nct.sf(sps.t.ppf(1 - alpha, judgement.df), judgement.df, distance / judgement.se))


def _what_would_decide(j: Judgement, sd: float, alpha: float, power: float, design: ResamplingDesign,
                       inflation: float) -> str:
    truths = f"when the truth lies one margin ({j.margin:g}) from it (0 or {2 * j.margin:g})"
    if j.verdict in ("supported", "contradicted"):
        return (f"Decided with {j.replicates} replicates; the rule has {j.power:.0%} power to decide {truths}.")
    if j.replicates_needed is not None:
        return (f"About {j.replicates_needed} replicates would give {power:.0%} power to decide {truths}; "
                f"with {j.replicates} the power is {j.power:.0%}.")
    floor = sd * math.sqrt(inflation)
    responses = responses_for_power(sd, j.replicates, j.margin, alpha, power, inflation, design.total)
    more = (f"; about {responses} human-coded responses (same fractions, {j.replicates} replicates) would give "
            f"{power:.0%} power, if the spread between replicates shrinks as 1/sqrt(responses) as test-sampling "
            "noise does" if responses else "")
    return (f"No number of replicates decides: they resplit the same {design.total} responses, so the standard "
            f"error cannot fall below {floor:.3f} and the power {truths} stays below "
            f"{power_limit(sd, j.margin, alpha, inflation):.0%}{more}.")


def as_ratio(judgement: Judgement, margin: float) -> Judgement:
    """A judgement of mean log ratios (margin log(margin)) shown on the ratio scale: exp of estimate and bounds."""
    log_margin = math.log(margin)
    words = judgement.what_would_decide.replace(
        f"one margin ({log_margin:g}) from it (0 or {2 * log_margin:g})", f"a factor {margin:g} from the margin "
        f"(1 or {margin * margin:g})").replace("the standard error cannot", "the standard error of the log ratio cannot")
    finite = math.isfinite(judgement.ci_low) and math.isfinite(judgement.ci_high)
    low = math.exp(judgement.ci_low) if finite else NAN
    high = math.exp(judgement.ci_high) if finite else NAN
    return replace(judgement, estimate=math.exp(judgement.estimate) if math.isfinite(judgement.estimate) else NAN,
                   ci_low=low, ci_high=high, margin=margin, scale="ratio", what_would_decide=words,
                   position=position_of(low, high, 1 / margin, margin) if finite else judgement.position,
                   method="geometric mean of per-replicate ratios (mean log ratio); " + judgement.method)


# ------------------------------------------------------------------------------ spread (2a)
def pitman_morgan_interval(x, y, alpha: float) -> tuple[float, float]:
    """(1 - 2 alpha) interval for SD(x) / SD(y) from paired values (Pitman 1939, Morgan 1939).

    Inverts the test of corr(x + k y, x - k y) = 0 (t on n - 2 df), which holds exactly when
    SD(x) = k SD(y) for bivariate normal pairs, whatever their correlation.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = x.size
    if n < 3 or y.size != n:
        return NAN, NAN
    vx, vy = x.var(ddof=1), y.var(ddof=1)
    if not (vx > 0 and vy > 0):
        return NAN, NAN
    r = float(np.corrcoef(x, y)[0, 1])
    t = float(sps.t.ppf(1 - alpha, n - 2))
    k = 1 + 2 * (1 - r * r) * t * t / (n - 2)
    ratio = vx / vy
    return math.sqrt(ratio * (k - math.sqrt(k * k - 1))), math.sqrt(ratio * (k + math.sqrt(k * k - 1)))


def _pitman_morgan_noncentrality(ratio: float, margin: float, r: float) -> float:
    """Fisher's z of corr(x + m y, x - m y) when SD(x) / SD(y) = ratio, m = margin and corr(x, y) = r:
    the effect the Pitman–Morgan test of "ratio = margin" sees."""
    a, b = ratio * ratio, margin * margin
    rho = (a - b) / math.sqrt((a + b) ** 2 - 4 * a * b * r * r)
    return math.atanh(float(np.clip(rho, -0.999999, 0.999999)))


def pitman_morgan_power(n: int, r: float, margin: float, alpha: float) -> float:
    """P(decisive verdict) of the Pitman–Morgan rule with n pairs of correlation r when the true SD ratio lies a
    factor ``margin`` from the margin (margin**2: supported; 1: contradicted; the smaller), by Fisher's z."""
    if n < 4:
        return NAN
    r = float(np.clip(r, -0.95, 0.95))
    z = min(abs(_pitman_morgan_noncentrality(margin * margin, margin, r)),
            abs(_pitman_morgan_noncentrality(1.0, margin, r)))
    return float(sps.norm.cdf(z * math.sqrt(n - 3) - sps.norm.ppf(1 - alpha)))


def pitman_morgan_replicates(r: float, margin: float, alpha: float, power: float) -> int:
    """The replicates at which ``pitman_morgan_power`` reaches ``power``."""
    r = float(np.clip(r, -0.95, 0.95))
    z = min(abs(_pitman_morgan_noncentrality(margin * margin, margin, r)),
            abs(_pitman_morgan_noncentrality(1.0, margin, r)))
    return max(4, int(math.ceil(3 + ((sps.norm.ppf(1 - alpha) + sps.norm.ppf(power)) / z) ** 2)))


def _percent(value: float) -> str:
    return f"{value:.0%}" if math.isfinite(value) else "n/a (fewer than 4 replicates)"


def judge_sd_ratio_paired(x, y, direction: str, margin: float, *, alpha: float = 0.05,
                          power: float = 0.8) -> Judgement:
    """Judge SD(x) / SD(y) over the same replicates (pairs (x[r], y[r])) against the ratio ``margin`` (> 1).

    The interval is Pitman–Morgan's (``pitman_morgan_interval``); direction "helps" claims x is more
    variable than y by at least the margin. The spread is that across replicates of this data set
    (resplits, seeds, pools), so no overlap correction applies to it.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n, level = int(x.size), 1 - 2 * alpha
    method = "ratio of SDs across replicates, paired by replicate; Pitman–Morgan interval (t on R - 2 df)"
    if n == 0:
        return not_tested(direction, margin, "no replicate has both arms", scale="ratio")
    if n < 3 or not (x.var(ddof=1) > 0 and y.var(ddof=1) > 0):
        return Judgement("inconclusive", direction, NAN, NAN, NAN, level, margin, "crosses", n, scale="ratio",
                         what_would_decide="At least 3 replicates with some spread are needed for an interval.",
                         method=method)
    estimate = float(x.std(ddof=1) / y.std(ddof=1))
    low, high = pitman_morgan_interval(x, y, alpha)
    r = float(np.corrcoef(x, y)[0, 1])
    now = pitman_morgan_power(n, r, margin, alpha)
    needed = pitman_morgan_replicates(r, margin, alpha, power)
    verdict = decide(low, high, direction, margin)
    truths = f"when the true ratio lies a factor {margin:g} from the margin (1 or {margin ** 2:g})"
    if verdict in ("supported", "contradicted"):
        words = f"Decided with {n} replicates; the rule has {_percent(now)} power to decide {truths}."
    else:
        words = (f"About {needed} replicates would give {power:.0%} power to decide {truths}; with {n} it is "
                 f"{_percent(now)}.")
    return Judgement(verdict, direction, estimate, low, high, level, margin,
                     position_of(low, high, 1 / margin, margin), n, NAN, n - 2, now, needed, words, method, "ratio")


# ------------------------------------------------------------------- claims about every part
def judge_every(parts: dict[str, Callable[[float], Judgement]], direction: str, margin: float, *,
                alpha: float = 0.05) -> tuple[Judgement, dict[str, Judgement]]:
    """A claim about every part at once (intersection–union), e.g. "80% is not beaten by any other share".

    ``parts`` maps a part's name to a function giving its judgement at a one-sided level. For
    "helps" the claim is about the smallest part (min), for "does_not_help" about the largest (max):
    the bound that supports the claim is taken at ``alpha`` per part (every part must pass: no
    adjustment needed) and the other bound at ``alpha / k`` (Bonferroni over the k parts), so the
    combined interval is a (1 - 2 alpha) interval for the extreme part. Returns the combined
    judgement and each part's at ``alpha``.
    """
    if not parts:
        raise ValueError("judge_every needs at least one part")
    k = len(parts)
    at_alpha = {name: judge(alpha) for name, judge in parts.items()}
    adjusted = {name: judge(alpha / k) for name, judge in parts.items()} if k > 1 else at_alpha
    tested = [name for name, j in at_alpha.items() if j.verdict != "not tested"]
    first = next(iter(at_alpha.values()))
    if len(tested) < k:
        missing = ", ".join(name for name in at_alpha if name not in tested)
        return not_tested(direction, first.margin, f"not every part could be judged ({missing})", first.scale), at_alpha
    pick = min if direction == "helps" else max
    extreme = pick(tested, key=lambda name: at_alpha[name].estimate)
    if direction == "helps":
        low = min(at_alpha[n].ci_low for n in tested)
        high = min(adjusted[n].ci_high for n in tested)
    else:
        high = max(at_alpha[n].ci_high for n in tested)
        low = max(adjusted[n].ci_low for n in tested)
    band = (1 / margin, margin) if first.scale == "ratio" else (-margin, margin)
    powers = [at_alpha[n].power for n in tested]
    needs = [at_alpha[n].replicates_needed for n in tested]
    needed = None if any(n is None for n in needs) else max(needs)
    weakest = max(tested, key=lambda n: (at_alpha[n].replicates_needed is None, at_alpha[n].replicates_needed or 0))
    combined = Judgement(decide(low, high, direction, margin), direction, at_alpha[extreme].estimate, low, high,
                         1 - 2 * alpha, margin, position_of(low, high, *band), first.replicates, NAN, NAN,
                         float(min(powers)), needed, f"Every part must be decided; the hardest ({weakest}): "
                         f"{at_alpha[weakest].what_would_decide}",
                         f"intersection–union over {k} parts (the other bound Bonferroni over {k}); each part: "
                         f"{first.method}", first.scale)
    return combined, at_alpha

