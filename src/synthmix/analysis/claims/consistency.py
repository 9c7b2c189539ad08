"""Claim 3, "filtering out inconsistent synthetic responses does not help", on the experiment ``consistency``.

At exactly ``claims.consistency_share``, the teacher trained on the filtered pool minus the one
trained on the unfiltered pool of the same replicate, at equal synthetic count and label balance
(checked and stated), direction "does_not_help": supported when a gain of the margin from
filtering is ruled out. The first filter method at the first temperature is the primary verdict.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthmix.analysis.claims.evidence import StudyEvidence, at_share, points
from synthmix.analysis.claims.records import record, share_words, untested, verdict_text

CLAIM = "Filtering out inconsistent synthetic responses does not help."


def claim_filter(evidence: StudyEvidence, settings, levels) -> list[dict]:
    """Claim 3's verdicts: one per filter method and temperature of the consistency experiment."""
    runs = evidence.in_experiment("consistency")
    runs = runs[runs["protocol"] == "incremental"]
    share, margin = settings.consistency_share, settings.margin
    methods = sorted(set(runs["filter"]) - {"none"})
    if runs.empty or "none" not in set(runs["filter"]) or not methods:
        return [untested("3", CLAIM, "", "primary", "does_not_help", margin, "needs filtered and unfiltered ('none') "
                         "incremental runs in an experiment named 'consistency'")]
    records = []
    for temperature in sorted(runs["temperature"].unique()):
        at_t = at_share(runs[runs["temperature"] == temperature], share)
        unfiltered = at_t[at_t["filter"] == "none"]
        for method in methods:
            role = "primary" if not records else "secondary"
            filtered = at_t[at_t["filter"] == method]
            a, b = points(filtered), points(unfiltered)
            pairs = {r: (a[r], b[r]) for r in a if r in b}
            part = f"{method} minus none, t = {temperature:g}, at {share_words(share)} synthetic"
            if not pairs:
                records.append(untested("3", CLAIM, part, role, "does_not_help", margin,
                                        "no filtered and unfiltered run at the same share"))
                continue
            paired = evidence.paired(pairs)
            judgement = paired.judge("does_not_help", margin, levels.primary_alpha if role == "primary" else levels.alpha,
                                     levels.power)
            lead = (f"At exactly {share_words(share)} synthetic ({_equal_draws(filtered, unfiltered)}), the teacher "
                    f"trained on the {method}-filtered pool minus the one trained on the unfiltered pool is")
            estimand = (f"the expected test AUC of a teacher given {share_words(share)} synthetic responses from the "
                        f"{method}-filtered pool minus that of one given as many from the unfiltered pool "
                        f"(t = {temperature:g}, equal count and label balance)")
            records.append(record("3", CLAIM, part, role, estimand, judgement,
                                  verdict_text(lead, judgement, "filtering does not help by the margin",
                                               role + levels.role_note(role))))
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
