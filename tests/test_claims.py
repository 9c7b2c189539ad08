"""The claims judged on constructed studies: test predictions per replicate with a known truth.

A constructed study resplits one data set of ``N_DATA`` coded rows: each replicate tests on its own
random two thirds of them (so test sets overlap, as in a real study) with scores whose separation
each test fixes, around a part every model of the replicate shares (so checkpoints and arms are paired).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthmix.analysis.claims import (
    RECORD_KEYS,
    StudyEvidence,
    claim_filter,
    claim_size,
    claim_variety,
    judge_claims,
    levels_of,
    verdict_table,
)
from synthmix.analysis.claims.records import record, verdict_text
from synthmix.analysis.verdicts import judge_paired
from synthmix.params import ClaimsParams

N_DATA, N_TEST = 300, 200


class Study:
    """A results tree of teacher steps: metrics rows (the summary) and test_predictions.parquet per step."""

    def __init__(self, root, seed=0):
        self.root, self.rows = root, []
        rng = np.random.default_rng([seed, 99])
        self.labels = (rng.random(N_DATA) < 0.4).astype(int)
        self.tests = {}
        self.rng = rng

    def test_rows(self, replicate):
        """The replicate's test split: a random N_TEST of the data set's rows (the same for all its runs)."""
        if replicate not in self.tests:
            self.tests[replicate] = np.sort(np.random.default_rng([replicate, 5]).choice(N_DATA, N_TEST, replace=False))
        return self.tests[replicate]

    def add_run(self, replicate, curve: dict, *, experiments, temperature, method, protocol, step=None):
        """``curve``: checkpoint -> (n_added, target_share, separation)."""
        step = step or f"03_train_teacher/t{temperature}-{method}-{protocol}-r{replicate}"
        folder = self.root / step
        folder.mkdir(parents=True)
        rows = self.test_rows(replicate)
        labels = self.labels[rows]
        predictions = []
        base = np.random.default_rng([replicate, 6]).normal(0, 1, rows.size)  # what every model of a replicate shares
        for checkpoint, (n_added, share, separation) in curve.items():
            scores = base + self.rng.normal(0, 0.3, rows.size) + separation * labels
            predictions.append(pd.DataFrame({"checkpoint": checkpoint, "row": rows, "label": labels, "score": scores}))
            self.rows.append({"model": "teacher", "experiments": experiments, "temperature": temperature,
                              "filter": method, "protocol": protocol, "replicate": replicate, "checkpoint": checkpoint,
                              "n_added": n_added, "target_share": share, "positive_rate": 0.4, "auc": np.nan,
                              "step": step})
        pd.concat(predictions).to_parquet(folder / "test_predictions.parquet")

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


SETTINGS = ClaimsParams(consistency_share=0.4, variety_share=0.4)
LEVELS = levels_of(SETTINGS)


def consistency_study(tmp_path, replicates: int, filter_shift: float, seed: int = 0) -> Study:
    """Unfiltered and filtered incremental runs; the filter changes separation by ``filter_shift`` on average."""
    rng = np.random.default_rng(seed)
    study = Study(tmp_path, seed)
    for r in range(replicates):
        base = 1.2 + rng.normal(0, 0.1)
        study.add_run(r, {0: (0, 0.0, base), 1: (64, 0.4, base + 0.05)}, experiments="consistency",
                      temperature=0.7, method="none", protocol="incremental")
        study.add_run(r, {0: (0, 0.0, base), 1: (64, 0.4, base + 0.05 + filter_shift + rng.normal(0, 0.25))},
                      experiments="consistency", temperature=0.7, method="teacher_agreement", protocol="incremental")
    return study


def test_an_interval_from_minus_0_021_to_plus_0_016_contradicts_a_claim_that_something_helps():
    """The committed default's claim 1 interval: a gain of the margin is ruled out, so the claim is contradicted."""
    t = 2.131846786326649  # t(0.95, 4)
    sd = 0.0185 * np.sqrt(5) / t
    z = np.array([-1.2649, -0.6325, 0.0, 0.6325, 1.2649])  # mean 0, sd 1
    differences = -0.0025 + sd * z
    j = judge_paired(differences, "helps", 0.02)
    assert (round(j.ci_low, 3), round(j.ci_high, 3)) == (-0.021, 0.016)
    assert j.verdict == "contradicted" and j.position == "crosses"
    text = verdict_text("The gain is", j, "synthetic responses help", "primary")
    assert "The upper bound (+0.016) is below +0.02" in text and text.endswith("Verdict (primary): contradicted.")
    entry = record("1", "claim", "part", "primary", "the expected gain", j, text)
    assert entry["verdict"] == "contradicted" and entry["interval_for"] == "90.0% interval for the expected gain"


def test_no_gain_from_filtering_with_few_replicates_is_inconclusive(tmp_path):
    study = consistency_study(tmp_path, replicates=3, filter_shift=0.0, seed=2)
    (entry,) = claim_filter(StudyEvidence(tmp_path, study.summary()), SETTINGS, LEVELS)
    assert entry["verdict"] == "inconclusive" and entry["ci_low"] < 0.02 < entry["ci_high"]
    assert entry["role"] == "primary" and entry["direction"] == "does_not_help"
    assert entry["ci_level"] == pytest.approx(1 - 2 * 0.05 / 3)  # Bonferroni over the three claims
    assert "contains +0.02" in entry["text"] and "Verdict (primary" in entry["text"]


def test_a_filter_that_changes_nothing_supports_that_filtering_does_not_help(tmp_path):
    study = consistency_study(tmp_path, replicates=6, filter_shift=0.0, seed=3)
    for r in range(6):  # the filtered run's predictions are the unfiltered run's
        a = tmp_path / f"03_train_teacher/t0.7-none-incremental-r{r}/test_predictions.parquet"
        b = tmp_path / f"03_train_teacher/t0.7-teacher_agreement-incremental-r{r}/test_predictions.parquet"
        b.write_bytes(a.read_bytes())
    (entry,) = claim_filter(StudyEvidence(tmp_path, study.summary()), SETTINGS, LEVELS)
    assert entry["estimate"] == 0 and entry["verdict"] == "supported" and entry["position"] == "within"


def test_a_filter_that_helps_a_lot_contradicts_the_claim(tmp_path):
    study = consistency_study(tmp_path, replicates=10, filter_shift=1.0, seed=4)
    (entry,) = claim_filter(StudyEvidence(tmp_path, study.summary()), SETTINGS, LEVELS)
    assert entry["verdict"] == "contradicted" and entry["ci_low"] > 0.02


def size_study(tmp_path, replicates: int, gain: float, replay_gain: float, seed: int = 0, early=0.0) -> Study:
    rng = np.random.default_rng(seed)
    study = Study(tmp_path, seed)
    for r in range(replicates):
        base = 1.0 + rng.normal(0, 0.05)
        study.add_run(r, {0: (0, 0.0, base), 1: (24, 0.2, base + early + gain / 2), 2: (384, 0.8, base + gain)},
                      experiments="size", temperature=0.7, method="none", protocol="incremental")
        study.add_run(r, {0: (0, 0.0, base), 1: (24, 0.2, base), 2: (384, 0.8, base + replay_gain)},
                      experiments="size", temperature=float("nan"), method="none", protocol="replay",
                      step=f"03_train_teacher/replay-r{r}")
    return study


def test_a_large_gain_is_supported_and_the_replay_control_reports_more_training(tmp_path):
    study = size_study(tmp_path, replicates=10, gain=1.0, replay_gain=0.5, seed=5)
    records = claim_size(StudyEvidence(tmp_path, study.summary()), ClaimsParams(), LEVELS)
    by_id = {r["id"]: r for r in records}
    assert by_id["1"]["verdict"] == "supported" and by_id["1"]["ci_low"] > 0.02 and by_id["1"]["role"] == "primary"
    assert by_id["1-control"]["replay_minus_human"] > 0.02 and by_id["1-control"]["role"] == "secondary"
    assert by_id["1-best"]["verdict"] == "supported"  # 0% and 20% are far below 80%
    assert "Mean AUC over replicates by share: 0%" in by_id["1-best"]["text"]


def test_a_share_that_beats_80_percent_contradicts_best_near_80(tmp_path):
    study = size_study(tmp_path, replicates=10, gain=0.3, replay_gain=0.0, seed=6, early=1.0)
    by_id = {r["id"]: r for r in claim_size(StudyEvidence(tmp_path, study.summary()), ClaimsParams(), LEVELS)}
    best = by_id["1-best"]
    assert best["verdict"] == "contradicted" and best["ci_low"] > 0.02 and best["direction"] == "does_not_help"
    assert "20% minus 80%" in best["text"]


def test_claims_the_study_cannot_test_say_so(tmp_path):
    study = size_study(tmp_path, replicates=3, gain=0.2, replay_gain=0.0)
    records = judge_claims(StudyEvidence(tmp_path, study.summary()), ClaimsParams())
    by_id = {r["id"]: r for r in records}
    assert by_id["2"]["verdict"] == "not tested" and "variety" in by_id["2"]["text"]
    assert by_id["3"]["verdict"] == "not tested"
    assert list(verdict_table(records)["id"]) == ["1", "1-best", "1-control", "2", "3"]


def test_every_record_carries_what_claims_json_promises(tmp_path):
    study = consistency_study(tmp_path, replicates=4, filter_shift=0.3, seed=7)
    (entry,) = claim_filter(StudyEvidence(tmp_path, study.summary()), SETTINGS, LEVELS)
    assert list(entry)[:len(RECORD_KEYS)] == list(RECORD_KEYS)
    assert entry["interval_for"].startswith("96.7% interval for the expected test AUC")
    for value in (f"{entry['estimate']:+.3f}", f"{entry['ci_low']:+.3f}", f"{entry['ci_high']:+.3f}", entry["verdict"]):
        assert value in entry["text"]  # the prose is written from the record's own values
    assert entry["what_would_decide"] in entry["text"] and any(ch.isdigit() for ch in entry["what_would_decide"])


def test_without_multiplicity_control_primary_verdicts_read_90_percent_intervals(tmp_path):
    study = consistency_study(tmp_path, replicates=4, filter_shift=0.3, seed=8)
    settings = ClaimsParams(consistency_share=0.4, multiplicity="none")
    (entry,) = claim_filter(StudyEvidence(tmp_path, study.summary()), settings, levels_of(settings))
    assert entry["ci_level"] == pytest.approx(0.9)


def variety_study(tmp_path, wobble: dict, replicates=6, seed=9) -> Study:
    rng = np.random.default_rng(seed)
    study = Study(tmp_path, seed)
    for r in range(replicates):
        for temperature, spread in wobble.items():
            jump = rng.normal(0, spread)
            study.add_run(r, {0: (0, 0.0, 1.0), 1: (25, float("nan"), 1.0 + jump), 2: (50, float("nan"), 1.0 - jump),
                              3: (64, 0.4, 1.1 + jump / 2)},
                          experiments="variety", temperature=temperature, method="none", protocol="incremental")
    return study


def test_variety_spread_instability_and_gains_with_every_temperature_counted(tmp_path):
    study = variety_study(tmp_path, {0.3: 0.02, 0.5: 0.1, 0.7: 0.8, 0.9: 0.8}, replicates=8)
    by_id = {r["id"]: r for r in claim_variety(StudyEvidence(tmp_path, study.summary()), SETTINGS, LEVELS)}
    assert by_id["2a"]["estimate"] > 1.5 and by_id["2a"]["scale"] == "ratio" and by_id["2a"]["role"] == "primary"
    assert by_id["2b"]["estimate"] > 1 and by_id["2b"]["role"] == "secondary"
    assert by_id["2c"]["direction"] == "helps"
    text = by_id["2a"]["text"]
    for temperature in ("0.3", "0.5", "0.7", "0.9"):  # every temperature's count of worse runs
        assert f"t = {temperature} " in text.split("runs worse than their human-only teacher:")[1]
    assert set(by_id["2a"]["worse_than_human"]) == {"t = 0.3", "t = 0.5", "t = 0.7", "t = 0.9"}


def test_instability_compares_curves_on_the_checkpoints_they_share(tmp_path):
    """A curve with extra checkpoints (smaller steps) must not look steadier for that alone."""
    study = Study(tmp_path)
    for r in range(5):
        study.add_run(r, {0: (0, 0.0, 1.0), 1: (25, float("nan"), 1.6), 2: (50, float("nan"), 1.0),
                          3: (64, 0.4, 1.6)},
                      experiments="variety", temperature=0.3, method="none", protocol="incremental")
        curve = {0: (0, 0.0, 1.0), 1: (24, 0.2, 1.0), 2: (25, float("nan"), 1.6), 3: (26, float("nan"), 1.6),
                 4: (50, float("nan"), 1.0), 5: (51, float("nan"), 1.0), 6: (64, 0.4, 1.6)}
        study.add_run(r, curve, experiments="variety", temperature=0.7, method="none", protocol="incremental")
    by_id = {r["id"]: r for r in claim_variety(StudyEvidence(tmp_path, study.summary()), SETTINGS, LEVELS)}
    assert 0.6 < by_id["2b"]["estimate"] < 1.6  # on the shared checkpoints 0, 25, 50, 64 the curves move alike
