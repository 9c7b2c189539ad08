"""Claim 1, "augmentation helps, best near 80% synthetic", on the experiment ``size``.

* 1 (primary): at exactly ``claims.size_share`` on the incremental curve, AUC minus the human-only
  teacher of the same replicate (its own checkpoint 0), direction "helps";
* 1 (secondary): the same for the mixture trained from scratch;
* 1-control (secondary): synthetic minus the replay control at the same number of added responses;
* 1-best (secondary): "best near 80%" as an intersection–union claim: no other share of the curve
  (the human-only teacher included) beats the claim's share by the margin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthmix.analysis.claims.evidence import StudyEvidence, at_share, baselines, points
from synthmix.analysis.claims.records import interval_words, record, share_words, untested, verdict_text
from synthmix.analysis.verdicts import judge_every, judge_paired

CLAIM = "Augmenting human data with synthetic responses helps (best near 80% synthetic / 20% human)."


def _groups(runs: pd.DataFrame, protocol: str):
    """(temperature, filter, rows) per arm of ``protocol``, unfiltered first."""
    chosen = runs[runs["protocol"] == protocol]
    keys = sorted(chosen.groupby(["temperature", "filter"]).groups, key=lambda k: (k[1] != "none", k[0], k[1]))
    return [(t, f, chosen[(chosen["temperature"] == t) & (chosen["filter"] == f)]) for t, f in keys]


def _human_size(runs: pd.DataFrame) -> str:
    sizes = sorted({int(n) for n in runs.get("n_human", pd.Series(dtype=float)).dropna()})
    return " or ".join(str(n) for n in sizes) if sizes else "this many"


def claim_size(evidence: StudyEvidence, settings, levels) -> list[dict]:
    """Claim 1's verdicts (see the module docstring); ``levels`` gives primary and secondary alpha and power."""
    runs = evidence.in_experiment("size")
    share, margin = settings.size_share, settings.margin
    if runs.empty:
        return [untested("1", CLAIM, "", "primary", "helps", margin, "the study has no experiment named 'size'")]
    n_human = _human_size(runs)
    records, primary_done = [], False
    for protocol in ("incremental", "mixed"):
        for temperature, method, group in _groups(runs, protocol):
            part = f"{protocol} protocol, t = {temperature:g}, filter {method}, at {share_words(share)} synthetic"
            role = "secondary" if primary_done or protocol != "incremental" else "primary"
            at = points(at_share(group, share))
            human = ({r: (step, 0) for r, (step, _) in at.items()} if protocol == "incremental"
                     else baselines(evidence.runs, runs))
            pairs = {r: (at[r], human[r]) for r in at if r in human}
            if not pairs:
                records.append(untested("1", CLAIM, part, role, "helps", margin, f"no {protocol} run at exactly "
                                        f"{share_words(share)} with a human-only teacher in the same replicate"))
                continue
            paired = evidence.paired(pairs)
            judgement = paired.judge("helps", margin, levels.primary_alpha if role == "primary" else levels.alpha,
                                     levels.power)
            estimand = (f"the expected test AUC of a teacher trained on {n_human} human responses from this data set's "
                        f"population plus {share_words(share)} synthetic ({protocol} protocol, t = {temperature:g}), "
                        "minus that of the same teacher without synthetic responses")
            lead = (f"At exactly {share_words(share)} synthetic ({protocol} protocol, t = {temperature:g}), the "
                    "teacher's test AUC minus that of the human-only teacher of the same replicate is")
            records.append(record("1", CLAIM, part, role, estimand, judgement,
                                  verdict_text(lead, judgement, "synthetic responses help", role + levels.role_note(role))))
            if role == "primary":
                primary_done = True
                records.append(_best_share(evidence, group, share, margin, levels, n_human))
    records.extend(_replay_control(evidence, runs, share, margin, levels))
    return records


def _replay_control(evidence: StudyEvidence, runs: pd.DataFrame, share: float, margin: float, levels) -> list[dict]:
    replay = runs[runs["protocol"] == "replay"]
    if replay.empty:
        return []
    replay_at = points(at_share(replay, share))
    records = []
    for temperature, method, group in _groups(runs, "incremental"):
        at = points(at_share(group, share))
        pairs = {r: (at[r], replay_at[r]) for r in at if r in replay_at}
        part = f"control: synthetic minus replay, t = {temperature:g}, at {share_words(share)} synthetic"
        if not pairs:
            records.append(untested("1-control", CLAIM, part, "secondary", "helps", margin,
                                    "no replay run at the same share"))
            continue
        paired = evidence.paired(pairs)
        judgement = paired.judge("helps", margin, levels.alpha, levels.power)
        more = evidence.paired({r: (replay_at[r], (replay_at[r][0], 0)) for r in pairs})
        training = judge_paired(more.differences, "helps", margin, alpha=levels.alpha, design=more.design,
                                noise=more.noise)
        lead = (f"Synthetic minus replay (the same number of added responses drawn afresh from the human training "
                f"data) at {share_words(share)} is")
        extra = (f"The replay control itself changes AUC by {interval_words(training)} against the human-only teacher: "
                 "that much is more training, not synthetic data.")
        estimand = (f"the expected test AUC of a teacher given {share_words(share)} synthetic responses minus that of "
                    "one given as many human training responses again (replay), same human data")
        records.append(record("1-control", CLAIM, part, "secondary", estimand, judgement,
                              verdict_text(lead, judgement, "synthetic responses help beyond more training",
                                           "secondary", extra),
                              replay_minus_human=training.estimate, replay_minus_human_ci=[training.ci_low,
                                                                                          training.ci_high]))
    return records


def _best_share(evidence: StudyEvidence, curve: pd.DataFrame, share: float, margin: float, levels, n_human) -> dict:
    """1-best: no other share of the curve (human-only included) beats ``share`` by the margin (intersection–union)."""
    part = f"best near {share_words(share)}: no other share of the incremental curve beats it by the margin"
    asked = curve.dropna(subset=["target_share"])
    others = sorted(s for s in asked["target_share"].unique() if abs(s - share) > 1e-9)
    target = points(at_share(curve, share))
    judges, means = {}, {}
    for other in others:
        there = points(at_share(curve, other))
        pairs = {r: (there[r], target[r]) for r in there if r in target}
        if len(pairs) < 2:
            continue
        paired = evidence.paired(pairs)
        means[other] = float(np.mean(paired.differences))
        judges[f"{share_words(other)} minus {share_words(share)}"] = (
            lambda a, p=paired: p.judge("does_not_help", margin, a, levels.power))
    if not judges:
        return untested("1-best", CLAIM, part, "secondary", "does_not_help", margin,
                        "the curve has no other share with the claim's share in the same replicates")
    combined, each = judge_every(judges, "does_not_help", margin, alpha=levels.alpha)
    worst = max(each, key=lambda name: each[name].estimate)
    mean_auc = asked.groupby("target_share")["auc"].mean()
    extra = ("Mean AUC over replicates by share: " + ", ".join(f"{share_words(s)} {v:.3f}" for s, v in mean_auc.items())
             + f". Each other share minus {share_words(share)}: "
             + "; ".join(f"{name} {interval_words(j)}" for name, j in each.items()) + ".")
    lead = (f"The largest advantage of another share over {share_words(share)} ({worst}; the bound that supports the "
            f"claim at alpha per share, the other Bonferroni over {len(each)}) is")
    estimand = (f"the largest expected AUC advantage over {share_words(share)} of any other share of the curve "
                f"({', '.join(share_words(s) for s in others)}), {n_human} human responses")
    return record("1-best", CLAIM, part, "secondary", estimand, combined,
                  verdict_text(lead, combined, f"no other share beats {share_words(share)} by the margin", "secondary",
                               extra))
