"""How replicates depend on each other: the resampling design of a study and the test-sampling noise of its
paired AUC differences (what ``verdicts.variance_floor`` turns into the variance floor of a mean).

Replicates resplit one data set (two test splits share about n_test / n_total of their responses) and
may draw from one shared synthetic pool (two draws share about draw / pool); ``ResamplingDesign``
says which. ``evaluation_noise`` measures, from the replicates' own test predictions, the variance of
a paired difference's test noise and the covariance of two replicates' test noise over the responses
they share (DeLong placements).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

NAN = float("nan")


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
    def train_overlap(self) -> float:
        """Expected share of one replicate's training (and validation) responses another replicate also trains on."""
        return self.n_train / self.total if self.total else 0.0

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
        return words


@dataclass(frozen=True)
class EvaluationNoise:
    """The test-sampling noise of per-replicate paired AUC differences, estimated from their test predictions.

    variance: mean over replicates of the DeLong variance of a replicate's difference (what sampling its
    test responses adds); covariance: mean over pairs of replicates of the covariance of that noise,
    from the test responses both score (DeLong placements; Hanley & McNeil's correlated-AUC idea
    across replicates); pairs: how many replicate pairs it averages.
    """

    variance: float
    covariance: float
    pairs: int

    def influence_correlation(self, test_overlap: float) -> float:
        """kappa: how alike two replicates' differences respond to the same test response (0..1): the
        covariance over what it would be if every shared response moved both differences alike."""
        if not (self.variance > 0 and test_overlap > 0):
            return 1.0
        return float(np.clip(self.covariance / (test_overlap * self.variance), 0.0, 1.0))


def auc_difference_influence(labels, scores_a, scores_b) -> np.ndarray:
    """Per test response, its first-order contribution to AUC(scores_a) - AUC(scores_b) on this test set.

    DeLong's placements: a positive's share of negatives ranked below it (ties 1/2), a negative's share
    of positives ranked above it; the contribution is (placement - AUC) of a minus that of b, divided
    by the size of the response's class, so the noise of the difference is about their sum.
    """
    labels = np.asarray(labels, dtype=int)
    positive = labels == 1
    n1, n0 = int(positive.sum()), int((~positive).sum())
    influence = np.zeros(labels.size)
    if n1 == 0 or n0 == 0:
        return influence
    for sign, scores in ((1.0, np.asarray(scores_a, dtype=float)), (-1.0, np.asarray(scores_b, dtype=float))):
        negatives, positives = np.sort(scores[~positive]), np.sort(scores[positive])
        s1, s0 = scores[positive], scores[~positive]
        below = np.searchsorted(negatives, s1, "left") + 0.5 * (np.searchsorted(negatives, s1, "right")
                                                                 - np.searchsorted(negatives, s1, "left"))
        above = n1 - np.searchsorted(positives, s0, "right") + 0.5 * (np.searchsorted(positives, s0, "right")
                                                                      - np.searchsorted(positives, s0, "left"))
        auc = below.sum() / (n1 * n0)
        influence[positive] += sign * (below / n0 - auc) / n1
        influence[~positive] += sign * (above / n1 - auc) / n0
    return influence


def evaluation_noise(replicates) -> EvaluationNoise:
    """``EvaluationNoise`` from per-replicate test predictions of both arms.

    ``replicates``: one ``(ids, labels, scores_a, scores_b)`` per replicate, ``ids`` naming each test
    response the same way in every replicate (the data set's row), so responses two replicates both
    test on can be matched.
    """
    pieces = []
    for ids, labels, scores_a, scores_b in replicates:
        labels = np.asarray(labels, dtype=int)
        influence = auc_difference_influence(labels, scores_a, scores_b)
        n1, n0 = int(labels.sum()), int(labels.size - labels.sum())
        scale = np.where(labels == 1, n1 / max(n1 - 1, 1), n0 / max(n0 - 1, 1))
        order = np.argsort(np.asarray(ids), kind="mergesort")
        pieces.append((np.asarray(ids)[order], influence[order], float((influence**2 * scale).sum())))
    if not pieces:
        return EvaluationNoise(NAN, NAN, 0)
    covariances = []
    for (ids_a, inf_a, _), (ids_b, inf_b, _) in itertools.combinations(pieces, 2):
        _, at_a, at_b = np.intersect1d(ids_a, ids_b, assume_unique=True, return_indices=True)
        covariances.append(float(inf_a[at_a] @ inf_b[at_b]))
    return EvaluationNoise(float(np.mean([v for _, _, v in pieces])), float(np.mean(covariances)) if covariances else NAN,
                     len(covariances))
