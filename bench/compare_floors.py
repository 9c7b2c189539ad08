"""Other variance floors on the calibration's own simulated studies: could another rule meet every target?

    .venv/bin/python bench/compare_floors.py [results/.cache/calibration]

Reads ``outcomes-minilm.csv`` and ``table-minilm.csv`` that ``bench/calibrate_verdicts.py`` wrote (per
simulated study: the estimate, the variance of its replicates' differences and the measured test noise)
and judges every study again under other floors of the overlap-corrected t, each a variant of
``verdicts.variance_floor`` (test part: the measured covariance of two replicates' test noise; rest:
rho_rest / (1 - rho_rest) times the rest of the within-study variance):

- ``measured``: rho_rest = kappa x max(training overlap, pool overlap) (the rule the study uses);
- ``training only``: rho_rest = kappa x training overlap (a shared pool adds nothing);
- ``unscaled training``: rho_rest = max(training overlap, kappa x pool overlap);
- ``unscaled``: rho_rest = max(training overlap, pool overlap) (no kappa: Nadeau & Bengio's logic for the rest).

Prints, per variant, arm and R, the coverage of the 90% interval and the false supported / contradicted
rates at the boundary (margin set to the truth), marking cells outside the targets (coverage 0.86-0.95,
each false rate <= 0.07), and, per arm, what the data say the rest's correlation should have been.
The studies are the harness's, so ``measured`` reproduces its table exactly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats as sps

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("measured", "training only", "unscaled training", "unscaled")


def load(folder: Path) -> pd.DataFrame:
    """The new rule's outcomes with each arm's truth and its design's overlaps (as ``StudyShape.design`` sets them)."""
    outcomes = pd.read_csv(folder / "outcomes-minilm.csv")
    outcomes = outcomes[outcomes["rule"].str.startswith("new")].copy()
    truths = pd.read_csv(folder / "table-minilm.csv").drop_duplicates("arm").set_index("arm")["truth"]
    outcomes["truth"] = outcomes["arm"].map(truths)
    added = outcomes["arm"].str.extract(r"\+(\d+)")[0].astype(int)
    uses_pool = ~outcomes["arm"].str.startswith("duplicates")  # more human and flipped draw from a shared pool
    outcomes["pool_overlap"] = np.where(uses_pool, added / np.ceil(1.5 * added), 0.0)
    outcomes["train_overlap"], outcomes["test_overlap"] = 128 / 384, 256 / 384
    return outcomes


def interval(study: pd.DataFrame, variant: str) -> tuple[np.ndarray, np.ndarray]:
    """The 90% interval of every study under ``variant``."""
    covariance = study["noise_covariance"].clip(lower=0).to_numpy()
    variance, sd2 = study["noise_variance"].to_numpy(), study["sd2"].to_numpy()
    kappa = np.clip(covariance / (study["test_overlap"].to_numpy() * variance), 0, 1)
    rest = np.clip(sd2 - (variance - covariance), 0, None)
    train, pool = study["train_overlap"].to_numpy(), np.minimum(study["pool_overlap"].to_numpy(), 0.95)
    rho = {"measured": kappa * np.maximum(train, pool), "training only": kappa * train,
           "unscaled training": np.maximum(train, kappa * pool), "unscaled": np.maximum(train, pool)}[variant]
    replicates = study["R"].to_numpy()
    se = np.sqrt(sd2 / replicates + covariance + rho / (1 - rho) * rest)
    half = sps.t.ppf(0.95, replicates - 1) * se
    return study["estimate"].to_numpy() - half, study["estimate"].to_numpy() + half


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "results" / ".cache" / "calibration"
    outcomes = load(folder)
    for variant in VARIANTS:
        rows = []
        for (arm, replicates), study in outcomes.groupby(["arm", "R"], sort=False):
            low, high = interval(study, variant)
            truth = study["truth"].to_numpy()
            supported, contradicted = float(np.mean(low > truth)), float(np.mean(high < truth))
            coverage = 1 - supported - contradicted
            rows.append({"arm": arm, "R": replicates, "coverage": coverage, "false supported": supported,
                         "false contradicted": contradicted, "mean width": float(np.mean(high - low)),
                         "misses": "" if 0.86 <= coverage <= 0.95 and max(supported, contradicted) <= 0.07 else "<-"})
        table = pd.DataFrame(rows)
        print(f"\n{variant}: {int((table['misses'] == '').sum())} of {len(table)} cells within the targets")
        print(table.round(3).to_string(index=False))
    print("\nper arm: the rest's correlation the studies needed (from their mean squared error) and error vs se")
    for (arm, replicates), study in outcomes.groupby(["arm", "R"], sort=False):
        error = study["estimate"] - study["truth"]
        covariance = study["noise_covariance"].clip(lower=0)
        rest = (study["sd2"] - (study["noise_variance"] - covariance)).clip(lower=0)
        factor = ((error**2).mean() - (study["sd2"] / replicates).mean() - covariance.mean()) / rest.mean()
        print(f"  {arm:18s} R={replicates:2d}: needed rho_rest {factor / (1 + factor):+.2f}; bias {error.mean():+.4f}; "
              f"error SD {error.std():.4f} vs rms se {np.sqrt((study['se'] ** 2).mean()):.4f}; "
              f"corr(error, se) {np.corrcoef(error, study['se'])[0, 1]:+.2f}")


if __name__ == "__main__":
    main()
