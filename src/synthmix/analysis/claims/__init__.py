"""The paper's three claims, judged from a study's replicates against margins stated in the params.

Read top to bottom:

1. ``evidence``: ``StudyEvidence`` reads the teachers' test predictions and gives, for checkpoints
   paired by replicate, the AUC differences, the noise from sampling each replicate's test responses
   (matched across replicates) and the resampling design of the arms (responses resplit, pools shared).
2. The claims, each a list of verdict records (``records.record``): ``size`` (claim 1: augmentation
   helps at 80%, best near 80%, beyond the replay control), ``variety`` (claim 2: spread, instability
   and gains by temperature), ``consistency`` (claim 3: filtering does not help). Every verdict has a
   direction, one primary verdict per claim is decided at alpha / 3 (Bonferroni), the rest are secondary.
3. ``judge``: ``judge_claims`` and ``verdict_table``; ``methods``: ``methods_text``, the estimand,
   what varies per replicate and how verdicts are decided, in words.

Every number in the words is computed; nothing is typed in.
"""

from synthmix.analysis.claims.consistency import claim_filter
from synthmix.analysis.claims.evidence import StudyEvidence
from synthmix.analysis.claims.judge import Levels, judge_claims, levels_of, verdict_table
from synthmix.analysis.claims.methods import methods_text
from synthmix.analysis.claims.records import RECORD_KEYS
from synthmix.analysis.claims.size import claim_size
from synthmix.analysis.claims.variety import claim_variety

__all__ = ["StudyEvidence", "judge_claims", "verdict_table", "methods_text", "claim_size", "claim_variety",
           "claim_filter", "Levels", "levels_of", "RECORD_KEYS"]
