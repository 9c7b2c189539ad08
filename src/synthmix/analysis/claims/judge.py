"""Every verdict of a study, with error control across the three claims, and the table they are read in."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from synthmix.analysis.claims.consistency import claim_filter
from synthmix.analysis.claims.evidence import StudyEvidence
from synthmix.analysis.claims.size import claim_size
from synthmix.analysis.claims.variety import claim_variety

#: The paper's claims; each has one primary verdict (1, 2a, 3), every other verdict is secondary.
CLAIMS = 3


@dataclass(frozen=True)
class Levels:
    """The one-sided levels verdicts are decided at: alpha for secondary verdicts, alpha / family
    (Bonferroni) for the primary verdict of each claim, so at most alpha of studies get any false
    primary verdict; and the power that replicates-needed figures aim for."""

    alpha: float
    power: float
    family: int = CLAIMS

    @property
    def primary_alpha(self) -> float:
        """The level of each primary verdict."""
        return self.alpha / self.family

    def role_note(self, role: str) -> str:
        """What a role's level is, for the verdict's text."""
        if role == "primary" and self.family > 1:
            level = 1 - 2 * self.primary_alpha
            return f"; Bonferroni over the {self.family} claims' primary verdicts, so a {level:.1%} interval"
        return ""


def levels_of(settings) -> Levels:
    """The levels the params' claims section asks for (``multiplicity``: bonferroni or none)."""
    family = CLAIMS if getattr(settings, "multiplicity", "bonferroni") == "bonferroni" else 1
    return Levels(settings.alpha, settings.power, family)


def judge_claims(evidence: StudyEvidence, settings) -> list[dict]:
    """Every verdict of the study (1, 1-best, 1-control, 2a, 2b, 2c, 3), judged with ``settings`` (params.claims)."""
    levels = levels_of(settings)
    return [*claim_size(evidence, settings, levels), *claim_variety(evidence, settings, levels),
            *claim_filter(evidence, settings, levels)]


TABLE_COLUMNS = ["id", "part", "role", "direction", "verdict", "position", "estimate", "ci_low", "ci_high", "ci_level",
                 "margin", "power", "replicates_needed", "replicates"]


def verdict_table(records: list[dict]) -> pd.DataFrame:
    """One row per verdict: id, part, role, direction, verdict, position, estimate, interval, margin, power,
    replicates needed (None: no number of replicates decides) and replicates."""
    return pd.DataFrame(records).reindex(columns=TABLE_COLUMNS)
