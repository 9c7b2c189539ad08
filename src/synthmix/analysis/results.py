"""Reading a study's results tree, and selecting the rows a comparison needs.

``collect_steps`` lists the complete step folders of a study; ``summary_table`` joins them
(generate → filter → train_teacher → distill, via the folder paths in their parameters) into one
tidy row per model, condition, replicate and checkpoint. The selection helpers below it pick
rows from that table: an experiment's rows (``in_experiment``), the checkpoint nearest a
synthetic share (``closest_to_share``, ``at_share``), and the human-only baseline of each
replicate (``human_baseline``). A table that cannot be computed carries the reason in
``table.attrs["note"]``.

A replicate is one draw of the human split, the training seed and the synthetic responses.
Results written before replicates existed name that column ``seed``; they are read as replicates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from synthmix.analysis import stats as st
from synthmix.core import io
from synthmix.core.layout import MARKER, NOTEBOOKS

KIND_ORDER = tuple(NOTEBOOKS)  # generate, filter, train_teacher, distill, analyze
PAPER_BEST_SHARE = 0.8  # the paper's best synthetic share (80 % synthetic, 20 % human)
RUN_KEYS = ("model", "protocol", "temperature", "filter", "replicate")
CONDITION_KEYS = ("model", "protocol", "temperature", "filter", "target_share", "checkpoint")
METRICS = ("auc", "auc_ci_low", "auc_ci_high", "macro_f1", "macro_f1_ci_low", "macro_f1_ci_high",
           "accuracy", "kappa", "n", "n_positive")
STUDENT_EXTRAS = ("teacher_auc", "student_parameters", "teacher_parameters", "student_size_mb", "teacher_size_mb",
                  "student_latency_batch1_s", "student_latency_batch32_s", "teacher_latency_batch1_s",
                  "teacher_latency_batch32_s", "speedup_batch1", "speedup_batch32")
SUMMARY_COLUMNS = ("model", "study", "experiments", "temperature", "filter", "protocol", "target_share", "replicate",
                   "checkpoint", "n_human", "n_added", "n_synthetic", "synthetic_share", *METRICS, *STUDENT_EXTRAS,
                   "condition", "step", "notebook")
STEP_COLUMNS = ("kind", "condition", "folder", "name", "relative", "parameters", "experiments", "seconds",
                "finished", "step", "notebook")


# ------------------------------------------------------------------------- the steps
def _html_of(folder: Path, kind: str) -> Path | None:
    expected = folder / NOTEBOOKS.get(kind, "").replace(".ipynb", ".html")
    if NOTEBOOKS.get(kind) and expected.is_file():
        return expected
    found = sorted(folder.glob("*.html"))
    return found[0] if found else None


def collect_steps(study_dir, include_stale: bool = False) -> pd.DataFrame:
    """One row per complete step folder of a study (kind, condition, folder, parameters, experiments, seconds, …).

    A folder left by an earlier version of the same step (same kind and condition, older marker: the
    parameters changed and the step was rerun into a new folder) is stale and left out unless asked for.
    """
    study_dir = Path(study_dir)
    rows = []
    for marker in sorted(study_dir.glob(f"*/*/{MARKER}")):
        try:
            info = io.read_json(marker)
        except (OSError, ValueError):
            continue
        folder = marker.parent
        rendered = _html_of(folder, info.get("kind", ""))
        rows.append({
            "kind": info.get("kind", ""),
            "condition": info.get("condition", ""),
            "folder": str(folder),
            "name": folder.name,
            "relative": folder.relative_to(study_dir).as_posix(),
            "parameters": info.get("parameters", {}) or {},
            "experiments": list(info.get("experiments", []) or []),
            "seconds": float(info.get("seconds", np.nan)),
            "finished": info.get("finished", ""),
            "step": info.get("step", ""),
            "notebook": rendered.relative_to(study_dir).as_posix() if rendered else "",
            "_written": marker.stat().st_mtime,
        })
    frame = pd.DataFrame(rows, columns=[*STEP_COLUMNS, "_written"])
    if not include_stale:
        frame = frame.sort_values("_written").drop_duplicates(["kind", "condition"], keep="last")
    frame = frame.drop(columns="_written")
    order = {kind: i for i, kind in enumerate(KIND_ORDER)}
    frame["_order"] = frame["kind"].map(order).fillna(len(order))
    return frame.sort_values(["_order", "condition"]).drop(columns="_order").reset_index(drop=True)


def steps_by_name(steps: pd.DataFrame, kind: str) -> dict[str, dict]:
    """Steps of one kind keyed by folder name (robust to a results tree that was moved)."""
    return {row["name"]: row for row in steps[steps["kind"] == kind].to_dict(orient="records")}


def _lookup(table: dict[str, dict], path) -> dict:
    return table.get(Path(str(path)).name, {}) if path else {}


def _number(value, default=np.nan) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def temperature_of(step: dict, condition: str) -> float:
    """The sampling temperature of a generate step (from its parameters, else its condition name t<T>-…)."""
    value = _number(step.get("parameters", {}).get("temperature")) if step else np.nan
    if np.isnan(value) and condition.startswith("t"):
        value = _number(condition[1:].split("-")[0])
    return value


def _replicate_of(record: dict, *fallbacks: dict) -> int:
    """The replicate number of a metrics row or report (``replicate``, else the older ``seed``), else -1."""
    for source in (record, *fallbacks):
        for key in ("replicate", "seed"):
            value = _number(source.get(key))
            if np.isfinite(value):
                return int(value)
    return -1


def _target_share(parameters: dict) -> float:
    """The mixture share a teacher step was asked for (a mixed run's ``synthetic_shares``, or the older
    ``synthetic_share``); NaN for an incremental or replay run."""
    if parameters.get("protocol") == "mixed" and len(parameters.get("synthetic_shares") or []) == 1:
        return _number(parameters["synthetic_shares"][0])
    share = _number(parameters.get("synthetic_share"))
    return share if share >= 0 else np.nan


# ------------------------------------------------------------------------ the summary
def summary_table(study_dir) -> pd.DataFrame:
    """Tidy table of every metric per model (teacher/student), condition, replicate and checkpoint of a study.

    Teacher rows come from each train_teacher step's ``metrics.parquet`` (one per checkpoint), student
    rows from each distill step's ``student_metrics.json`` (at its teacher's final checkpoint). A replay
    (training-steps control) run has no pool: its temperature is NaN and its filter 'none'. ``pool``
    says whether a run drew from a pool shared by the replicates or its replicate's own;
    ``thinned_like`` names the filter whose pool size an unfiltered arm's pool was thinned to;
    ``human_size`` the nested subsample of the training split a human-size run started from (NaN: all of it).
    """
    study_dir = Path(study_dir)
    steps = collect_steps(study_dir)
    generates, filters, teachers = (steps_by_name(steps, k) for k in ("generate", "filter", "train_teacher"))
    rows, teacher_info = [], {}
    for teacher in teachers.values():
        folder, p = Path(teacher["folder"]), teacher["parameters"]
        filtered = _lookup(filters, p.get("filtered_dir"))
        generate = _lookup(generates, p.get("pool_dir") or filtered.get("parameters", {}).get("pool_dir"))
        has_pool = bool(p.get("pool_dir") or p.get("filtered_dir"))
        keys = {
            "study": study_dir.name,
            "experiments": ",".join(sorted(set(teacher["experiments"]))),
            "temperature": temperature_of(generate, teacher["condition"]) if has_pool else np.nan,
            "filter": filtered.get("parameters", {}).get("method", "unknown") if has_pool else "none",
            "protocol": p.get("protocol", ""),
            "target_share": _target_share(p),
            "condition": teacher["condition"],
            # which pool the run drew from (one shared by the replicates, or the replicate's own), and
            # the filter whose pool size an unfiltered arm was thinned to (alike arms of a filter comparison)
            "pool": ("own" if generate.get("parameters", {}).get("own_pool") else "shared") if has_pool else "",
            "thinned_like": _lookup(filters, p.get("pool_size_like_dir")).get("parameters", {}).get("method", ""),
            # a human-size experiment's nested subsample of the training split (NaN: the whole split)
            "human_size": _number(p.get("human_size")) if _number(p.get("human_size"), -1) >= 0 else np.nan,
        }
        metrics = io.read_table(folder / "metrics.parquet").sort_values("checkpoint")
        for record in metrics.to_dict(orient="records"):
            record.pop("seed", None)
            if not np.isfinite(_number(record.get("target_share"))):
                record.pop("target_share", None)  # keep the step's own mixture share
            rows.append({**keys, "model": "teacher", **record, "replicate": _replicate_of(record, p),
                         "step": teacher["relative"], "notebook": teacher["notebook"],
                         "_run_share": keys["target_share"]})
        teacher_info[teacher["name"]] = (keys, metrics.iloc[-1].to_dict() if len(metrics) else {}, p)
    for distill in steps_by_name(steps, "distill").values():
        p = distill["parameters"]
        name = Path(str(p.get("teacher_dir", ""))).name
        if name not in teacher_info:
            continue
        keys, final, teacher_p = teacher_info[name]
        student = io.read_json(Path(distill["folder"]) / "student_metrics.json")
        record = {k: student.get(k, np.nan) for k in (*METRICS, *STUDENT_EXTRAS)}
        if pd.isna(record["teacher_auc"]):
            record["teacher_auc"] = final.get("auc", np.nan)
        rows.append({**keys, "model": "student", **record,
                     "experiments": ",".join(sorted(set(distill["experiments"]))) or keys["experiments"],
                     "replicate": _replicate_of(student, p, teacher_p),
                     **{k: final.get(k, np.nan) for k in ("checkpoint", "n_human", "n_added", "n_synthetic",
                                                         "synthetic_share")},
                     "step": distill["relative"], "notebook": distill["notebook"], "_run_share": keys["target_share"]})
    frame = pd.DataFrame(rows, columns=[*SUMMARY_COLUMNS, "_run_share"] if not rows else None)
    run_share = frame.pop("_run_share")  # a mixed run's share orders its rows; checkpoints stay in order
    extra = [c for c in frame.columns if c not in SUMMARY_COLUMNS]
    frame = frame.reindex(columns=[*SUMMARY_COLUMNS, *extra])
    for column in ("temperature", "target_share", "n_added", "n_synthetic", "synthetic_share", *METRICS,
                   *STUDENT_EXTRAS):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame["n_added"] = frame["n_added"].fillna(frame["n_synthetic"])  # older runs added synthetic responses only
    frame["model"] = pd.Categorical(frame["model"], ["teacher", "student"])
    frame = (frame.assign(_run_share=pd.to_numeric(run_share, errors="coerce"))
             .sort_values(["model", "temperature", "filter", "protocol", "_run_share", "replicate", "checkpoint"],
                          na_position="first").drop(columns="_run_share"))
    frame["model"] = frame["model"].astype(str)
    return frame.reset_index(drop=True)


# -------------------------------------------------------------------------- selection
def noted(frame: pd.DataFrame, note: str = "") -> pd.DataFrame:
    """``frame`` with ``note`` (why it is empty or partial; '' when complete) in ``frame.attrs["note"]``."""
    frame.attrs["note"] = note
    return frame


def replicate_column(frame: pd.DataFrame) -> str:
    """The column that numbers replicates: ``replicate``, or ``seed`` in tables written before replicates."""
    return "replicate" if "replicate" in frame.columns or "seed" not in frame.columns else "seed"


def condition_label(row) -> str:
    """A readable name for one condition (without the replicate)."""
    protocol = row["protocol"]
    if protocol == "mixed":
        share = f"mixed {row['target_share']:.0%}"
    else:
        share = f"{protocol} ckpt {int(row['checkpoint'])}"
    temperature = "no pool" if pd.isna(row["temperature"]) else f"t={row['temperature']:g}"
    return f"{row['model']} · {temperature} · {row['filter']} · {share}"


def closest_to_share(frame: pd.DataFrame, share: float, by=RUN_KEYS) -> pd.DataFrame:
    """Per run, the row whose synthetic share is closest to ``share``.

    A run is one value of ``by`` (model, protocol, temperature, filter, replicate; ``seed`` stands in
    for ``replicate`` in older tables). Ties go to the earlier checkpoint; for the mixed protocol this
    picks the run whose share is closest.
    """
    if frame.empty:
        return frame.copy()
    by = [replicate_column(frame) if c == "replicate" else c for c in by]
    by = [c for c in by if c in frame.columns]
    ranked = frame.assign(_distance=(frame["synthetic_share"] - share).abs())
    ranked = ranked.sort_values([*by, "_distance", "checkpoint"], na_position="last", kind="mergesort")
    return ranked.groupby(by, dropna=False, sort=False).head(1).drop(columns="_distance").reset_index(drop=True)


def human_baseline(summary: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """Per replicate, the human-only teacher's metric: checkpoint 0 of its incremental (and replay) runs, which all
    start from the same human fine-tune (else a mixed run at share 0).

    Columns: the replicate column (``replicate``, or ``seed`` in older tables), ``baseline``, ``runs``, ``source``.
    """
    replicate = replicate_column(summary)
    teacher = summary[summary["model"] == "teacher"]
    rows = teacher[teacher["protocol"].isin(["incremental", "replay"]) & (teacher["checkpoint"] == 0)]
    source = "incremental checkpoint 0"
    if rows.empty:
        rows, source = teacher[(teacher["protocol"] == "mixed") & (teacher["n_synthetic"] == 0)], "mixed run at share 0"
    out = (rows.groupby(replicate)[metric].agg(["mean", "size"]).reset_index()
           .rename(columns={"mean": "baseline", "size": "runs"}))
    out["source"] = source
    return noted(out, "" if len(out) else "no human-only run (incremental checkpoint 0 or mixed share 0)")


def in_experiment(summary: pd.DataFrame, name: str) -> pd.DataFrame:
    """The rows of experiment ``name``, or every row when no row names that experiment."""
    member = summary["experiments"].fillna("").astype(str).str.split(",").map(lambda names: name in names)
    return summary[member] if member.any() else summary


def compare_share(params, experiment: str, default: float = PAPER_BEST_SHARE) -> float:
    """The share at which an experiment's conditions are compared, else ``default``.

    That is ``claims.<experiment>_share`` of the params (size_share, variety_share, consistency_share),
    or an older params file's ``experiments.<experiment>.compare_at_share``.
    """
    chosen = getattr(getattr(params, "claims", None), f"{experiment}_share", None)
    if chosen is None:
        chosen = getattr((getattr(params, "experiments", None) or {}).get(experiment), "compare_at_share", None)
    return default if chosen is None else float(chosen)


def default_protocol(frame: pd.DataFrame) -> str | None:
    """'incremental' when the frame has it, else the first protocol in sorted order (None for no rows)."""
    protocols = set(frame["protocol"].dropna()) - {"replay"}
    return "incremental" if "incremental" in protocols else (sorted(protocols)[0] if protocols else None)


def unfiltered(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the unfiltered pools ('none'), or all rows when no study condition left them unfiltered."""
    return frame[frame["filter"] == "none"] if (frame["filter"] == "none").any() else frame


def at_share(summary: pd.DataFrame, share: float, model: str = "teacher", protocol: str | None = None,
             only_unfiltered: bool = True) -> pd.DataFrame:
    """Per run (temperature, filter, replicate), the row of one protocol at the checkpoint closest to ``share``.

    Only runs with synthetic responses (when ``share`` > 0), of ``model``, of ``protocol`` (default:
    incremental where run); ``only_unfiltered`` keeps the unfiltered pools.
    """
    rows = summary[summary["model"] == model]
    rows = unfiltered(rows) if only_unfiltered else rows
    protocol = protocol or default_protocol(rows)
    rows = rows[rows["protocol"] == protocol]
    if share > 0:
        rows = rows[rows["n_synthetic"] > 0]
    picked = closest_to_share(rows, share)
    return noted(picked, "" if len(picked) else f"no {model} run with synthetic responses ({protocol})")


def describe_conditions(summary: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """Mean, SD and t-based 95% CI of ``metric`` across replicates for every condition.

    A condition is a model, protocol, temperature, filter, target share and checkpoint; ``n`` counts its replicates.
    """
    columns = [*CONDITION_KEYS, "synthetic_share", "condition_label", "n", "mean", "sd", "ci_low", "ci_high", "median"]
    frame = summary.dropna(subset=[metric]).copy()
    if frame.empty:
        return noted(pd.DataFrame(columns=columns), f"no {metric} values")
    frame["condition_label"] = frame.apply(condition_label, axis=1)
    keys = (frame.groupby("condition_label", sort=False)
            .agg(**{k: (k, "first") for k in CONDITION_KEYS}, synthetic_share=("synthetic_share", "mean"))
            .reset_index())
    described = st.describe_groups(frame, "condition_label", metric)
    out = keys.merge(described, on="condition_label")[columns]
    out = out.sort_values(["model", "protocol", "temperature", "filter", "target_share", "checkpoint"],
                          key=lambda c: c.map({"teacher": 0, "student": 1}) if c.name == "model" else c)
    note = "" if (out["n"] >= 2).any() else "one replicate per condition: SD and CI need at least 2 replicates"
    return noted(out.reset_index(drop=True), note)


def auc_by_item_table(study_dir, summary: pd.DataFrame) -> pd.DataFrame:
    """Pooled and macro-over-items test AUC of each teacher checkpoint at a share asked for (and the
    human-only checkpoint 0), per replicate: with many questions, a pooled AUC can hide items the
    teacher ranks no better than chance. One item (a single-task data set): macro equals pooled.
    """
    from synthmix.steps.metrics import auc_by_item

    columns = ["temperature", "filter", "protocol", "replicate", "checkpoint", "target_share", "pooled_auc",
               "macro_auc", "n_items", "n_items_scored"]
    teachers = summary[(summary["model"] == "teacher") & summary["target_share"].notna()]
    rows, cache = [], {}
    for record in teachers.to_dict(orient="records"):
        step = record["step"]
        if step not in cache:
            path = Path(study_dir) / step / "test_predictions.parquet"
            cache[step] = io.read_table(path) if path.is_file() else None
        predictions = cache[step]
        if predictions is None:
            continue
        at = predictions[predictions["checkpoint"] == record["checkpoint"]]
        items = at["item"] if "item" in at.columns else [""] * len(at)
        scored = auc_by_item(at["label"], at["score"], items)
        rows.append({**{k: record.get(k) for k in columns[:6]}, "pooled_auc": scored["pooled"],
                     "macro_auc": scored["macro"], "n_items": scored["n_items"],
                     "n_items_scored": scored["n_items_scored"]})
    return noted(pd.DataFrame(rows, columns=columns), "" if rows else "no teacher predictions at a share asked for")
