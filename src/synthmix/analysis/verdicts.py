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

DIRECTIONS = ("helps", "does_not_help")
VERDICTS = ("supported", "contradicted", "inconclusive", "not tested")
POSITIONS = ("beyond", "within", "crosses")
NAN = float("nan")
#: A search for the replicates needed stops here (a number beyond it is reported as None).
MAX_REPLICATES = 100_000


@dataclass(frozen=True)
class ResamplingDesign:
    """How a study's replicates resample one data set: what makes their results correlated.

    n_train: human responses each replicate keeps out of its test split (training + validation);
    n_test: test responses per replicate; n_total: responses the replicates resplit (default
    n_train + n_test); pool_size / draw_size: the synthetic pool an arm draws from and how many
    responses each replicate draws; shared_pool: whether every replicate draws from that one pool.
    With every field at its default the replicates are treated as independent.
    """

    n_train: int = 0
    n_test: int = 0
    n_total: int | None = None
    pool_size: int | None = None
    draw_size: int | None = None
    shared_pool: bool = False

    def __post_init__(self):
        total = self.total
        if self.n_test < 0 or self.n_train < 0 or (self.n_test and self.n_test >= total and total > 0):
            raise ValueError(f"ResamplingDesign: n_test ({self.n_test}) must be below n_total ({total}): "
                             "replicates that test on every response have no training data")
        if self.shared_pool and not (self.pool_size and self.draw_size is not None):
            raise ValueError("ResamplingDesign: a shared pool needs pool_size and draw_size")
        if self.shared_pool and self.draw_size > self.pool_size:
            raise ValueError(f"ResamplingDesign: draw_size ({self.draw_size}) exceeds pool_size ({self.pool_size})")

    @property
    def total(self) -> int:
        """Responses resplit by the replicates."""
        return int(self.n_total if self.n_total is not None else self.n_train + self.n_test)

    @property
    def test_overlap(self) -> float:
        """Expected share of one replicate's test responses that another replicate also tests on."""
        return self.n_test / self.total if self.total else 0.0

    @property
    def pool_overlap(self) -> float:
        """Expected share of one replicate's synthetic draw that another replicate also draws (shared pool)."""
        return self.draw_size / self.pool_size if self.shared_pool and self.pool_size else 0.0

    @property
    def correlation(self) -> float:
        """rho, the correlation between two replicates' results that the corrected t assumes: the
        largest overlap of anything they share (Nadeau & Bengio's n_test / n for the resplits)."""
        return max(self.test_overlap, min(self.pool_overlap, 0.95))

    @property
    def inflation(self) -> float:
        """rho / (1 - rho): the variance of the mean is sd**2 * (1/R + inflation)."""
        rho = self.correlation
        return rho / (1 - rho)

    def describe(self) -> str:
        """The design in words (for method texts)."""
        if self.correlation == 0:
            return "replicates treated as independent"
        words = (f"replicates resplit {self.total} responses ({self.n_test} test each, so two test sets share "
                 f"about {self.test_overlap:.0%})")
        if self.shared_pool:
            words += (f" and draw {self.draw_size} of one shared pool of {self.pool_size} "
                      f"(two draws share about {self.pool_overlap:.0%})")
        return words + f"; assumed correlation between replicates {self.correlation:.2f}"


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
def judge_paired(differences, direction: str, margin: float, *, alpha: float = 0.05, power: float = 0.8,
                 design: ResamplingDesign | None = None) -> Judgement:
    """Judge per-replicate paired differences (one per replicate) against ``+margin`` in ``direction``.

    The interval is the (1 - 2 alpha) corrected resampled t interval for the expected difference
    (``se = sd * sqrt(1/R + design.inflation)``, t on R - 1 df); ``design=None`` treats the
    replicates as independent. See the module docstring for the verdicts, position and power.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}; got {direction!r}")
    if not margin > 0:
        raise ValueError(f"margin must be positive; got {margin}")
    design = design or ResamplingDesign()
    values = np.asarray(differences, dtype=float).ravel()
    values = values[np.isfinite(values)]
    replicates, level = int(values.size), 1 - 2 * alpha
    method = ("mean of per-replicate paired differences; corrected resampled t (Nadeau & Bengio 2003) on R - 1 df, "
              f"{design.describe()}")
    if replicates == 0:
        return not_tested(direction, margin, "no replicate has both arms")
    estimate = float(values.mean())
    if replicates < 2:
        return Judgement("inconclusive", direction, estimate, NAN, NAN, level, margin, "crosses", 1,
                         what_would_decide="At least 2 replicates are needed for an interval.", method=method)
    sd = float(values.std(ddof=1))
    inflation = design.inflation
    se = sd * math.sqrt(1 / replicates + inflation)
    half = float(sps.t.ppf(1 - alpha, replicates - 1)) * se
    low, high = estimate - half, estimate + half
    verdict = decide(low, high, direction, margin)
    now = decision_power(sd, replicates, margin, alpha, inflation)
    needed = replicates_for_power(sd, margin, alpha, power, inflation)
    judgement = Judgement(verdict, direction, estimate, low, high, level, margin, position_of(low, high, -margin, margin),
                          replicates, se, replicates - 1, now, needed, method=method)
    judgement.what_would_decide = _what_would_decide(judgement, sd, alpha, power, design)
    return judgement


def _what_would_decide(j: Judgement, sd: float, alpha: float, power: float, design: ResamplingDesign) -> str:
    truths = f"when the truth lies one margin ({j.margin:g}) from it (0 or {2 * j.margin:g})"
    if j.verdict in ("supported", "contradicted"):
        return (f"Decided with {j.replicates} replicates; the rule has {j.power:.0%} power to decide {truths}.")
    if j.replicates_needed is not None:
        return (f"About {j.replicates_needed} replicates would give {power:.0%} power to decide {truths}; "
                f"with {j.replicates} the power is {j.power:.0%}.")
    floor = sd * math.sqrt(design.inflation)
    responses = responses_for_power(sd, j.replicates, j.margin, alpha, power, design.inflation, design.total)
    more = (f"; about {responses} human-coded responses (same fractions, {j.replicates} replicates) would give "
            f"{power:.0%} power, if the spread between replicates shrinks as 1/sqrt(responses) as test-sampling "
            "noise does" if responses else "")
    return (f"No number of replicates decides: they resplit the same {design.total} responses, so the standard "
            f"error cannot fall below {floor:.3f} and the power {truths} stays below "
            f"{power_limit(sd, j.margin, alpha, design.inflation):.0%}{more}.")


def as_ratio(judgement: Judgement, margin: float) -> Judgement:
    """A judgement of mean log ratios shown on the ratio scale: exp of estimate and bounds, margin as a ratio."""
    return replace(judgement, estimate=math.exp(judgement.estimate), ci_low=math.exp(judgement.ci_low),
                   ci_high=math.exp(judgement.ci_high), margin=margin, scale="ratio",
                   position=position_of(math.exp(judgement.ci_low), math.exp(judgement.ci_high), 1 / margin, margin)
                   if math.isfinite(judgement.ci_low) else judgement.position,
                   what_would_decide=judgement.what_would_decide.replace(f"({math.log(margin):g})",
                                                                         f"(a factor {margin:g})"))


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


def _pitman_morgan_power(n: int, r: float, margin: float, alpha: float, sims: int = 4000) -> float:
    """P(decisive verdict) of the Pitman–Morgan rule with n pairs of correlation r, at SD ratios one margin
    from the boundary (margin**2 for supported, 1 for contradicted; the smaller of the two), by simulation."""
    rng = np.random.default_rng([n, 7])
    r = float(np.clip(r, -0.95, 0.95))
    t = float(sps.t.ppf(1 - alpha, n - 2))
    rates = []
    for truth, decisive in ((margin**2, "low"), (1.0, "high")):
        y = rng.standard_normal((sims, n))
        x = truth * (r * y + math.sqrt(1 - r * r) * rng.standard_normal((sims, n)))
        vx, vy = x.var(axis=1, ddof=1), y.var(axis=1, ddof=1)
        xc, yc = x - x.mean(axis=1, keepdims=True), y - y.mean(axis=1, keepdims=True)
        rr = (xc * yc).sum(axis=1) / np.sqrt((xc**2).sum(axis=1) * (yc**2).sum(axis=1))
        k = 1 + 2 * (1 - rr**2) * t * t / (n - 2)
        low = np.sqrt(vx / vy * (k - np.sqrt(k * k - 1)))
        high = np.sqrt(vx / vy * (k + np.sqrt(k * k - 1)))
        rates.append(float(np.mean(low > margin) if decisive == "low" else np.mean(high < margin)))
    return min(rates)


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
    now = _pitman_morgan_power(n, r, margin, alpha)
    needed = _smallest(lambda size: _pitman_morgan_power(size, r, margin, alpha) >= power, n, 2000)
    verdict = decide(low, high, direction, margin)
    truths = f"when the true ratio lies a factor {margin:g} from the margin (1 or {margin ** 2:g})"
    if verdict in ("supported", "contradicted"):
        words = f"Decided with {n} replicates; the rule has {now:.0%} power to decide {truths}."
    elif needed is not None:
        words = f"About {needed} replicates would give {power:.0%} power to decide {truths}; with {n} it is {now:.0%}."
    else:
        words = f"More than 2000 replicates would be needed for {power:.0%} power {truths}."
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


# ============================================================================ legacy (old rule)
# The two-level bootstrap with t on R - 1 df, kept only until analysis/claims.py moves to
# judge_paired (same branch); the calibration keeps its own labelled copy to show its failure.
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
class _OldJudgement:
    """The old rule's judgement (legacy, see above)."""

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
                     n_boot: int = 2000, seed=0) -> '_OldJudgement':
    """Judge a paired difference against ``±margin`` (see the module docstring)."""
    mean, low, high, se = effect_interval(effect, alpha, n_boot, seed)
    replicates = effect.replicates
    if replicates == 0:
        return _OldJudgement("no data", *(float("nan"),) * 3, 1 - 2 * alpha, margin, 0, *(float("nan"),) * 4)
    sd = se * math.sqrt(replicates) if math.isfinite(se) else float("nan")
    mde, needed, now = paired_power(replicates, sd, margin, alpha, power)
    outcome = classify(low, high, -margin, margin) if replicates >= 2 else "crosses"
    return _OldJudgement(outcome, mean, low, high, 1 - 2 * alpha, margin, replicates, se, mde, needed, now)


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
                   power: float = 0.8, max_replicates: int = 1000) -> '_OldJudgement':
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
        return _OldJudgement("crosses", float("nan"), float("nan"), float("nan"), level, margin, replicates,
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
    return _OldJudgement(outcome, ratio, ci_low, ci_high, level, margin, replicates, float("nan"), mde, needed, now)


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
