"""The paper's three claims, judged from a study's replicates against margins stated in the params.

Read top to bottom:

1. ``StudyEvidence`` reads the teachers' test predictions of a study and gives, per replicate,
   the AUC of any checkpoint on that replicate's test split and on resamples of it (the same
   resamples for every condition of a replicate, so differences are paired at both levels).
2. The claims, each a list of verdict records (``verdicts.Judgement`` plus plain words):

   * claim 1, "augmentation helps, best near 80% synthetic": on the experiment ``size`` only,
     each protocol on its own axis, at exactly ``claims.size_share``: AUC minus the human-only
     teacher of the same replicate; beside it the training-steps control (synthetic minus replay
     at the same number of added responses); where the optimum share lies, with an interval from
     resampling replicates;
   * claim 2, "0.3 stable, 0.7+ more variable": on the experiment ``variety`` at exactly
     ``claims.variety_share``: (a) the SD across replicates of the gain over human-only, t >= 0.7
     pooled against t = 0.3, as a ratio with an F interval; (b) the instability along one
     incremental curve (mean absolute change of AUC between successive checkpoints);
   * claim 3, "filtering does not help": on the experiment ``consistency`` at exactly
     ``claims.consistency_share``, filtered minus unfiltered at equal synthetic count and label balance.

3. ``methods_text`` and ``verdict_table``: what varies per replicate and each verdict in words.

Every number in the words is computed here; nothing is typed in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from synthmix.analysis.verdicts import (
    _OldJudgement as Judgement,
    PairedEffect,
    auc_on_resamples,
    judge_difference,
    judge_sd_ratio,
    test_resamples,
)
from synthmix.core import io

HELPS = {"above": "supported", "below": "contradicted", "within": "no meaningful difference",
         "crosses": "inconclusive", "no data": "not tested"}
DOES_NOT_HELP = {"above": "contradicted", "below": "supported", "within": "no meaningful difference",
                 "crosses": "inconclusive", "no data": "not tested"}
REQUIRED = ("experiments", "temperature", "filter", "protocol", "replicate", "checkpoint", "n_added", "target_share",
            "auc", "step")


# ============================================================================ 1. evidence
class StudyEvidence:
    """Per-replicate AUCs of a study's teacher checkpoints, on the full test split and on resamples."""

    def __init__(self, study_dir, summary: pd.DataFrame, resamples: int = 2000, seed: int = 0):
        missing = [c for c in REQUIRED if c not in summary.columns]
        if missing:
            raise ValueError(f"summary table lacks columns {missing}; rebuild it with results.summary_table")
        teachers = summary[summary["model"] == "teacher"] if "model" in summary.columns else summary
        self.runs = teachers.assign(experiments=teachers["experiments"].fillna("").astype(str)).reset_index(drop=True)
        self.study_dir = Path(study_dir)
        self.resamples, self.seed = resamples, seed
        self._predictions: dict[str, pd.DataFrame] = {}
        self._counts: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def in_experiment(self, name: str) -> pd.DataFrame:
        """The teacher checkpoints of experiment ``name``."""
        return self.runs[self.runs["experiments"].str.split(",").map(lambda names: name in names)]

    def _scores(self, step: str, checkpoint: int) -> pd.DataFrame:
        if step not in self._predictions:
            self._predictions[step] = io.read_table(self.study_dir / step / "test_predictions.parquet")
        frame = self._predictions[step]
        return frame[frame["checkpoint"] == checkpoint].sort_values("row")

    def aucs(self, replicate: int, points: list[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
        """``(full, resampled)``: AUC of each (step, checkpoint) on replicate ``replicate``'s test split,
        shape (k,), and on its test resamples, shape (k, resamples); the same resamples for every point."""
        frames = [self._scores(step, checkpoint) for step, checkpoint in points]
        rows = frames[0]["row"].to_numpy()
        for (step, _), frame in zip(points, frames):
            if not np.array_equal(frame["row"].to_numpy(), rows):
                raise ValueError(f"{step}: scored on other test responses than {points[0][0]} (replicate {replicate})")
        if replicate not in self._counts or not np.array_equal(self._counts[replicate][0], rows):
            self._counts[replicate] = (rows, test_resamples(len(rows), self.resamples, [self.seed, replicate]))
        counts = self._counts[replicate][1]
        labels = frames[0]["label"].to_numpy()
        full = np.array([_auc(labels, f["score"].to_numpy()) for f in frames])
        resampled = np.vstack([auc_on_resamples(labels, f["score"].to_numpy(), counts) for f in frames])
        return full, resampled

    def paired(self, pairs: dict[int, tuple[tuple[str, int], tuple[str, int]]]) -> PairedEffect:
        """Per replicate: AUC(first point) - AUC(second point), with its test-resampled draws."""
        estimates, draws = [], []
        for replicate, (a, b) in sorted(pairs.items()):
            full, resampled = self.aucs(replicate, [a, b])
            estimates.append(full[0] - full[1])
            draws.append(resampled[0] - resampled[1])
        return PairedEffect(np.array(estimates), np.array(draws) if draws else None)


def _auc(labels, scores) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores)) if 0 < np.sum(labels) < len(labels) else float("nan")


def _at(frame: pd.DataFrame, share: float) -> pd.DataFrame:
    """Rows evaluated at exactly ``share`` (incremental checkpoints and mixed runs record target_share)."""
    return frame[(frame["target_share"] - share).abs() < 1e-9]


def _points(frame: pd.DataFrame) -> dict[int, tuple[str, int]]:
    """replicate -> (step, checkpoint) of each row (one per replicate)."""
    return {int(r["replicate"]): (r["step"], int(r["checkpoint"])) for r in frame.to_dict(orient="records")}


def _baselines(runs: pd.DataFrame) -> dict[int, tuple[str, int]]:
    """replicate -> its human-only teacher: checkpoint 0 of an incremental or replay run (all share it)."""
    rows = runs[runs["protocol"].isin(["incremental", "replay"]) & (runs["checkpoint"] == 0)]
    rows = rows.sort_values(["replicate", "step"]).drop_duplicates("replicate")
    return _points(rows)


# ============================================================================ 2. the claims
def _record(claim_id: str, claim: str, part: str, judgement: Judgement, verdict: str, text: str,
            method: str, **extra) -> dict:
    return {"id": claim_id, "claim": claim, "part": part, "verdict": verdict, **judgement.as_dict(),
            "method": method, "text": text, **extra}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _f(value, digits=3, sign=True) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _interval_words(j: Judgement, unit: str = "AUC", sign: bool = True) -> str:
    return (f"{_f(j.estimate, sign=sign)}{' ' + unit if unit else ''} ({j.ci_level:.0%} CI {_f(j.ci_low, sign=sign)} to "
            f"{_f(j.ci_high, sign=sign)}) over {j.replicates} replicate{'s' if j.replicates != 1 else ''}")


def _power_words(j: Judgement, unit: str = "AUC", ratio: bool = False) -> str:
    if not (j.mde is not None and np.isfinite(j.mde)):
        return "With fewer than 2 replicates nothing can be detected."
    what = f"an SD ratio of {j.margin:g}" if ratio else f"a difference the size of the margin ({j.margin:g} {unit})"
    needed = "more than 1000" if not np.isfinite(j.replicates_needed) else f"{int(j.replicates_needed)}"
    mde = f"{j.mde:.2f}" if ratio else f"{j.mde:.3f} {unit}"
    return (f"With {j.replicates} replicates the smallest {'SD ratio' if ratio else 'difference'} detectable with "
            f"80% power is {mde}; {what} would need {needed} replicates (power now {j.power_at_margin:.0%}).")


def _margin_words(j: Judgement, unit: str = "AUC", ratio: bool = False) -> str:
    band = f"{1 / j.margin:.2f} to {j.margin:g}" if ratio else f"±{j.margin:g} {unit}"
    return {"above": f"the interval lies entirely above the margin ({band})",
            "below": f"the interval lies entirely below the margin ({band})",
            "within": f"the interval lies entirely inside the margin ({band}): any difference is smaller than "
                      "the smallest effect of interest (equivalence, two one-sided tests)",
            "crosses": f"the interval crosses the margin ({band}), so the data cannot tell a meaningful "
                       "difference from none"}.get(j.outcome, "there is nothing to judge")


def claim_size(evidence: StudyEvidence, settings, alpha: float, power: float) -> list[dict]:
    """Claim 1 on experiment 'size', per protocol (incremental, mixed) and the replay control."""
    claim = "Augmenting human data with synthetic responses helps (best near 80% synthetic / 20% human)."
    runs = evidence.in_experiment("size")
    share, margin = settings.size_share, settings.margin
    if runs.empty:
        return [_not_tested("1", claim, "the study has no experiment named 'size'")]
    baselines = _baselines(evidence.runs)
    records = []
    synthetic = runs[runs["protocol"].isin(["incremental", "mixed"])]
    for (protocol, temperature, method), group in synthetic.groupby(["protocol", "temperature", "filter"]):
        part = f"{protocol} protocol, t = {temperature:g}, filter {method}, at {share:.0%} synthetic"
        at = _points(_at(group, share))
        pairs = {r: (at[r], baselines[r]) for r in at if r in baselines}
        if not pairs:
            records.append(_not_tested("1", claim, f"no {protocol} run at exactly {share:.0%} with a human-only "
                                                   "baseline in the same replicate", part))
            continue
        judgement = judge_difference(evidence.paired(pairs), margin, alpha, power, seed=1)
        verdict = HELPS[judgement.outcome]
        optimum = optimum_share(evidence, group, baselines) if protocol == "incremental" else ""
        text = (f"At exactly {share:.0%} synthetic ({protocol} protocol, t = {temperature:g}), the teacher's test AUC "
                f"minus the human-only teacher of the same replicate is {_interval_words(judgement)}. "
                f"{_cap(_margin_words(judgement))}. {_power_words(judgement)} {optimum}Verdict: {verdict}.")
        records.append(_record("1", claim, part, judgement, verdict, text, METHOD_PAIRED))
    replay = runs[runs["protocol"] == "replay"]
    incremental = runs[runs["protocol"] == "incremental"]
    if not replay.empty and not incremental.empty:
        replay_at = _points(_at(replay, share))
        for (temperature, method), group in incremental.groupby(["temperature", "filter"]):
            at = _points(_at(group, share))
            pairs = {r: (at[r], replay_at[r]) for r in at if r in replay_at}
            part = f"control: synthetic minus replay, t = {temperature:g}, at {share:.0%} synthetic"
            if not pairs:
                records.append(_not_tested("1-control", claim, "no replay run at the same share", part))
                continue
            judgement = judge_difference(evidence.paired(pairs), margin, alpha, power, seed=2)
            more_training = judge_difference(evidence.paired({r: (replay_at[r], baselines[r]) for r in pairs
                                                              if r in baselines}), margin, alpha, power, seed=3)
            verdict = HELPS[judgement.outcome]
            text = (f"Training on the same number of added responses drawn from the human training data instead "
                    f"(the replay control) changes AUC by {_interval_words(more_training)} against the human-only "
                    f"teacher: that much is more training, not synthetic data. Synthetic minus replay at "
                    f"{share:.0%} is {_interval_words(judgement)}. {_cap(_margin_words(judgement))}. "
                    f"{_power_words(judgement)} Verdict on the synthetic responses themselves: {verdict}.")
            records.append(_record("1-control", claim, part, judgement, verdict, text, METHOD_PAIRED,
                                   replay_minus_human=more_training.estimate))
    return records


def optimum_share(evidence: StudyEvidence, curve: pd.DataFrame, baselines: dict, resamples: int = 2000) -> str:
    """Where the mean AUC over replicates peaks among the shares asked for, with an interval from
    resampling replicates (not the best test AUC of one run)."""
    asked = curve.dropna(subset=["target_share"])
    table = asked.pivot_table(index="replicate", columns="target_share", values="auc", aggfunc="first").dropna()
    if table.shape[1] < 2 or table.shape[0] < 2:
        return ""
    shares = table.columns.to_numpy(dtype=float)
    values = table.to_numpy()
    rng = np.random.default_rng(4)
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    peaks = shares[np.argmax(values[picks].mean(axis=1), axis=1)]
    low, high = np.quantile(peaks, [0.05, 0.95])
    best = shares[np.argmax(values.mean(axis=0))]
    return (f"Among the shares run ({', '.join(f'{s:.0%}' for s in shares)}), mean AUC peaks at {best:.0%} "
            f"(90% interval from resampling replicates: {low:.0%} to {high:.0%}). ")


def claim_variety(evidence: StudyEvidence, settings, alpha: float, power: float) -> list[dict]:
    """Claim 2 on experiment 'variety': (a) spread across replicates, (b) instability along a curve."""
    claim = "Temperature 0.3 gives stable but smaller gains; 0.7 and above are more variable and sometimes worse."
    runs = evidence.in_experiment("variety")
    runs = runs[runs["protocol"] == "incremental"]
    if "none" in set(runs["filter"]):
        runs = runs[runs["filter"] == "none"]
    if runs.empty:
        return [_not_tested("2", claim, "the study has no incremental runs in an experiment named 'variety'")]
    share, stable = settings.variety_share, settings.stable_temperature
    temperatures = sorted(runs["temperature"].unique())
    high = [t for t in temperatures if t >= settings.variable_from - 1e-9]
    if not any(abs(t - stable) < 1e-9 for t in temperatures) or not high:
        return [_not_tested("2", claim, f"needs t = {stable:g} and a temperature of {settings.variable_from:g} or "
                                        f"more; the variety experiment ran {', '.join(f'{t:g}' for t in temperatures)}")]
    baselines = _baselines(evidence.runs)
    gains = {}
    for temperature in temperatures:
        at = _points(_at(runs[runs["temperature"] == temperature], share))
        effect = evidence.paired({r: (at[r], baselines[r]) for r in at if r in baselines})
        gains[temperature] = effect.estimates
    low_gains = gains[min(temperatures, key=lambda t: abs(t - stable))]
    spread = judge_sd_ratio([gains[t] for t in high], low_gains, settings.sd_ratio_margin, alpha, power)
    verdict = HELPS[spread.outcome]
    sds = ", ".join(f"t = {t:g}: {np.std(g, ddof=1):.4f}" if len(g) > 1 else f"t = {t:g}: n/a" for t, g in gains.items())
    means = ", ".join(f"t = {t:g}: {np.mean(g):+.3f}" for t, g in gains.items())
    worse = sum(int((gains[t] < 0).sum()) for t in high)
    test_words = _brown_forsythe_words(gains, high, low_gains, spread, alpha, settings.sd_ratio_margin, power)
    text_a = (f"At exactly {share:.0%} synthetic, the SD across replicates of the gain over the human-only teacher "
              f"is {sds}; mean gains {means}; {worse} of {sum(len(gains[t]) for t in high)} runs at t >= "
              f"{settings.variable_from:g} were worse than their human-only teacher. The SD ratio (t >= "
              f"{settings.variable_from:g} pooled, against t = {stable:g}) is {_interval_words(spread, '', sign=False)}. "
              f"{_cap(_margin_words(spread, ratio=True))}. {_power_words(spread, ratio=True)} {test_words}"
              f"Verdict: {verdict}.")
    records = [_record("2a", claim, f"spread across replicates at {share:.0%} synthetic", spread, verdict, text_a,
                       METHOD_SD_RATIO)]
    instability = _instability(evidence, runs, temperatures, share)
    if instability is not None:
        stable_key = min(temperatures, key=lambda t: abs(t - stable))
        full = np.mean([instability[t][0] for t in high], axis=0) - instability[stable_key][0]
        draws = np.mean([instability[t][1] for t in high], axis=0) - instability[stable_key][1]
        judgement = judge_difference(PairedEffect(full, draws), settings.margin, alpha, power, seed=5)
        verdict = HELPS[judgement.outcome]
        levels = ", ".join(f"t = {t:g}: {np.mean(instability[t][0]):.4f}" for t in temperatures)
        text_b = (f"Along each incremental curve up to {share:.0%} synthetic, the mean absolute change of AUC between "
                  f"successive checkpoints (those every temperature's curve has) is {levels} (mean over replicates). t >= {settings.variable_from:g} minus "
                  f"t = {stable:g}: {_interval_words(judgement)}. {_cap(_margin_words(judgement))}. "
                  f"{_power_words(judgement)} Verdict: {verdict}.")
        records.append(_record("2b", claim, f"instability along the curve up to {share:.0%}", judgement, verdict,
                               text_b, METHOD_PAIRED))
    return records


def _instability(evidence: StudyEvidence, runs: pd.DataFrame, temperatures, share: float):
    """Per temperature: (per-replicate mean |ΔAUC| between successive checkpoints up to ``share``, its draws).

    Only the checkpoints every temperature's curve has (the same numbers of responses added) count,
    so a curve with extra checkpoints (another experiment's shares) is not made to look steadier
    by its smaller steps.
    """
    curves = {t: runs[runs["temperature"] == t] for t in temperatures}
    stops = {t: _at(curve, share) for t, curve in curves.items()}
    grids = [set(curve.loc[curve["n_added"] <= stop["n_added"].max(), "n_added"]) if len(stop) else set()
             for curve, stop in ((curves[t], stops[t]) for t in temperatures)]
    grid = set.intersection(*grids) if grids else set()
    out, common = {}, None
    for temperature in temperatures:
        curve = curves[temperature][curves[temperature]["n_added"].isin(grid)]
        values, draws, replicates = [], [], []
        for replicate, points in curve.groupby("replicate"):
            points = points.sort_values("n_added")
            if len(points) < 2:
                continue
            full, resampled = evidence.aucs(int(replicate), [(s, int(c)) for s, c in
                                                             zip(points["step"], points["checkpoint"])])
            values.append(np.mean(np.abs(np.diff(full))))
            draws.append(np.mean(np.abs(np.diff(resampled, axis=0)), axis=0))
            replicates.append(int(replicate))
        if not values:
            return None
        out[temperature] = (replicates, np.array(values), np.array(draws))
        common = set(replicates) if common is None else common & set(replicates)
    if not common:
        return None
    keep = sorted(common)
    return {t: (v[np.isin(r, keep)], d[np.isin(r, keep)]) for t, (r, v, d) in out.items()}


def _brown_forsythe_words(gains, high, low_gains, spread: Judgement, alpha, margin, power) -> str:
    power_now = spread.power_at_margin
    if not (power_now is not None and np.isfinite(power_now)):
        return ""
    if power_now < power:
        needed = "more than 1000" if not np.isfinite(spread.replicates_needed) else int(spread.replicates_needed)
        return (f"A test of equal spread (Brown–Forsythe) is not shown: with {spread.replicates} replicates per "
                f"temperature it would detect an SD ratio of {margin:g} with only {power_now:.0%} power; it would "
                f"take {needed} replicates per temperature. ")
    result = sps.levene(low_gains, *[gains[t] for t in high], center="median")
    return f"Brown–Forsythe test of equal spread: W = {result.statistic:.2f}, p = {result.pvalue:.3f}. "


def claim_filter(evidence: StudyEvidence, settings, alpha: float, power: float) -> list[dict]:
    """Claim 3 on experiment 'consistency': filtered minus unfiltered at equal count and label balance."""
    claim = "Filtering out inconsistent synthetic responses does not help."
    runs = evidence.in_experiment("consistency")
    runs = runs[runs["protocol"] == "incremental"]
    share = settings.consistency_share
    methods = sorted(set(runs["filter"]) - {"none"})
    if runs.empty or "none" not in set(runs["filter"]) or not methods:
        return [_not_tested("3", claim, "needs filtered and unfiltered ('none') incremental runs in an experiment "
                                        "named 'consistency'")]
    records = []
    for temperature in sorted(runs["temperature"].unique()):
        at_t = _at(runs[runs["temperature"] == temperature], share)
        unfiltered = at_t[at_t["filter"] == "none"]
        for method in methods:
            filtered = at_t[at_t["filter"] == method]
            a, b = _points(filtered), _points(unfiltered)
            pairs = {r: (a[r], b[r]) for r in a if r in b}
            part = f"{method} minus none, t = {temperature:g}, at {share:.0%} synthetic"
            if not pairs:
                records.append(_not_tested("3", claim, "no filtered and unfiltered run at the same share", part))
                continue
            counts = _equal_draws(filtered, unfiltered)
            judgement = judge_difference(evidence.paired(pairs), settings.margin, alpha, power, seed=6)
            verdict = DOES_NOT_HELP[judgement.outcome]
            meaning = {"no meaningful difference": " (which is what the paper claims)",
                       "supported": " (filtering hurts by more than the margin, so it does not help)",
                       "contradicted": " (filtering helps by more than the margin)"}.get(verdict, "")
            text = (f"At exactly {share:.0%} synthetic ({counts}), the teacher trained on the {method}-filtered pool "
                    f"minus the one trained on the unfiltered pool is {_interval_words(judgement)}. "
                    f"{_cap(_margin_words(judgement))}. {_power_words(judgement)} Verdict: {verdict}{meaning}.")
            records.append(_record("3", claim, part, judgement, verdict, text, METHOD_PAIRED))
    return records


def _equal_draws(filtered: pd.DataFrame, unfiltered: pd.DataFrame) -> str:
    """Words on the synthetic count and positive rate of the two arms (equal by construction; checked)."""
    columns = [c for c in ("n_added", "positive_rate") if c in filtered.columns]
    merged = filtered[["replicate", *columns]].merge(unfiltered[["replicate", *columns]], on="replicate",
                                                     suffixes=("_f", "_u"))
    same = all(np.allclose(merged[f"{c}_f"], merged[f"{c}_u"]) for c in columns)
    n = int(merged["n_added_f"].iloc[0]) if "n_added" in columns and len(merged) else 0
    rate = merged["positive_rate_f"].iloc[0] if "positive_rate" in columns and len(merged) else float("nan")
    return (f"both arms {n} synthetic responses, positive rate seen {rate:.0%}" if same else
            "WARNING: the arms differ in synthetic count or label balance")


def _not_tested(claim_id: str, claim: str, why: str, part: str = "") -> dict:
    nothing = Judgement("no data", *(float("nan"),) * 3, float("nan"), float("nan"), 0, *(float("nan"),) * 4)
    return _record(claim_id, claim, part, nothing, "not tested", f"Not tested: {why}.", "")


METHOD_PAIRED = ("paired by replicate; mean difference with a 1 - 2 alpha interval whose standard error comes from a "
                 "two-level bootstrap (replicates, then test responses within each), Student t on R - 1 df")
METHOD_SD_RATIO = ("ratio of SDs across replicates of the gain over human-only (t >= threshold pooled, against the "
                   "stable temperature); F interval at 1 - 2 alpha")


def judge_claims(evidence: StudyEvidence, settings) -> list[dict]:
    """Every verdict of the study (claims 1, 1-control, 2a, 2b, 3), judged with ``settings`` (params.claims)."""
    alpha, power = settings.alpha, settings.power
    return [*claim_size(evidence, settings, alpha, power), *claim_variety(evidence, settings, alpha, power),
            *claim_filter(evidence, settings, alpha, power)]


# ======================================================================= 3. in words
def verdict_table(records: list[dict]) -> pd.DataFrame:
    """One row per verdict: claim id, part, verdict, estimate, CI, margin, MDE, replicates and replicates needed."""
    columns = ["id", "part", "verdict", "estimate", "ci_low", "ci_high", "ci_level", "margin", "mde", "replicates",
               "replicates_needed", "power_at_margin"]
    return pd.DataFrame(records).reindex(columns=columns)


def methods_text(params, sizes: list[dict]) -> str:
    """What varies per replicate, and how the verdicts are decided, in plain words (Markdown)."""
    claims, generation = params.claims, params.generation
    n = params.replicates
    human = ", ".join(sorted({str(s["n_human"]) for s in sizes})) if sizes else "?"
    pool = ("its own synthetic pool (generation seed + 100000 x r), so generation variance is in the estimate"
            if generation.per_replicate else
            "its own draw, without replacement, from the temperature's shared pool (pools are sized "
            f"{generation.pool_margin:g} times the largest draw, so replicates use different responses); generation "
            "variance is not in the estimate (set generation.per_replicate for that)")
    return "\n".join([
        f"**Replicates.** {n} replicates. Replicate r has its own stratified human split (seed derived from "
        f"split_seed {params.dataset.split_seed} and r; identical responses kept in one split), its own human-only "
        f"teacher, its own training seed (head initialisation, data order, dropout), {pool}, and, for the "
        f"teacher-agreement filter, its own grader trained on its own human training data only. Human training "
        f"responses per replicate: {human}.",
        f"**Shares.** Every share is reached exactly: the incremental curve has a checkpoint at exactly each share "
        f"asked for, and synthetic responses are drawn at the {generation.label_balance.replace('_', ' ')} label "
        "balance; a pool that cannot supply a share stops the study instead of capping it.",
        f"**Control.** The replay arm continues training for the same number of added responses drawn afresh from "
        f"the human training data, so a gain of synthetic over replay is not just more training.",
        f"**Decisions.** Conditions are compared within a replicate (paired). Each claim is decided against a "
        f"smallest effect of interest stated before the run: {claims.margin:g} AUC (claims 1, 2b, 3) and an SD ratio "
        f"of {claims.sd_ratio_margin:g} (claim 2a), at alpha = {claims.alpha:g}: the {1 - 2 * claims.alpha:.0%} "
        "interval entirely beyond the margin supports (or contradicts) a claim, entirely inside it means no "
        "meaningful difference (equivalence by two one-sided tests), and crossing it is inconclusive. A "
        "non-significant test is never a verdict by itself.",
        f"**Intervals.** A difference's interval uses a standard error from a two-level bootstrap "
        f"({claims.bootstrap_resamples} resamples: replicates with replacement, then the test responses within each "
        f"replicate), with Student's t on R - 1 degrees of freedom; it carries the variation between replicates and "
        "the sampling of test responses. The SD ratio uses the F interval. Minimum detectable effects and the "
        f"replicates needed are for {claims.power:.0%} power (statsmodels' power solver for the paired t; the F "
        "distribution for the SD ratio).",
    ])
