"""Claim 2, "temperature 0.3 gives stable but smaller gains; 0.7 and above are more variable and
sometimes worse", on the experiment ``variety`` at exactly ``claims.variety_share``.

Each part is a claim about every temperature at or above ``claims.variable_from`` against
``claims.stable_temperature`` (intersection–union: supported only if it holds for each of them):

* 2a (primary): the SD across replicates of the gain over the human-only teacher is larger by at
  least ``claims.sd_ratio_margin`` (Pitman–Morgan, the gains being paired by replicate);
* 2b (secondary): the instability along the curve (mean |change of AUC| between successive
  checkpoints every temperature's curve has) is larger by at least ``claims.instability_ratio_margin``
  (the replicates' mean log ratio, as a ratio);
* 2c (secondary): the gain is larger than at the stable temperature by at least the margin
  ("smaller gains at 0.3").
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from synthmix.analysis.claims.evidence import StudyEvidence, at_share, points
from synthmix.analysis.claims.records import interval_words, record, share_words, untested, verdict_text
from synthmix.analysis.verdicts import as_ratio, judge_every, judge_paired, judge_sd_ratio_paired

CLAIM = "Temperature 0.3 gives stable but smaller gains; 0.7 and above are more variable and sometimes worse."


def claim_variety(evidence: StudyEvidence, settings, levels) -> list[dict]:
    """Claim 2's verdicts 2a, 2b, 2c (see the module docstring)."""
    runs = evidence.in_experiment("variety")
    runs = runs[runs["protocol"] == "incremental"]
    if "none" in set(runs["filter"]):
        runs = runs[runs["filter"] == "none"]
    share, stable = settings.variety_share, settings.stable_temperature
    if runs.empty:
        return [untested("2", CLAIM, "", "primary", "helps", settings.sd_ratio_margin,
                         "the study has no incremental runs in an experiment named 'variety'", "ratio")]
    temperatures = sorted(runs["temperature"].unique())
    high = [t for t in temperatures if t >= settings.variable_from - 1e-9]
    low = next((t for t in temperatures if abs(t - stable) < 1e-9), None)
    if low is None or not high:
        return [untested("2", CLAIM, "", "primary", "helps", settings.sd_ratio_margin,
                         f"needs t = {stable:g} and a temperature of {settings.variable_from:g} or more; the variety "
                         f"experiment ran {', '.join(f'{t:g}' for t in temperatures)}", "ratio")]
    at = {t: points(at_share(runs[runs["temperature"] == t], share)) for t in temperatures}
    common = sorted(set.intersection(*(set(a) for a in at.values())))
    if len(common) < 2:
        return [untested("2", CLAIM, "", "primary", "helps", settings.sd_ratio_margin,
                         f"{len(common)} replicate(s) ran every temperature at exactly {share_words(share)}", "ratio")]
    gains = {t: evidence.paired({r: (at[t][r], (at[t][r][0], 0)) for r in common}) for t in temperatures}
    worse = {f"t = {t:g}": (int((gains[t].differences < 0).sum()), len(common)) for t in temperatures}
    sds = ", ".join(f"t = {t:g}: {np.std(g.differences, ddof=1):.4f}" if len(g) > 1 else f"t = {t:g}: n/a"
                    for t, g in gains.items())
    means = ", ".join(f"t = {t:g}: {np.mean(g.differences):+.3f}" for t, g in gains.items())
    facts = (f"Over the {len(common)} replicates every temperature ran, the gain over the human-only teacher has SD "
             f"{sds} and mean {means}; runs worse than their human-only teacher: "
             + ", ".join(f"{name} {w} of {n}" for name, (w, n) in worse.items()) + ".")
    highs = ", ".join(f"{t:g}" for t in high)
    records = [_spread(gains, high, low, settings, levels, share, facts, highs, worse)]
    records.append(_instability(evidence, runs, temperatures, high, low, share, settings, levels, highs))
    records.append(_smaller_gains(evidence, at, common, high, low, share, settings, levels, highs))
    return records


def _spread(gains, high, low, settings, levels, share, facts, highs, worse) -> dict:
    margin = settings.sd_ratio_margin
    part = f"spread across replicates of the gain at {share_words(share)} synthetic, t in {{{highs}}} vs {low:g}"
    judges = {f"t = {t:g}": (lambda a, t=t: judge_sd_ratio_paired(gains[t].differences, gains[low].differences,
                                                                 "helps", margin, alpha=a, power=levels.power))
              for t in high}
    combined, each = judge_every(judges, "helps", margin, alpha=levels.primary_alpha)
    lead = (f"{facts} The smallest SD ratio of a temperature in {{{highs}}} to t = {low:g} (Pitman–Morgan per "
            f"temperature, paired by replicate; intersection–union over {len(each)}) is")
    extra = "Per temperature: " + "; ".join(f"{n} {interval_words(j)}" for n, j in each.items()) + "."
    estimand = (f"the smallest, over t in {{{highs}}}, of the ratio of the SD across replicates (resplits, seeds and "
                f"pools of this data set) of the gain over the human-only teacher at t to that at t = {low:g}")
    return record("2a", CLAIM, part, "primary", estimand, combined,
                  verdict_text(lead, combined, f"every temperature in {{{highs}}} is more variable than {low:g}",
                               "primary" + levels.role_note("primary"), extra),
                  worse_than_human={k: {"worse": w, "runs": n} for k, (w, n) in worse.items()})


def _curve_instability(evidence: StudyEvidence, runs: pd.DataFrame, temperatures, share: float):
    """Per temperature and replicate: mean |change of AUC| between successive checkpoints up to ``share``,
    on the numbers of added responses every temperature's curve has (so extra checkpoints of one
    curve do not make it look steadier)."""
    curves = {t: runs[runs["temperature"] == t] for t in temperatures}
    grids = []
    for curve in curves.values():
        stop = at_share(curve, share)
        grids.append(set(curve.loc[curve["n_added"] <= stop["n_added"].max(), "n_added"]) if len(stop) else set())
    grid = set.intersection(*grids) if grids else set()
    out = {}
    for temperature, curve in curves.items():
        values = {}
        for replicate, rows in curve[curve["n_added"].isin(grid)].groupby("replicate"):
            rows = rows.sort_values("n_added")
            if len(rows) >= 2:
                aucs = [evidence.auc((s, int(c))) for s, c in zip(rows["step"], rows["checkpoint"])]
                values[int(replicate)] = float(np.mean(np.abs(np.diff(aucs))))
        out[temperature] = values
    return out, sorted(grid)


def _instability(evidence, runs, temperatures, high, low, share, settings, levels, highs) -> dict:
    margin = settings.instability_ratio_margin
    part = f"instability along the curve up to {share_words(share)}, t in {{{highs}}} vs {low:g}"
    levels_by_t, grid = _curve_instability(evidence, runs, temperatures, share)
    if len(grid) < 3:
        return untested("2b", CLAIM, part, "secondary", "helps", margin,
                        f"the curves share {len(grid)} checkpoints up to {share_words(share)}; instability needs at "
                        "least 3 (a larger variety share or a smaller teacher.increment gives a longer curve)", "ratio")
    at = {t: points(at_share(runs[runs["temperature"] == t], share)) for t in temperatures}
    judges = {}
    for t in high:
        common = sorted(r for r in levels_by_t[t] if r in levels_by_t[low] and levels_by_t[t][r] > 0
                        and levels_by_t[low][r] > 0 and r in at[t] and r in at[low])
        logs = np.log([levels_by_t[t][r] / levels_by_t[low][r] for r in common])
        design = evidence.design([at[t][r] for r in common] + [at[low][r] for r in common],
                                 [(at[t][r], at[low][r]) for r in common])
        judges[f"t = {t:g}"] = (lambda a, logs=logs, design=design: as_ratio(judge_paired(
            logs, "helps", math.log(margin), alpha=a, power=levels.power, design=design), margin))
    combined, each = judge_every(judges, "helps", margin, alpha=levels.alpha)
    listed = ", ".join(f"t = {t:g}: {np.mean(list(v.values())):.4f}" for t, v in levels_by_t.items() if v)
    lead = (f"Mean |change of AUC| between successive checkpoints ({len(grid)} shared, up to {share_words(share)}): "
            f"{listed}. The smallest geometric-mean ratio of a temperature in {{{highs}}} to t = {low:g} (per replicate "
            "log ratios; intersection–union) is")
    extra = ("Per temperature: " + "; ".join(f"{n} {interval_words(j)}" for n, j in each.items())
             + ". Without test predictions for an instability the overlap correction assumes the design's largest "
             "overlap (conservative).")
    estimand = (f"the smallest, over t in {{{highs}}}, of the geometric-mean ratio of the instability of the curve "
                f"at t to that at t = {low:g}")
    return record("2b", CLAIM, part, "secondary", estimand, combined,
                  verdict_text(lead, combined, f"every temperature in {{{highs}}} moves more along its curve",
                               "secondary", extra))


def _smaller_gains(evidence, at, common, high, low, share, settings, levels, highs) -> dict:
    margin = settings.margin
    part = f"smaller gains at {low:g}: AUC at t in {{{highs}}} minus at {low:g}, {share_words(share)} synthetic"
    judges = {}
    for t in high:
        paired = evidence.paired({r: (at[t][r], at[low][r]) for r in common})
        judges[f"t = {t:g}"] = (lambda a, p=paired: p.judge("helps", margin, a, levels.power))
    combined, each = judge_every(judges, "helps", margin, alpha=levels.alpha)
    lead = (f"The smallest AUC advantage of a temperature in {{{highs}}} over t = {low:g} at {share_words(share)} "
            "(paired by replicate; intersection–union) is")
    extra = "Per temperature: " + "; ".join(f"{n} {interval_words(j)}" for n, j in each.items()) + "."
    estimand = (f"the smallest, over t in {{{highs}}}, of the expected test AUC at t minus that at t = {low:g}, "
                f"at {share_words(share)} synthetic")
    return record("2c", CLAIM, part, "secondary", estimand, combined,
                  verdict_text(lead, combined, f"gains at {low:g} are smaller than at every temperature in {{{highs}}}",
                               "secondary", extra))
