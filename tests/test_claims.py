"""The claims judged on constructed studies: test predictions per replicate with a known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from synthmix.analysis.claims import StudyEvidence, claim_filter, claim_size, claim_variety, judge_claims, verdict_table
from synthmix.params import ClaimsParams

N_TEST = 200


def scores_with_auc(rng, labels, separation: float) -> np.ndarray:
    """Scores whose AUC against ``labels`` grows with ``separation`` (binormal)."""
    return rng.normal(0, 1, labels.size) + separation * labels


class Study:
    """A results tree of teacher steps: metrics rows (the summary) and test_predictions.parquet per step."""

    def __init__(self, root):
        self.root, self.rows = root, []

    def add_run(self, replicate, labels, curve: dict, *, experiments, temperature, method, protocol, rng, step=None):
        """``curve``: checkpoint -> (n_added, target_share, separation)."""
        step = step or f"03_train_teacher/t{temperature}-{method}-{protocol}-r{replicate}"
        folder = self.root / step
        folder.mkdir(parents=True)
        predictions = []
        for checkpoint, (n_added, share, separation) in curve.items():
            scores = scores_with_auc(rng, labels, separation)
            predictions.append(pd.DataFrame({"checkpoint": checkpoint, "row": np.arange(labels.size), "label": labels,
                                             "score": scores}))
            auc = float(np.mean([(s1 > s0) for s1 in scores[labels == 1] for s0 in scores[labels == 0]]))
            self.rows.append({"model": "teacher", "experiments": experiments, "temperature": temperature,
                              "filter": method, "protocol": protocol, "replicate": replicate, "checkpoint": checkpoint,
                              "n_added": n_added, "target_share": share, "positive_rate": 0.4, "auc": auc,
                              "step": step})
        pd.concat(predictions).to_parquet(folder / "test_predictions.parquet")

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def consistency_study(tmp_path, replicates: int, filter_shift: float, seed: int = 0) -> Study:
    """Unfiltered and filtered incremental runs; the filter changes separation by ``filter_shift`` on average,
    with replicate-to-replicate noise, so AUC differences vary across replicates."""
    rng = np.random.default_rng(seed)
    study = Study(tmp_path)
    for r in range(replicates):
        labels = (rng.random(N_TEST) < 0.4).astype(int)
        base = 1.2 + rng.normal(0, 0.1)
        study.add_run(r, labels, {0: (0, 0.0, base), 1: (64, 0.4, base + 0.05)}, experiments="consistency",
                      temperature=0.7, method="none", protocol="incremental", rng=rng)
        study.add_run(r, labels, {0: (0, 0.0, base), 1: (64, 0.4, base + 0.05 + filter_shift + rng.normal(0, 0.25))},
                      experiments="consistency", temperature=0.7, method="teacher_agreement", protocol="incremental",
                      rng=rng)
    return study


def test_no_significant_gain_from_filtering_is_inconclusive_not_supported(tmp_path):
    study = consistency_study(tmp_path, replicates=3, filter_shift=0.0, seed=2)
    summary = study.summary()
    at = summary[summary["checkpoint"] == 1].pivot(index="replicate", columns="filter", values="auc")
    old_rule_p = sps.ttest_rel(at["teacher_agreement"], at["none"]).pvalue
    assert old_rule_p > 0.05  # the old rule read this as "filtering does not help: supported"
    (record,) = claim_filter(StudyEvidence(tmp_path, summary, resamples=300), ClaimsParams(consistency_share=0.4),
                             0.05, 0.8)
    assert record["verdict"] == "inconclusive" and record["ci_low"] < -0.02 < 0.02 < record["ci_high"]
    assert record["replicates_needed"] > 3 and record["mde"] > 0.02
    assert "crosses the margin" in record["text"] and "Verdict: inconclusive" in record["text"]


def test_many_replicates_without_a_filter_effect_show_no_meaningful_difference(tmp_path):
    rng_shift = 0.0
    study = consistency_study(tmp_path, replicates=12, filter_shift=rng_shift, seed=3)
    rows = study.summary()
    rows.loc[rows["filter"] == "teacher_agreement", "auc"] += 0  # same truth
    # a filter with no effect at all: the filtered run's scores are the unfiltered run's
    for r in range(12):
        a = tmp_path / f"03_train_teacher/t0.7-none-incremental-r{r}/test_predictions.parquet"
        b = tmp_path / f"03_train_teacher/t0.7-teacher_agreement-incremental-r{r}/test_predictions.parquet"
        b.write_bytes(a.read_bytes())
    (record,) = claim_filter(StudyEvidence(tmp_path, rows, resamples=300), ClaimsParams(consistency_share=0.4), 0.05, 0.8)
    assert record["verdict"] == "no meaningful difference" and record["estimate"] == 0


def size_study(tmp_path, replicates: int, gain: float, replay_gain: float, seed: int = 0) -> Study:
    rng = np.random.default_rng(seed)
    study = Study(tmp_path)
    for r in range(replicates):
        labels = (rng.random(N_TEST) < 0.4).astype(int)
        base = 1.0 + rng.normal(0, 0.05)
        study.add_run(r, labels, {0: (0, 0.0, base), 1: (24, 0.2, base + gain / 2), 2: (384, 0.8, base + gain)},
                      experiments="size", temperature=0.7, method="none", protocol="incremental", rng=rng)
        study.add_run(r, labels, {0: (0, 0.0, base), 1: (24, 0.2, base), 2: (384, 0.8, base + replay_gain)},
                      experiments="size", temperature=float("nan"), method="unknown", protocol="replay", rng=rng,
                      step=f"03_train_teacher/replay-r{r}")
    return study


def test_a_large_gain_over_many_replicates_is_supported_and_the_replay_control_reports_more_training(tmp_path):
    study = size_study(tmp_path, replicates=10, gain=1.0, replay_gain=0.5, seed=5)
    records = claim_size(StudyEvidence(tmp_path, study.summary(), resamples=300), ClaimsParams(), 0.05, 0.8)
    by_id = {r["id"]: r for r in records}
    assert by_id["1"]["verdict"] == "supported" and by_id["1"]["ci_low"] > 0.02
    assert by_id["1-control"]["replay_minus_human"] > 0.02  # part of the gain is more training
    assert "peaks at 80%" in by_id["1"]["text"]


def test_claims_that_the_study_cannot_test_say_so(tmp_path):
    study = size_study(tmp_path, replicates=3, gain=0.2, replay_gain=0.0)
    records = judge_claims(StudyEvidence(tmp_path, study.summary(), resamples=100), ClaimsParams())
    by_id = {r["id"]: r for r in records}
    assert by_id["2"]["verdict"] == "not tested" and "variety" in by_id["2"]["text"]
    assert by_id["3"]["verdict"] == "not tested"
    table = verdict_table(records)
    assert list(table["id"]) == ["1", "1-control", "2", "3"]


def test_variety_spread_and_instability(tmp_path):
    rng = np.random.default_rng(7)
    study = Study(tmp_path)
    for r in range(6):
        labels = (rng.random(N_TEST) < 0.4).astype(int)
        base = 1.0
        for temperature, wobble in ((0.3, 0.02), (0.7, 0.4), (0.9, 0.4)):
            jump = rng.normal(0, wobble)
            study.add_run(r, labels, {0: (0, 0.0, base), 1: (25, float("nan"), base + jump),
                                      2: (64, 0.4, base + 0.1 + jump / 2)},
                          experiments="variety", temperature=temperature, method="none", protocol="incremental",
                          rng=rng)
    records = claim_variety(StudyEvidence(tmp_path, study.summary(), resamples=200), ClaimsParams(variety_share=0.4),
                            0.05, 0.8)
    by_id = {r["id"]: r for r in records}
    assert by_id["2a"]["estimate"] > 1.5  # the SD ratio of the gains, t >= 0.7 against 0.3
    assert by_id["2b"]["estimate"] > 0  # more change between checkpoints at high temperature
    assert "Brown–Forsythe" in by_id["2a"]["text"]


def test_instability_compares_curves_on_the_checkpoints_they_share(tmp_path):
    """A curve with extra checkpoints (smaller steps) must not look steadier for that alone."""
    rng = np.random.default_rng(8)
    study = Study(tmp_path)
    for r in range(4):
        labels = (rng.random(N_TEST) < 0.4).astype(int)
        study.add_run(r, labels, {0: (0, 0.0, 1.0), 1: (25, float("nan"), 1.4), 2: (64, 0.4, 1.0)},
                      experiments="variety", temperature=0.3, method="none", protocol="incremental", rng=rng)
        # the same jumps, with many tiny extra steps in between
        curve = {0: (0, 0.0, 1.0), 1: (24, 0.2, 1.0), 2: (25, float("nan"), 1.4), 3: (26, float("nan"), 1.4),
                 4: (64, 0.4, 1.0)}
        study.add_run(r, labels, curve, experiments="variety", temperature=0.7, method="none", protocol="incremental",
                      rng=rng)
    records = claim_variety(StudyEvidence(tmp_path, study.summary(), resamples=200), ClaimsParams(variety_share=0.4),
                            0.05, 0.8)
    instability = next(r for r in records if r["id"] == "2b")
    assert abs(instability["estimate"]) < 0.05  # on the shared checkpoints 0, 25, 64 the curves move alike
