"""What the claims are judged on: per-replicate AUCs of a study's teacher checkpoints, paired, with their design.

``StudyEvidence`` reads the teachers' test predictions (``test_predictions.parquet`` of each
03_train_teacher step) and gives, for pairs of checkpoints of the same replicate, the paired AUC
differences, the noise from sampling each replicate's test responses (``verdicts.evaluation_noise``,
matched across replicates by data set row), and the ``ResamplingDesign`` the two arms share
(responses resplit, test size, and the synthetic pool each arm draws from, shared by its
replicates or one per replicate), read from the steps' own records.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from synthmix.analysis.verdicts import EvaluationNoise, Judgement, ResamplingDesign, evaluation_noise, judge_paired
from synthmix.core import io
from synthmix.core.layout import MARKER

REQUIRED = ("experiments", "temperature", "filter", "protocol", "replicate", "checkpoint", "n_added", "target_share",
            "auc", "step")
Point = tuple[str, int]  # (teacher step folder relative to the study, checkpoint)


@dataclass
class Paired:
    """Per-replicate paired AUC differences of two arms, their test noise and their resampling design."""

    replicates: list[int]
    differences: np.ndarray
    noise: EvaluationNoise
    design: ResamplingDesign

    def __len__(self) -> int:
        return len(self.replicates)

    def judge(self, direction: str, margin: float, alpha: float, power: float = 0.8) -> Judgement:
        """The verdict on these differences (``verdicts.judge_paired`` with their design and measured noise)."""
        return judge_paired(self.differences, direction, margin, alpha=alpha, power=power, design=self.design,
                            noise=self.noise)


class StudyEvidence:
    """Per-replicate AUCs of a study's teacher checkpoints, paired by replicate, with the study's design."""

    def __init__(self, study_dir, summary: pd.DataFrame):
        missing = [c for c in REQUIRED if c not in summary.columns]
        if missing:
            raise ValueError(f"summary table lacks columns {missing}; rebuild it with results.summary_table")
        teachers = summary[summary["model"] == "teacher"] if "model" in summary.columns else summary
        self.runs = teachers.assign(experiments=teachers["experiments"].fillna("").astype(str)).reset_index(drop=True)
        self.study_dir = Path(study_dir)
        self._predictions: dict[str, pd.DataFrame] = {}
        self._records: dict[str, dict] = {}

    # ------------------------------------------------------------------ selection
    def in_experiment(self, name: str) -> pd.DataFrame:
        """The teacher checkpoints of experiment ``name`` (none when no run names it: the claim is not tested)."""
        return self.runs[self.runs["experiments"].str.split(",").map(lambda names: name in names)]

    def n_added(self, point: Point) -> float:
        """Responses added (synthetic or replayed) at a checkpoint."""
        rows = self.runs[(self.runs["step"] == point[0]) & (self.runs["checkpoint"] == point[1])]
        return float(rows["n_added"].iloc[0]) if len(rows) else float("nan")

    # ------------------------------------------------------------------ predictions
    def scores(self, point: Point) -> pd.DataFrame:
        """Test predictions (row, label, score) of one checkpoint, sorted by data set row."""
        step, checkpoint = point
        if step not in self._predictions:
            self._predictions[step] = io.read_table(self.study_dir / step / "test_predictions.parquet")
        frame = self._predictions[step]
        return frame[frame["checkpoint"] == checkpoint].sort_values("row")

    def auc(self, point: Point) -> float:
        """Test AUC of one checkpoint on its replicate's test split."""
        frame = self.scores(point)
        return _auc(frame["label"].to_numpy(), frame["score"].to_numpy())

    def paired(self, pairs: dict[int, tuple[Point, Point]]) -> Paired:
        """AUC(first point) - AUC(second point) per replicate, with test noise and the two arms' design."""
        replicates, differences, predictions = [], [], []
        for replicate, (a, b) in sorted(pairs.items()):
            frame_a, frame_b = self.scores(a), self.scores(b)
            if not np.array_equal(frame_a["row"].to_numpy(), frame_b["row"].to_numpy()):
                raise ValueError(f"{a[0]} and {b[0]}: replicate {replicate} scored on different test responses")
            labels = frame_a["label"].to_numpy()
            differences.append(_auc(labels, frame_a["score"].to_numpy()) - _auc(labels, frame_b["score"].to_numpy()))
            predictions.append((frame_a["row"].to_numpy(), labels, frame_a["score"].to_numpy(),
                                frame_b["score"].to_numpy()))
            replicates.append(replicate)
        design = self.design([p for pair in pairs.values() for p in pair], [pairs[r] for r in sorted(pairs)])
        return Paired(replicates, np.array(differences, dtype=float), evaluation_noise(predictions), design)

    # ------------------------------------------------------------------ design
    def _record(self, step: str) -> dict:
        """What a teacher step recorded about itself: its parameters and the rows it used (empty if absent)."""
        if step not in self._records:
            record = {}
            folder = self.study_dir / step
            if (folder / MARKER).is_file():
                record["parameters"] = io.read_json(folder / MARKER).get("parameters", {}) or {}
            if (folder / "teacher_report.json").is_file():
                used = io.read_json(folder / "teacher_report.json").get("used_rows", {}) or {}
                record["used"] = {name: len(rows) for name, rows in used.items()}
            self._records[step] = record
        return self._records[step]

    def _pool(self, steps: list[str], points: list[Point]) -> tuple[int | None, int | None, bool]:
        """(pool size, draw size, shared by the replicates) of one arm, from its steps' pool folders."""
        parameters = [self._record(step).get("parameters", {}) for step in steps]
        pools = [p.get("pool_dir") for p in parameters]
        if not all(pools):
            return None, None, False
        sizes = []
        for p in parameters:
            folder = self.study_dir / (p.get("filtered_dir") or p["pool_dir"])
            table = folder / ("filtered_pool.parquet" if p.get("filtered_dir") else "pool.parquet")
            if table.is_file():
                import pyarrow.parquet as pq

                sizes.append(pq.ParquetFile(table).metadata.num_rows)
        draws = [self.n_added(point) for point in points]
        if not sizes or not np.isfinite(draws).any():
            return None, None, False
        return int(np.median(sizes)), int(np.nanmax(draws)), len(set(pools)) < len(pools)

    def design(self, points: list[Point], pairs: list[tuple[Point, Point]] | None = None) -> ResamplingDesign:
        """The resampling design of the arms these checkpoints belong to (``pairs``: per replicate (a, b)).

        Responses resplit: training + validation + test of a step's record (else the summary's human
        and test sizes); the pool: the arm whose replicates share the largest part of their draws.
        """
        n_test = int(np.median([len(self.scores(p)) for p in points])) if points else 0
        used = next((self._record(step)["used"] for step, _ in points if "used" in self._record(step)), None)
        if used is not None:
            n_total = int(sum(used.values()))
        else:
            rows = self.runs[self.runs["step"].isin([s for s, _ in points])]
            n_total = int(np.nanmedian(rows["n_human"])) + n_test if "n_human" in rows and len(rows) else n_test * 2
        best = (None, None, False)
        for side in range(2) if pairs else ():
            arm = [pair[side] for pair in pairs]
            pool, draw, shared = self._pool([step for step, _ in arm], arm)
            if shared and (not best[2] or draw / pool > best[1] / best[0]):
                best = (pool, draw, shared)
        pool, draw, shared = best
        return ResamplingDesign(n_train=max(n_total - n_test, 0), n_test=n_test, n_total=n_total, pool_size=pool,
                                draw_size=draw, shared_pool=shared)


def _auc(labels, scores) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores)) if 0 < np.sum(labels) < len(labels) else float("nan")


def at_share(frame: pd.DataFrame, share: float) -> pd.DataFrame:
    """Rows evaluated at exactly ``share`` (incremental checkpoints and mixed runs record target_share)."""
    return frame[(frame["target_share"] - share).abs() < 1e-9]


def points(frame: pd.DataFrame) -> dict[int, Point]:
    """replicate -> (step, checkpoint) of each row (one per replicate)."""
    return {int(r["replicate"]): (r["step"], int(r["checkpoint"])) for r in frame.to_dict(orient="records")}


def baselines(runs: pd.DataFrame, experiment_runs: pd.DataFrame) -> dict[int, Point]:
    """replicate -> its human-only teacher: checkpoint 0 of an incremental or replay run of the same
    experiment (alike arms), else of any run of the study (all replicates' runs share the human fine-tune)."""
    out = {}
    for frame in (runs, experiment_runs):  # the experiment's own runs override
        rows = frame[frame["protocol"].isin(["incremental", "replay"]) & (frame["checkpoint"] == 0)]
        rows = rows.sort_values(["replicate", "protocol", "step"]).drop_duplicates("replicate")
        out.update(points(rows))
    return out
