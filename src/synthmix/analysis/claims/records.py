"""A verdict record (one row of claims.json) and the words it is read in, written from its own values.

Every sentence of a verdict's text is built here from the judgement's numbers (estimate, interval,
margin, verdict, power, what would decide), so the prose cannot say more than the record holds.
"""

from __future__ import annotations

import math

import numpy as np

from synthmix.analysis.verdicts import Judgement, not_tested

#: The keys of every verdict in claims.json, in order (the index page and the tests read these).
RECORD_KEYS = ("id", "claim", "part", "role", "direction", "estimand", "estimate", "ci_low", "ci_high", "ci_level",
               "interval_for", "margin", "position", "verdict", "power", "replicates_needed", "what_would_decide",
               "text", "method", "replicates", "scale", "se", "df")


def record(claim_id: str, claim: str, part: str, role: str, estimand: str, judgement: Judgement, text: str,
           **extra) -> dict:
    """One verdict as a claims.json entry (see ``RECORD_KEYS``); ``extra`` keys are appended."""
    values = judgement.as_dict()
    level = values.get("ci_level")
    interval_for = f"{level:.1%} interval for {estimand}" if level else ""
    entry = {"id": claim_id, "claim": claim, "part": part, "role": role, "direction": judgement.direction,
             "estimand": estimand, "interval_for": interval_for, "text": text}
    entry.update({k: values[k] for k in ("estimate", "ci_low", "ci_high", "ci_level", "margin", "position", "verdict",
                                         "power", "replicates_needed", "what_would_decide", "method", "replicates",
                                         "scale", "se", "df")})
    return {**{k: entry[k] for k in RECORD_KEYS}, **extra}


def untested(claim_id: str, claim: str, part: str, role: str, direction: str, margin: float, why: str,
             scale: str = "difference") -> dict:
    """A record for a claim (or part) the study cannot test, saying why."""
    judgement = not_tested(direction, margin, why, scale)
    return record(claim_id, claim, part, role, "", judgement, f"Not tested: {why}.")


# ------------------------------------------------------------------------------ words
def number(value, ratio: bool = False, digits: int = 3) -> str:
    """A difference with its sign (+0.012), or a ratio (1.52); n/a when missing."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.2f}" if ratio else f"{value:+.{digits}f}"


def interval_words(j: Judgement) -> str:
    """"+0.012 AUC (96.7% interval -0.010 to +0.034; 5 replicates)"."""
    ratio = j.scale == "ratio"
    unit = "" if ratio else " AUC"
    level = f"{j.ci_level:.1%}".replace(".0%", "%") if np.isfinite(j.ci_level) else "?"
    return (f"{number(j.estimate, ratio)}{unit} ({level} interval {number(j.ci_low, ratio)} to "
            f"{number(j.ci_high, ratio)}; {j.replicates} replicate{'s' if j.replicates != 1 else ''})")


def rule_words(j: Judgement, what: str) -> str:
    """The one-sided rule this claim is decided by, with its margin."""
    ratio = j.scale == "ratio"
    m = f"{j.margin:g}" if ratio else f"+{j.margin:g}"
    if j.direction == "helps":
        return (f"The claim is that {what} by at least the margin ({m}{'' if ratio else ' AUC'}): supported when the "
                f"lower bound exceeds {m}, contradicted when the upper bound is below {m}.")
    return (f"The claim is that {what}: supported when the upper bound is below {m}{'' if ratio else ' AUC'} "
            f"(an advantage of the margin is ruled out), contradicted when the lower bound exceeds {m}.")


def bound_words(j: Judgement) -> str:
    """Which bound decided (or that the interval contains the margin)."""
    ratio = j.scale == "ratio"
    m = f"{j.margin:g}" if ratio else f"+{j.margin:g}"
    low, high = number(j.ci_low, ratio), number(j.ci_high, ratio)
    if not (np.isfinite(j.ci_low) and np.isfinite(j.ci_high)):
        return "There is no interval to decide with."
    if j.ci_low > j.margin:
        return f"The lower bound ({low}) exceeds {m}."
    if j.ci_high < j.margin:
        return f"The upper bound ({high}) is below {m}: an effect of the margin is ruled out."
    return f"The interval ({low} to {high}) contains {m}."


def position_words(j: Judgement) -> str:
    """Where the interval lies against the band of no meaningful effect (descriptive)."""
    if j.scale == "ratio":
        band = f"{1 / j.margin:.2f} to {j.margin:g}"
    else:
        band = f"-{j.margin:g} to +{j.margin:g}"
    return {"beyond": f"It lies entirely outside the band {band}.",
            "within": f"It lies entirely inside the band {band}.",
            "crosses": f"It crosses an edge of the band {band}."}.get(j.position, "")


def verdict_text(lead: str, j: Judgement, what: str, role: str, extra: str = "") -> str:
    """The full text of a verdict: what was measured, the rule, the deciding bound, power, the verdict."""
    if j.verdict == "not tested":
        return f"Not tested: {j.what_would_decide}."
    parts = [f"{lead} {interval_words(j)}.", rule_words(j, what), bound_words(j), position_words(j)]
    if extra:
        parts.append(extra.strip())
    parts.append(j.what_would_decide)
    parts.append(f"Verdict ({role}): {j.verdict}.")
    return " ".join(p for p in parts if p)


def count_words(counts: dict, what: str) -> str:
    """"t = 0.3: 4 of 5, t = 0.7: 3 of 5 runs were worse than their human-only teacher"."""
    listed = ", ".join(f"{name}: {worse} of {total}" for name, (worse, total) in counts.items())
    return f"{listed} runs {what}"


def share_words(share: float) -> str:
    """A share as a percentage (80%)."""
    return f"{share:.0%}" if math.isfinite(share) else "?"
