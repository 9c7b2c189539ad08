"""Analysis of a study: read its results tree, summarise, test, plot, diagnose, and judge the claims.

Read top to bottom:

1. **Reading the tree** -- ``collect_steps`` lists complete steps; ``summary_table`` joins them
   (generate → filter → train_teacher → distill, via the folder paths in their parameters) into
   one tidy row per model, condition, seed and checkpoint.
2. **Conditions and baselines** -- ``closest_to_share`` picks the checkpoint nearest a synthetic
   share; ``human_baseline`` is the human-only teacher of each seed (incremental checkpoint 0);
   ``in_experiment`` and ``compare_share`` select an experiment's rows and comparison share.
3. **Statistics across seeds** -- ``describe_conditions``, ``paired_vs_human`` (per condition),
   ``share_vs_human`` (per share), ``variety_frame`` with ``temperature_tests``, and
   ``filter_comparison``; each returns tidy DataFrames, and a table that cannot be computed
   carries the reason in ``table.attrs["note"]``.
4. **Figures** -- each ``plot_*`` returns ``(figure, caption)``; ``save_figure`` writes a PNG.
5. **Synthetic-data diagnostics** -- diversity, leakage of the human test set, and a classifier
   two-sample test of how far synthetic responses are from human ones.
6. **The paper's claims** -- ``claims`` turns the numbers above into verdicts with evidence.
7. **The index page** -- ``write_index`` links every rendered notebook and embeds the figures.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np
import pandas as pd

from synthmix import io
from synthmix import stats as st
from synthmix.data import normalise_text
from synthmix.diagnostics import diversity_table
from synthmix.pipeline import NOTEBOOKS, upstream_output
from synthmix.runner import MARKER

KIND_ORDER = tuple(NOTEBOOKS)  # generate, filter, train_teacher, distill, analyze
PAPER_BEST_SHARE = 0.8  # the paper's best synthetic share (80 % synthetic, 20 % human)
SHARE_TOLERANCE = 0.15  # a best share within this of PAPER_BEST_SHARE counts as "near 80 %"
ALPHA = 0.05
MIN_SEEDS = 3  # fewer paired seeds than this make a verdict inconclusive
RUN_KEYS = ("model", "protocol", "temperature", "filter", "seed")
CONDITION_KEYS = ("model", "protocol", "temperature", "filter", "target_share", "checkpoint")
METRICS = ("auc", "auc_ci_low", "auc_ci_high", "macro_f1", "macro_f1_ci_low", "macro_f1_ci_high",
           "accuracy", "kappa", "n", "n_positive")
STUDENT_EXTRAS = ("teacher_auc", "student_parameters", "teacher_parameters", "student_size_mb", "teacher_size_mb",
                  "student_latency_batch1_s", "student_latency_batch32_s", "teacher_latency_batch1_s",
                  "teacher_latency_batch32_s", "speedup_batch1", "speedup_batch32")
SUMMARY_COLUMNS = ("model", "study", "experiments", "temperature", "filter", "protocol", "target_share", "seed",
                   "checkpoint", "n_human", "n_synthetic", "synthetic_share", *METRICS, *STUDENT_EXTRAS,
                   "condition", "step", "notebook")


# =================================================================== 1. reading the tree
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
    columns = ["kind", "condition", "folder", "name", "relative", "parameters", "experiments", "seconds",
               "finished", "step", "notebook"]
    frame = pd.DataFrame(rows, columns=[*columns, "_written"])
    if not include_stale:
        frame = frame.sort_values("_written").drop_duplicates(["kind", "condition"], keep="last")
    frame = frame.drop(columns="_written")
    order = {kind: i for i, kind in enumerate(KIND_ORDER)}
    frame["_order"] = frame["kind"].map(order).fillna(len(order))
    return frame.sort_values(["_order", "condition"]).drop(columns="_order").reset_index(drop=True)


def _by_name(steps: pd.DataFrame, kind: str) -> dict[str, dict]:
    """Steps of one kind keyed by folder name (robust to a results tree that was moved)."""
    return {row["name"]: row for row in steps[steps["kind"] == kind].to_dict(orient="records")}


def _lookup(table: dict[str, dict], path) -> dict:
    return table.get(Path(str(path)).name, {}) if path else {}


def _number(value, default=np.nan) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _temperature_of(generate: dict, condition: str) -> float:
    value = _number(generate.get("parameters", {}).get("temperature")) if generate else np.nan
    if np.isnan(value) and condition.startswith("t"):  # conditions are named t<temperature>-…
        value = _number(condition[1:].split("-")[0])
    return value


def summary_table(study_dir) -> pd.DataFrame:
    """Tidy table of every metric per model (teacher/student), condition, seed and checkpoint of a study."""
    study_dir = Path(study_dir)
    steps = collect_steps(study_dir)
    generates, filters, teachers = (_by_name(steps, k) for k in ("generate", "filter", "train_teacher"))
    rows, teacher_info = [], {}
    for teacher in teachers.values():
        folder, p = Path(teacher["folder"]), teacher["parameters"]
        filtered = _lookup(filters, p.get("filtered_dir"))
        generate = _lookup(generates, p.get("pool_dir") or filtered.get("parameters", {}).get("pool_dir"))
        share = _number(p.get("synthetic_share"))
        keys = {
            "study": study_dir.name,
            "experiments": ",".join(sorted(set(teacher["experiments"]))),
            "temperature": _temperature_of(generate, teacher["condition"]),
            "filter": filtered.get("parameters", {}).get("method", "unknown"),
            "protocol": p.get("protocol", ""),
            "target_share": share if share >= 0 else np.nan,
            "condition": teacher["condition"],
        }
        metrics = io.read_table(folder / "metrics.parquet").sort_values("checkpoint")
        for record in metrics.to_dict(orient="records"):
            rows.append({**keys, "model": "teacher", **record, "seed": int(record.get("seed", p.get("seed", -1))),
                         "step": teacher["relative"], "notebook": teacher["notebook"]})
        teacher_info[teacher["name"]] = (keys, metrics.iloc[-1].to_dict() if len(metrics) else {}, p)
    for distill in _by_name(steps, "distill").values():
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
                     "seed": int(student.get("seed", p.get("seed", teacher_p.get("seed", -1)))),
                     **{k: final.get(k, np.nan) for k in ("checkpoint", "n_human", "n_synthetic", "synthetic_share")},
                     "step": distill["relative"], "notebook": distill["notebook"]})
    frame = pd.DataFrame(rows)
    extra = [c for c in frame.columns if c not in SUMMARY_COLUMNS]
    frame = frame.reindex(columns=[*SUMMARY_COLUMNS, *extra])
    for column in ("temperature", "target_share", "synthetic_share", *METRICS, *STUDENT_EXTRAS):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame["model"] = pd.Categorical(frame["model"], ["teacher", "student"])
    frame = frame.sort_values(["model", "temperature", "filter", "protocol", "target_share", "seed", "checkpoint"],
                              na_position="first")
    frame["model"] = frame["model"].astype(str)
    return frame.reset_index(drop=True)


# ============================================================ 2. conditions and baselines
def _noted(frame: pd.DataFrame, note: str = "") -> pd.DataFrame:
    frame.attrs["note"] = note
    return frame


def _label(row) -> str:
    """A readable name for one condition (without the seed)."""
    protocol = row["protocol"]
    if protocol == "mixed":
        share = f"mixed {row['target_share']:.0%}"
    else:
        share = f"{protocol} ckpt {int(row['checkpoint'])}"
    return f"{row['model']} · t={row['temperature']:g} · {row['filter']} · {share}"


def closest_to_share(frame: pd.DataFrame, share: float, by=RUN_KEYS) -> pd.DataFrame:
    """Per run, the row whose synthetic share is closest to ``share``.

    A run is one value of ``by`` (model, protocol, temperature, filter, seed).

    Ties go to the earlier checkpoint; for the mixed protocol this picks the run whose share is closest.
    """
    if frame.empty:
        return frame.copy()
    by = [c for c in by if c in frame.columns]
    ranked = frame.assign(_distance=(frame["synthetic_share"] - share).abs())
    ranked = ranked.sort_values([*by, "_distance", "checkpoint"], na_position="last", kind="mergesort")
    return ranked.groupby(by, dropna=False, sort=False).head(1).drop(columns="_distance").reset_index(drop=True)


def human_baseline(summary: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """Per seed, the human-only teacher's metric: incremental checkpoint 0 (else a mixed run at share 0)."""
    teacher = summary[summary["model"] == "teacher"]
    rows = teacher[(teacher["protocol"] == "incremental") & (teacher["checkpoint"] == 0)]
    source = "incremental checkpoint 0"
    if rows.empty:
        rows, source = teacher[(teacher["protocol"] == "mixed") & (teacher["n_synthetic"] == 0)], "mixed run at share 0"
    out = (rows.groupby("seed")[metric].agg(["mean", "size"]).reset_index()
           .rename(columns={"mean": "baseline", "size": "runs"}))
    out["source"] = source
    return _noted(out, "" if len(out) else "no human-only run (incremental checkpoint 0 or mixed share 0)")


def in_experiment(summary: pd.DataFrame, name: str) -> pd.DataFrame:
    """The rows of experiment ``name``, or every row when no row names that experiment."""
    member = summary["experiments"].fillna("").astype(str).str.split(",").map(lambda names: name in names)
    return summary[member] if member.any() else summary


def compare_share(params, experiment: str, default: float = PAPER_BEST_SHARE) -> float:
    """The share at which an experiment's conditions are compared (its ``compare_at_share``), else ``default``."""
    chosen = getattr((getattr(params, "experiments", None) or {}).get(experiment), "compare_at_share", None)
    return default if chosen is None else float(chosen)


def _default_protocol(frame: pd.DataFrame) -> str | None:
    protocols = set(frame["protocol"].dropna())
    return "incremental" if "incremental" in protocols else (sorted(protocols)[0] if protocols else None)


def _unfiltered(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the unfiltered pools ('none'), or all rows when no study condition left them unfiltered."""
    return frame[frame["filter"] == "none"] if (frame["filter"] == "none").any() else frame


# ============================================================== 3. statistics across seeds
def describe_conditions(summary: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """Mean, SD and t-based 95% CI of ``metric`` across seeds for every condition.

    A condition is a model, protocol, temperature, filter, target share and checkpoint.
    """
    frame = summary.dropna(subset=[metric]).copy()
    if frame.empty:
        return _noted(pd.DataFrame(columns=[*CONDITION_KEYS, "synthetic_share", "n", "mean", "sd", "ci_low",
                                            "ci_high"]), f"no {metric} values")
    frame["condition_label"] = frame.apply(_label, axis=1)
    keys = (frame.groupby("condition_label", sort=False)
            .agg(**{k: (k, "first") for k in CONDITION_KEYS}, synthetic_share=("synthetic_share", "mean"))
            .reset_index())
    described = st.describe_groups(frame, "condition_label", metric)
    out = keys.merge(described, on="condition_label").drop(columns=["se"])
    out = out.sort_values(["model", "protocol", "temperature", "filter", "target_share", "checkpoint"],
                          key=lambda c: c.map({"teacher": 0, "student": 1}) if c.name == "model" else c)
    note = "" if (out["n"] >= 2).any() else "one seed per condition: SD and CI need at least 2 seeds"
    return _noted(out.reset_index(drop=True), note)


def paired_vs_human(summary: pd.DataFrame, metric: str = "auc", model: str = "teacher") -> pd.DataFrame:
    """Each condition minus the human-only baseline of the same seed.

    Mean difference with its 95% CI, paired t and Wilcoxon p, Cohen's d_z, Holm-corrected p.
    """
    base = human_baseline(summary, metric)
    columns = [*CONDITION_KEYS, "synthetic_share", "condition", "n_pairs", "mean_baseline", "mean_condition",
               "mean_diff", "sd_diff", "ci_low", "ci_high", "t", "p_ttest", "p_wilcoxon", "cohens_dz", "p_holm"]
    rows = summary[(summary["model"] == model) & (summary["n_synthetic"] > 0)].dropna(subset=[metric])
    if base.empty or rows.empty:
        return _noted(pd.DataFrame(columns=columns), base.attrs["note"] or "no condition with synthetic responses")
    rows = rows.assign(condition=rows.apply(_label, axis=1))
    long = pd.concat([rows[["seed", "condition", metric]],
                      base.rename(columns={"baseline": metric}).assign(condition="human only")[
                          ["seed", "condition", metric]]])
    tested = st.paired_vs_baseline(long, "condition", metric, "seed", "human only")
    keys = (rows.groupby("condition", sort=False)
            .agg(**{k: (k, "first") for k in CONDITION_KEYS}, synthetic_share=("synthetic_share", "mean"))
            .reset_index())
    out = keys.merge(tested, on="condition")[columns]
    note = "" if (out["n_pairs"] >= 2).any() else "one seed per condition: a paired test needs at least 2 seeds"
    return _noted(out.sort_values(["protocol", "temperature", "filter", "target_share", "checkpoint"])
                  .reset_index(drop=True), note)


def share_vs_human(summary: pd.DataFrame, metric: str = "auc", model: str = "teacher") -> pd.DataFrame:
    """Each synthetic share minus the human-only baseline of the same seed, Holm-corrected over shares.

    Unfiltered pools; a seed's value at a share is its mean over temperatures.
    """
    base = human_baseline(summary, metric)
    columns = ["protocol", "checkpoint", "target_share", "synthetic_share", "temperatures", "share_point", "n_pairs",
               "mean_baseline", "mean_condition", "mean_diff", "sd_diff", "ci_low", "ci_high", "t", "p_ttest",
               "p_wilcoxon", "cohens_dz", "p_holm"]
    rows = _unfiltered(summary[(summary["model"] == model) & (summary["n_synthetic"] > 0)]).dropna(subset=[metric])
    if base.empty or rows.empty:
        return _noted(pd.DataFrame(columns=columns), base.attrs["note"] or "no condition with synthetic responses")
    rows = rows.assign(share_point=[f"mixed {s:.0%}" if p == "mixed" else f"{p} ckpt {int(c)}"
                                    for p, s, c in zip(rows["protocol"], rows["target_share"], rows["checkpoint"])])
    per_seed = rows.groupby(["share_point", "seed"], as_index=False)[metric].mean()
    long = pd.concat([per_seed, base.rename(columns={"baseline": metric}).assign(share_point="human only")[
        ["share_point", "seed", metric]]])
    tested = st.paired_vs_baseline(long, "share_point", metric, "seed", "human only").rename(
        columns={"condition": "share_point"})
    keys = rows.groupby("share_point", as_index=False).agg(
        protocol=("protocol", "first"), checkpoint=("checkpoint", "first"), target_share=("target_share", "first"),
        synthetic_share=("synthetic_share", "mean"), temperatures=("temperature", "nunique"))
    out = keys.merge(tested, on="share_point")[columns].sort_values(["protocol", "synthetic_share"])
    note = "" if (out["n_pairs"] >= 2).any() else "one seed per share: a paired test needs at least 2 seeds"
    return _noted(out.reset_index(drop=True), note)


def variety_frame(summary: pd.DataFrame, share: float = PAPER_BEST_SHARE, metric: str = "auc",
                  model: str = "teacher", protocol: str | None = None) -> pd.DataFrame:
    """One row per temperature and seed at the checkpoint closest to ``share`` (unfiltered pools).

    ``gain`` is the metric minus that seed's human-only baseline.
    """
    rows = _unfiltered(summary[summary["model"] == model])
    protocol = protocol or _default_protocol(rows)
    rows = rows[rows["protocol"] == protocol]
    if share > 0:
        rows = rows[rows["n_synthetic"] > 0]
    picked = closest_to_share(rows, share)
    base = human_baseline(summary, metric)
    picked = picked.merge(base[["seed", "baseline"]], on="seed", how="left")
    picked["gain"] = picked[metric] - picked["baseline"]
    return _noted(picked, "" if len(picked) else f"no {model} run with synthetic responses ({protocol})")


def temperature_tests(variety: pd.DataFrame, metric: str = "auc") -> dict[str, pd.DataFrame]:
    """Tests across temperatures at a fixed share (a ``variety_frame``).

    Returns tables 'describe' (per temperature), 'omnibus' (Brown–Forsythe, Welch ANOVA,
    Kruskal–Wallis), 'games_howell' and 'mannwhitney' (Holm-corrected pairs).
    """
    frame = variety.dropna(subset=[metric])
    describe = st.describe_groups(frame, "temperature", metric) if len(frame) else pd.DataFrame(
        columns=["temperature", "n", "mean", "sd", "se", "ci_low", "ci_high", "median"])
    if len(frame):
        frame = frame.reindex(columns=[*frame.columns, *{"synthetic_share", "gain"} - set(frame.columns)])
        extra = frame.groupby("temperature").agg(
            synthetic_share=("synthetic_share", "mean"), mean_gain=("gain", "mean"),
            min_gain=("gain", "min"), worse_than_baseline=("gain", lambda g: int((g < 0).sum())))
        describe = describe.merge(extra.reset_index(), on="temperature", how="left")
    groups = describe["temperature"].nunique() if len(describe) else 0
    enough = int((describe["n"] >= 2).sum()) if len(describe) else 0
    why = ("" if groups >= 2 and enough >= 2 else
           f"needs at least 2 temperatures with 2+ seeds each; have {groups} temperature(s), {enough} with 2+ seeds")
    results = [("Brown–Forsythe (equal variances)", st.brown_forsythe(frame, "temperature", metric).as_dict()),
               ("Welch ANOVA (equal means)", st.welch_anova(frame, "temperature", metric).as_dict()),
               ("Kruskal–Wallis (equal distributions)", st.kruskal_wallis(frame, "temperature", metric).as_dict())]
    omnibus = pd.DataFrame([{
        "test": name, "statistic": r["statistic"], "df1": r.get("df_between", r.get("df1", r.get("df"))),
        "df2": r.get("df_within", r.get("df2", np.nan)), "p_value": r["p_value"], "n_groups": r["n_groups"],
        "n_total": r["n_total"], "note": why if np.isnan(r["p_value"]) else ""} for name, r in results])
    return {"describe": _noted(describe, why),
            "omnibus": _noted(omnibus, why),
            "games_howell": _noted(st.games_howell(frame, "temperature", metric), why),
            "mannwhitney": _noted(st.pairwise_mannwhitney_holm(frame, "temperature", metric), why)}


def filter_comparison(summary: pd.DataFrame, share: float = PAPER_BEST_SHARE, metric: str = "auc",
                      model: str = "teacher", protocol: str | None = None) -> pd.DataFrame:
    """Filtered minus unfiltered ``metric``, paired by seed, at the checkpoint closest to ``share``.

    One row per method and temperature, and one pooled over temperatures (pairs: temperature x
    seed); Holm correction within each of the two families.
    """
    columns = ["method", "scope", "temperature", "n_pairs", "mean_unfiltered", "mean_filtered", "mean_diff",
               "sd_diff", "ci_low", "ci_high", "t", "p_ttest", "p_wilcoxon", "cohens_dz", "p_holm",
               "share_unfiltered", "share_filtered"]
    rows = summary[summary["model"] == model]
    protocol = protocol or _default_protocol(rows)
    rows = rows[rows["protocol"] == protocol]
    rows = closest_to_share(rows[rows["n_synthetic"] > 0] if share > 0 else rows, share).dropna(subset=[metric])
    methods = sorted(set(rows["filter"]) - {"none"})
    if "none" not in set(rows["filter"]) or not methods:
        present = ", ".join(sorted(set(rows["filter"]))) or "none run"
        return _noted(pd.DataFrame(columns=columns),
                      f"needs both unfiltered ('none') and filtered runs; filters present: {present}")
    out = []
    for method in methods:
        pair = rows[rows["filter"].isin(["none", method])].copy()
        shares = pair.groupby("filter")["synthetic_share"].mean()
        scopes = [(t, "per temperature", pair[pair["temperature"] == t]) for t in sorted(pair["temperature"].unique())]
        pooled = pair.assign(seed=pair["temperature"].astype(str) + "|" + pair["seed"].astype(str))
        scopes.append((np.nan, "pooled", pooled))
        for temperature, scope, sub in scopes:
            if not (sub["filter"] == "none").any():
                continue
            tested = st.paired_vs_baseline(sub, "filter", metric, "seed", "none")
            for record in tested.to_dict(orient="records"):
                out.append({"method": method, "scope": scope, "temperature": temperature, **record,
                            "mean_unfiltered": record["mean_baseline"], "mean_filtered": record["mean_condition"],
                            "share_unfiltered": shares.get("none", np.nan),
                            "share_filtered": shares.get(method, np.nan)})
    frame = pd.DataFrame(out).reindex(columns=columns)
    for scope in ("per temperature", "pooled"):  # Holm within each family
        mask = frame["scope"] == scope
        frame.loc[mask, "p_holm"] = st.holm(frame.loc[mask, "p_ttest"].to_numpy(dtype=float))
    note = "" if (frame["n_pairs"] >= 2).any() else "one seed per condition: a paired test needs at least 2 seeds"
    return _noted(frame, note)


# ============================================================================ 4. figures
def _plt():
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    return plt, sns


def _message_figure(title: str, message: str):
    plt, _ = _plt()
    fig, ax = plt.subplots(figsize=(7, 2.5))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=11, transform=ax.transAxes)
    return fig


def _palette(values):
    _, sns = _plt()
    values = sorted(values)
    return dict(zip(values, sns.color_palette("viridis", max(len(values), 1))))


def _seeds_text(frame: pd.DataFrame) -> str:
    counts = frame.groupby([c for c in ("protocol", "temperature", "filter", "checkpoint", "target_share")
                            if c in frame.columns], dropna=False)["seed"].nunique()
    low, high = (int(counts.min()), int(counts.max())) if len(counts) else (0, 0)
    return f"{low} seed{'s' if low != 1 else ''}" if low == high else f"{low}–{high} seeds"


def save_figure(fig, path, caption: str = "") -> Path:
    """Save ``fig`` as a PNG atomically (and its caption beside it as ``.txt`` when given)."""
    path = Path(path)
    with io.atomic_path(path) as temporary:
        fig.savefig(temporary, format="png", dpi=120, bbox_inches="tight")
    if caption:
        io.write_text(path.with_suffix(".txt"), caption + "\n")
    return path


def plot_auc_by_share(summary: pd.DataFrame, metric: str = "auc", model: str = "teacher"):
    """Mean test AUC (95% CI over seeds) by synthetic share, one line per temperature, and the human-only baseline."""
    rows = _unfiltered(summary[(summary["model"] == model)]).dropna(subset=[metric])
    if rows.empty:
        return _message_figure("AUC by synthetic share", f"No {model} results to plot."), f"No {model} results."
    plt, _ = _plt()
    protocols = sorted(rows["protocol"].unique())
    fig, axes = plt.subplots(1, len(protocols), figsize=(6.5 * len(protocols), 4.5), squeeze=False, sharey=True)
    colours = _palette(rows["temperature"].unique())
    base = human_baseline(summary, metric)
    for ax, protocol in zip(axes[0], protocols):
        sub = rows[rows["protocol"] == protocol]
        described = describe_conditions(sub, metric)
        for temperature, line in described.groupby("temperature"):
            line = line.sort_values("synthetic_share")
            ax.plot(line["synthetic_share"], line["mean"], "o-", color=colours[temperature],
                    label=f"t = {temperature:g}")
            ax.fill_between(line["synthetic_share"], line["ci_low"], line["ci_high"], color=colours[temperature],
                            alpha=0.2, linewidth=0)
        if len(base):
            ax.axhline(base["baseline"].mean(), color="black", linestyle="--", linewidth=1, label="human only")
        ax.set(title=f"{protocol} protocol", xlabel="synthetic share of training data", ylabel=f"test {metric.upper()}")
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
        ax.legend(fontsize=9)
    fig.tight_layout()
    filters = ", ".join(sorted(rows["filter"].unique()))
    caption = (f"{model.capitalize()} test {metric.upper()} against the synthetic share of its training data, "
               f"one line per sampling temperature (filter: {filters}; mean and 95% CI over {_seeds_text(rows)}); "
               f"the dashed line is the human-only baseline.")
    return fig, caption


def plot_seed_spread(summary: pd.DataFrame, share: float = PAPER_BEST_SHARE, metric: str = "auc"):
    """Per-seed AUC by temperature at the checkpoint closest to ``share``, and the human-only baseline."""
    variety = variety_frame(summary, share, metric)
    if variety.empty:
        return _message_figure("Spread across seeds", variety.attrs["note"]), variety.attrs["note"]
    plt, _ = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    order = sorted(variety["temperature"].unique())
    colours = _palette(order)
    values = [variety.loc[variety["temperature"] == t, metric].dropna().to_numpy() for t in order]
    ax.boxplot(values, positions=range(len(order)), widths=0.5, showfliers=False,
               medianprops={"color": "black"}, boxprops={"color": "grey"})
    jitter = np.random.default_rng(0)
    for i, (t, v) in enumerate(zip(order, values)):
        ax.scatter(i + jitter.uniform(-0.08, 0.08, v.size), v, color=colours[t], s=40, zorder=3)
    ax.set_xticks(range(len(order)), [f"{t:g}" for t in order])
    base = human_baseline(summary, metric)
    if len(base):
        ax.axhline(base["baseline"].mean(), color="black", linestyle="--", linewidth=1, label="human only")
        ax.legend(fontsize=9)
    achieved = variety["synthetic_share"].mean()
    ax.set(xlabel="sampling temperature", ylabel=f"test {metric.upper()}",
           title=f"Spread across seeds at ≈{achieved:.0%} synthetic")
    fig.tight_layout()
    sds = variety.groupby("temperature")[metric].std()
    caption = (f"Test {metric.upper()} of each seed by sampling temperature at the checkpoint closest to {share:.0%} "
               f"synthetic (achieved {achieved:.0%}; {variety['protocol'].iloc[0]}, unfiltered; "
               f"{_seeds_text(variety)}); SD across seeds "
               + ", ".join(f"t={t:g}: {s:.3f}" if pd.notna(s) else f"t={t:g}: n/a" for t, s in sds.items())
               + "; dashed: human-only baseline.")
    return fig, caption


def plot_filter_comparison(summary: pd.DataFrame, share: float = PAPER_BEST_SHARE, metric: str = "auc"):
    """Mean AUC (95% CI) of filtered and unfiltered pools per temperature at the checkpoint closest to ``share``."""
    rows = summary[summary["model"] == "teacher"]
    protocol = _default_protocol(rows)
    rows = rows[(rows["protocol"] == protocol) & (rows["n_synthetic"] > 0)]
    rows = closest_to_share(rows, share).dropna(subset=[metric])
    if rows.empty:
        message = "No teacher run with synthetic responses to compare."
        return _message_figure("Filtered vs unfiltered", message), message
    plt, _ = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    temps = sorted(rows["temperature"].unique())
    methods = sorted(rows["filter"].unique(), key=lambda m: (m != "none", m))
    width = 0.7 / max(len(methods), 1)
    colours = dict(zip(methods, ["#888888", "#d95f02", "#1b9e77", "#7570b3"]))
    for j, method in enumerate(methods):
        described = st.describe_groups(rows[rows["filter"] == method], "temperature", metric)
        x = np.array([temps.index(t) for t in described["temperature"]]) + (j - (len(methods) - 1) / 2) * width
        err = np.vstack([described["mean"] - described["ci_low"], described["ci_high"] - described["mean"]])
        ax.errorbar(x, described["mean"], yerr=np.nan_to_num(err), fmt="o", color=colours[method], capsize=4,
                    markersize=8, label=method)
        seeds = rows[rows["filter"] == method]
        ax.scatter([temps.index(t) + (j - (len(methods) - 1) / 2) * width for t in seeds["temperature"]],
                   seeds[metric], color=colours[method], alpha=0.35, s=18)
    base = human_baseline(summary, metric)
    if len(base):
        ax.axhline(base["baseline"].mean(), color="black", linestyle="--", linewidth=1, label="human only")
    ax.set_xticks(range(len(temps)), [f"{t:g}" for t in temps])
    ax.set(xlabel="sampling temperature", ylabel=f"test {metric.upper()}",
           title="Filtered vs unfiltered synthetic pools")
    ax.legend(fontsize=9)
    fig.tight_layout()
    caption = (f"Test {metric.upper()} with unfiltered and filtered synthetic pools per temperature at the checkpoint "
               f"closest to {share:.0%} synthetic ({protocol}; mean and 95% CI over {_seeds_text(rows)}, "
               f"seeds as dots; "
               f"filters: {', '.join(methods)}).")
    return fig, caption


def plot_teacher_vs_student(summary: pd.DataFrame):
    """Teacher vs distilled student: test AUC, size on disk and CPU latency per response."""
    students = summary[summary["model"] == "student"]
    if students.empty:
        return _message_figure("Teacher vs student", "No distilled student in this study."), "No student results."
    plt, _ = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    colours = {"teacher": "#4c72b0", "student": "#dd8452"}
    aucs = {"teacher": students["teacher_auc"], "student": students["auc"]}
    for i, (who, values) in enumerate(aucs.items()):
        values = values.dropna()
        axes[0].bar(i, values.mean(), color=colours[who], yerr=values.std() if len(values) > 1 else 0, capsize=5)
        axes[0].scatter(np.full(len(values), i), values, color="black", s=12, zorder=3)
    axes[0].set_xticks([0, 1], ["teacher", "student"])
    low = np.nanmin([aucs["teacher"].min(), aucs["student"].min()])
    axes[0].set(ylabel="test AUC", title="Quality", ylim=(max(0.0, low - 0.1), 1.0))
    sizes = [students["teacher_size_mb"].mean(), students["student_size_mb"].mean()]
    axes[1].bar([0, 1], sizes, color=[colours["teacher"], colours["student"]])
    axes[1].set_xticks([0, 1], ["teacher", "student"])
    axes[1].set(ylabel="MB on disk", title="Size")
    for j, batch in enumerate((1, 32)):
        for i, who in enumerate(("teacher", "student")):
            value = students[f"{who}_latency_batch{batch}_s"].mean() * 1000
            axes[2].bar(j + (i - 0.5) * 0.38, value, width=0.38, color=colours[who], label=who if j == 0 else None)
    axes[2].set_xticks([0, 1], ["batch 1", "batch 32"])
    axes[2].set(ylabel="ms per response (CPU)", title="Latency")
    axes[2].legend(fontsize=9)
    fig.tight_layout()
    speed = students["speedup_batch1"].mean()
    caption = (f"Teacher vs distilled student over {len(students)} distillation run(s): test AUC (mean ± SD, runs as "
               f"dots), size on disk and CPU latency per response; the student is {speed:.1f}x faster at batch 1.")
    return fig, caption


def grader_agreement_table(study_dir) -> pd.DataFrame:
    """Per filter method and temperature: responses kept and graded, and the grades' agreement with intended labels.

    Agreement is Cohen's kappa, accuracy, and precision, recall and F1 for label 1 (graded responses only).
    """
    from synthmix.metrics import grader_agreement

    rows = []
    for step in _by_name(collect_steps(study_dir), "filter").values():
        folder, method = Path(step["folder"]), step["parameters"].get("method", "")
        grades = io.read_table(folder / "grades.parquet") if (folder / "grades.parquet").is_file() else pd.DataFrame()
        for temperature, group in grades.groupby("temperature") if len(grades) else []:
            usable = group[group["status"] == "graded"]
            agreement = {}
            if len(usable):
                agreement = grader_agreement(usable["label"].astype(int).to_numpy(),
                                             usable["grade"].astype(int).to_numpy())
            rows.append({"method": method, "temperature": float(temperature), "responses": len(group),
                         "kept": int(group["kept"].sum()), "unparseable": int((group["status"] == "unparseable").sum()),
                         "graded": len(usable), **{k: agreement.get(k, np.nan)
                                                   for k in ("kappa", "accuracy", "precision", "recall", "f1")}})
    columns = ["method", "temperature", "responses", "kept", "unparseable", "graded", "kappa", "accuracy",
               "precision", "recall", "f1"]
    frame = pd.DataFrame(rows, columns=columns).sort_values(["method", "temperature"]).reset_index(drop=True)
    graded = (frame["graded"] > 0).any()
    return _noted(frame, "" if graded else "no filter graded the pools ('none' keeps every response)")


def plot_grader_agreement(agreement: pd.DataFrame):
    """The filter's agreement (Cohen's kappa, accuracy) with the intended labels, per temperature and method."""
    graded = agreement[agreement["graded"] > 0] if len(agreement) else agreement
    if graded.empty:
        message = "No filter graded the pools ('none' keeps every response): no agreement to show."
        return _message_figure("Grader agreement with intended labels", message), message
    plt, sns = _plt()
    long = graded.melt(id_vars=["method", "temperature"], value_vars=["kappa", "accuracy"], var_name="measure")
    long["temp"] = long["temperature"].map(lambda t: f"{t:g}")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, measure in zip(axes, ("kappa", "accuracy")):
        sns.barplot(data=long[long["measure"] == measure], x="temp", y="value", hue="method", ax=ax)
        ax.set(xlabel="sampling temperature", ylabel=measure, title=f"{measure} with intended labels",
               ylim=(-0.1, 1.05))
        ax.legend(title="method", fontsize=9, loc="lower right")
    fig.tight_layout()
    caption = ("Agreement of the filter's grades with the labels the generator was asked to write, per sampling "
               f"temperature (Cohen's kappa and accuracy; {int(graded['graded'].sum())} graded responses, methods: "
               f"{', '.join(sorted(graded['method'].unique()))}).")
    return fig, caption


# ================================================================ 5. synthetic-data diagnostics
def synthetic_pools(study_dir) -> pd.DataFrame:
    """All generated (unfiltered) synthetic responses of a study, one row each, with their temperature."""
    frames = []
    for step in _by_name(collect_steps(study_dir), "generate").values():
        pool = io.read_table(Path(step["folder"]) / "pool.parquet")
        if "temperature" not in pool.columns:
            pool["temperature"] = _temperature_of(step, step["condition"])
        frames.append(pool)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["text", "label", "temperature"])


def diversity_by_temperature(pools: pd.DataFrame, human: pd.DataFrame | None = None) -> pd.DataFrame:
    """Distinct-1/2, mean pairwise Jaccard similarity and length per temperature, and for ``human`` as a reference."""
    parts = []
    if human is not None and len(human):
        parts.append(diversity_table(human.assign(source="human"), by="source").assign(temperature=np.nan))
    if len(pools):
        table = diversity_table(pools, by="temperature")
        parts.append(table.assign(source=table["temperature"].map(lambda t: f"synthetic t={t:g}")))
    if not parts:
        return _noted(pd.DataFrame(), "no responses")
    out = pd.concat(parts, ignore_index=True)
    return out[["source", "temperature", *[c for c in out.columns if c not in ("source", "temperature")]]]


def _char_tfidf(texts: list[str]):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=True).fit(texts)


def near_copies(synthetic: list[str], reference: list[str], threshold: float = 0.9) -> pd.DataFrame:
    """Synthetic texts that nearly copy a reference text, with the reference text each copies.

    A near copy has a character 3–5-gram TF-IDF cosine ≥ ``threshold``, or the same normalised text (``exact``).
    """
    columns = ["synthetic", "nearest", "similarity", "exact"]
    synthetic, reference = [str(t) for t in synthetic], [str(t) for t in reference]
    if not synthetic or not reference:
        return pd.DataFrame(columns=columns)
    vectorizer = _char_tfidf(synthetic + reference)
    left, right = vectorizer.transform(synthetic), vectorizer.transform(reference).T
    nearest, best = np.zeros(len(synthetic), dtype=int), np.zeros(len(synthetic))
    for start in range(0, len(synthetic), 1000):  # blocks keep the dense similarity matrix small
        block = (left[start:start + 1000] @ right).toarray()
        nearest[start:start + 1000] = block.argmax(axis=1)
        best[start:start + 1000] = block.max(axis=1)
    normal = {normalise_text(t): t for t in reference}
    rows = []
    for i, text in enumerate(synthetic):
        exact = normalise_text(text) in normal
        if exact or best[i] >= threshold:
            rows.append({"synthetic": text, "nearest": normal.get(normalise_text(text), reference[nearest[i]]),
                         "similarity": 1.0 if exact else float(best[i]), "exact": exact})
    return pd.DataFrame(rows, columns=columns)


def leakage(pools: pd.DataFrame, test: pd.DataFrame, threshold: float = 0.9) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Synthetic responses that nearly copy a human test response: (counts per temperature, examples)."""
    tables, examples = [], []
    for temperature, group in pools.groupby("temperature"):
        copies = near_copies(group["text"].tolist(), test["text"].tolist(), threshold)
        tables.append({"temperature": temperature, "responses": len(group), "near_copies": len(copies),
                       "exact_copies": int(copies["exact"].sum()) if len(copies) else 0,
                       "near_copy_share": len(copies) / len(group) if len(group) else np.nan})
        examples.append(copies.assign(temperature=temperature))
    table = pd.DataFrame(tables, columns=["temperature", "responses", "near_copies", "exact_copies", "near_copy_share"])
    found = pd.concat(examples, ignore_index=True) if examples else pd.DataFrame()
    return _noted(table, f"near copy: char 3–5-gram TF-IDF cosine ≥ {threshold} or equal normalised text"), found


def two_sample_auc(human_texts, synthetic_texts, folds: int = 5, seed: int = 0) -> dict:
    """Classifier two-sample test: cross-validated AUC of a TF-IDF logistic regression telling the two apart.

    0.5 means indistinguishable; nan when either side has fewer than 2 texts.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    human, synthetic = [str(t) for t in human_texts], [str(t) for t in synthetic_texts]
    k = min(folds, len(human), len(synthetic))
    out = {"auc": np.nan, "auc_sd": np.nan, "folds": k, "n_human": len(human), "n_synthetic": len(synthetic)}
    if k < 2:
        return out
    texts, labels = human + synthetic, np.r_[np.zeros(len(human)), np.ones(len(synthetic))]
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          LogisticRegression(max_iter=2000, C=1.0))
    scores = cross_val_score(model, texts, labels, cv=StratifiedKFold(k, shuffle=True, random_state=seed),
                             scoring="roc_auc")
    return {**out, "auc": float(np.mean(scores)), "auc_sd": float(np.std(scores, ddof=1))}


def distance_by_temperature(pools: pd.DataFrame, human: pd.DataFrame, folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """Per temperature, the two-sample AUC of human training responses vs that temperature's synthetic responses."""
    rows = [{"temperature": t, **two_sample_auc(human["text"], group["text"], folds, seed)}
            for t, group in pools.groupby("temperature")]
    return _noted(pd.DataFrame(rows, columns=["temperature", "auc", "auc_sd", "folds", "n_human", "n_synthetic"]),
                  "cross-validated AUC of a TF-IDF logistic regression; 0.5 = indistinguishable from human")


# ================================================================== 6. the paper's claims
def _p(p: float) -> str:
    return "p n/a" if not np.isfinite(p) else ("p < 0.001" if p < 0.001 else f"p = {p:.3f}")


def _significant_gain(row, alpha: float) -> bool:
    """A positive paired difference with Holm p < alpha (or the same positive difference on every seed)."""
    constant = row["sd_diff"] == 0 and row["n_pairs"] >= 2
    return bool(row["mean_diff"] > 0 and (row["p_holm"] < alpha or constant))


def _claim(claim: str, supported, evidence: str) -> dict:
    return {"claim": claim, "supported": supported, "evidence": evidence}


def _claim_size(shares: pd.DataFrame, alpha: float, min_seeds: int) -> dict:
    claim = "Augmenting human data with synthetic responses helps; best near 80% synthetic / 20% human."
    if shares.empty:
        return _claim(claim, None, f"Inconclusive: {shares.attrs.get('note') or 'no paired comparison'}.")
    enough = shares[shares["n_pairs"] >= min_seeds]
    if enough.empty:
        return _claim(claim, None, f"Inconclusive: at most {int(shares['n_pairs'].max())} seed(s) pair a share with "
                                   f"the human-only baseline; at least {min_seeds} are needed.")
    best = enough.loc[enough["mean_condition"].idxmax()]
    helps = _significant_gain(best, alpha)
    near = bool(abs(best["synthetic_share"] - PAPER_BEST_SHARE) <= SHARE_TOLERANCE)
    largest = float(shares["synthetic_share"].max())
    tested = largest >= PAPER_BEST_SHARE - SHARE_TOLERANCE  # was a share near 80 % run at all?
    evidence = (f"Best mean AUC {best['mean_condition']:.3f} at {best['synthetic_share']:.0%} synthetic "
                f"({best['share_point']}, mean over {int(best['temperatures'])} temperature(s), unfiltered) vs "
                f"{best['mean_baseline']:.3f} human-only over {int(best['n_pairs'])} seeds: {best['mean_diff']:+.3f} "
                f"(95% CI {best['ci_low']:+.3f} to {best['ci_high']:+.3f}), Holm-corrected paired {_p(best['p_holm'])} "
                f"over {len(shares)} shares (largest run: {largest:.0%}); ")
    if helps and near:
        return _claim(claim, True, evidence + "a significant gain, at a share near the paper's 80%.")
    if helps and not tested:
        return _claim(claim, None, evidence + "a significant gain, but inconclusive on the best share: no share "
                                              "near 80% was run.")
    if helps:
        return _claim(claim, False, evidence + "a significant gain, but at a share far from the paper's 80%.")
    return _claim(claim, False, evidence + f"not a significant gain at alpha = {alpha}"
                                + ("." if tested else " at the shares run (none near 80%)."))


def _claim_temperature(temperature: dict, alpha: float, min_seeds: int) -> dict:
    claim = "Temperature 0.3 gives stable but smaller gains; 0.7 and above are more variable and sometimes worse."
    described, omnibus = temperature["describe"], temperature["omnibus"]
    if described.empty:
        return _claim(claim, None, f"Inconclusive: {described.attrs.get('note') or 'no runs at the variety share'}.")
    temps = described["temperature"]
    low = described[(temps - 0.3).abs() < 0.05]
    high = described[temps >= 0.7 - 1e-9]
    if low.empty or high.empty:
        return _claim(claim, None, f"Inconclusive: needs temperature 0.3 and one of 0.7 or above; have "
                                   f"{', '.join(f'{t:g}' for t in temps)}.")
    low = low.iloc[0]
    if low["n"] < min_seeds or (high["n"] < min_seeds).any():
        return _claim(claim, None, f"Inconclusive: {int(min(low['n'], high['n'].min()))} seed(s) at some temperature; "
                                   f"at least {min_seeds} are needed to compare spreads.")
    sd_high = float(np.sqrt((high["sd"] ** 2).mean()))
    bf = omnibus[omnibus["test"].str.startswith("Brown–Forsythe")].iloc[0]
    gain_low = low.get("mean_gain", np.nan)
    gain_high = (high["mean_gain"] * high["n"]).sum() / high["n"].sum() if "mean_gain" in high else np.nan
    worse = int(high["worse_than_baseline"].sum()) if "worse_than_baseline" in high else 0
    evidence = (f"At ≈{described['synthetic_share'].mean():.0%} synthetic, AUC SD across seeds is {low['sd']:.4f} at "
                f"t=0.3 vs {sd_high:.4f} at t≥0.7 ({', '.join(f'{t:g}' for t in high['temperature'])}); "
                f"Brown–Forsythe across {int(bf['n_groups'])} temperatures {_p(bf['p_value'])}; mean gain over "
                f"human-only {gain_low:+.3f} at 0.3 vs {gain_high:+.3f} at t≥0.7, where {worse} of "
                f"{int(high['n'].sum())} seed runs were worse than the baseline.")
    if not sd_high > low["sd"]:
        return _claim(claim, False, evidence + " Temperature 0.3 is not the more stable one.")
    if np.isfinite(gain_low) and gain_low <= 0:
        return _claim(claim, False, evidence + " Temperature 0.3 gives no gain.")
    if not bf["p_value"] < alpha:
        return _claim(claim, None, evidence + f" The spreads differ in the claimed direction but not significantly "
                                              f"(alpha = {alpha}).")
    return _claim(claim, True, evidence)


def _claim_filter(filtering: pd.DataFrame, alpha: float, min_seeds: int) -> dict:
    claim = "Filtering out inconsistent synthetic responses does not help."
    pooled = filtering[filtering["scope"] == "pooled"] if len(filtering) else filtering
    if pooled.empty:
        return _claim(claim, None, f"Inconclusive: {filtering.attrs.get('note') or 'no filtered condition'}.")
    if (pooled["n_pairs"] < min_seeds).all():
        return _claim(claim, None, f"Inconclusive: at most {int(pooled['n_pairs'].max())} filtered/unfiltered pair(s); "
                                   f"at least {min_seeds} are needed.")
    parts, helps = [], False
    for row in pooled.to_dict(orient="records"):
        helps |= _significant_gain(row, alpha) and row["n_pairs"] >= min_seeds
        parts.append(f"{row['method']} minus unfiltered mean AUC {row['mean_diff']:+.4f} (95% CI {row['ci_low']:+.4f} "
                     f"to {row['ci_high']:+.4f}) over {int(row['n_pairs'])} temperature×seed pairs, paired "
                     f"{_p(row['p_ttest'])} (Holm {_p(row['p_holm'])})")
    ending = " Filtering gives a significant gain." if helps else " No significant gain from filtering."
    return _claim(claim, not helps, "; ".join(parts) + "." + ending)


def claims(summary: pd.DataFrame, shares: pd.DataFrame | None = None, temperature: dict | None = None,
           filtering: pd.DataFrame | None = None, share: float = PAPER_BEST_SHARE, alpha: float = ALPHA,
           min_seeds: int = MIN_SEEDS) -> list[dict]:
    """The paper's three claims judged from the numbers: [{claim, supported, evidence}].

    ``supported`` is True, False or None (inconclusive, with the reason in ``evidence``).

    ``shares``, ``temperature`` and ``filtering`` are the outputs of ``share_vs_human``, ``temperature_tests``
    (on ``variety_frame``) and ``filter_comparison``; each is computed from ``summary`` when not given.
    """
    shares = share_vs_human(summary) if shares is None else shares
    temperature = temperature_tests(variety_frame(summary, share)) if temperature is None else temperature
    filtering = filter_comparison(summary, share) if filtering is None else filtering
    return [_claim_size(shares, alpha, min_seeds), _claim_temperature(temperature, alpha, min_seeds),
            _claim_filter(filtering, alpha, min_seeds)]


def verdict(supported) -> str:
    """'supported', 'not supported' or 'inconclusive' for a claim's ``supported`` value."""
    return {True: "supported", False: "not supported"}.get(supported, "inconclusive")


def claim_line(item: dict) -> str:
    """One claim's verdict and evidence as one line (an inconclusive evidence already says so)."""
    if item["supported"] is None and item["evidence"].startswith("Inconclusive"):
        return item["evidence"]
    return f"{verdict(item['supported']).capitalize()}: {item['evidence']}"


# ===================================================================== 7. the index page
CSS = """body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #aaa}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f0f0f0}figure{margin:1em 0}img{max-width:100%;border:1px solid #ddd}
figcaption{color:#555;font-size:.9em}.muted{color:#777}"""


def default_study_dir(params_file, build: bool = True) -> Path:
    """``results/<study>`` of a params file; with ``build``, first runs steps 01–04 when none is complete."""
    from synthmix.params import load_params
    from synthmix.pipeline import default_results_root

    study_dir = default_results_root(params_file) / load_params(params_file).study
    if build and collect_steps(study_dir).empty:
        upstream_output(params_file, "analyze", include_target=False)
    return study_dir


def _figures_dir(study_dir: Path, steps: pd.DataFrame) -> Path | None:
    analyzed = steps[steps["kind"] == "analyze"]
    candidates = [Path(f) / "figures" for f in analyzed["folder"]]
    candidates += sorted(study_dir.glob("05_analyze/*/figures"), key=lambda p: p.stat().st_mtime, reverse=True)
    return next((c for c in candidates if any(c.glob("*.png"))), None)


def _link(target: Path, root: Path) -> str:
    return html.escape(Path(os.path.relpath(target, root)).as_posix(), quote=True)


def write_index(results_root, figures: dict | None = None) -> Path:
    """Write ``results_root/index.html``, a static page of every study under it.

    Per study: its steps by experiment and condition, linked to their rendered notebooks, and its figures.

    ``figures`` optionally maps a study name to its figures folder (else the analysis step's ``figures/``);
    a ``claims.json`` beside that folder (the list ``claims`` returns) is shown as well.
    """
    root = Path(results_root).resolve()
    figures = {k: Path(v).resolve() for k, v in (figures or {}).items()}
    studies = sorted(d for d in root.iterdir() if d.is_dir() and any(d.glob(f"*/*/{MARKER}"))) if root.is_dir() else []
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>SynthMix results</title>"
             f"<style>{CSS}</style></head><body><h1>SynthMix results</h1>"]
    if not studies:
        parts.append("<p class='muted'>No complete study under this folder yet.</p>")
    parts.append("<ul>" + "".join(f"<li><a href='#{html.escape(s.name)}'>{html.escape(s.name)}</a></li>"
                                  for s in studies) + "</ul>")
    for study_dir in studies:
        steps = collect_steps(study_dir)
        parts.append(f"<h2 id='{html.escape(study_dir.name)}'>Study: {html.escape(study_dir.name)}</h2>")
        counts = ", ".join(f"{n} {k}" for k, n in steps["kind"].value_counts().reindex(KIND_ORDER).dropna()
                           .astype(int).items())
        parts.append(f"<p>{len(steps)} complete steps ({counts}).")
        if (study_dir / "summary.csv").is_file():
            parts.append(f" Summary table: <a href='{_link(study_dir / 'summary.csv', root)}'>summary.csv</a>.")
        parts.append("</p>")
        folder = figures.get(study_dir.name) or _figures_dir(study_dir, steps)
        if folder is not None and folder.is_dir():
            claims_file = folder.parent / "claims.json"
            if claims_file.is_file():
                parts.append("<h3>The paper's claims</h3><ol>" + "".join(
                    f"<li><b>{html.escape(c['claim'])}</b><br>{html.escape(claim_line(c))}</li>"
                    for c in io.read_json(claims_file)) + "</ol>")
            parts.append("<h3>Figures</h3>")
            for png in sorted(folder.glob("*.png"), key=lambda p: (p.stat().st_mtime, p.name)):  # in the order saved
                caption = png.with_suffix(".txt").read_text().strip() if png.with_suffix(".txt").is_file() else png.stem
                parts.append(f"<figure><img src='{_link(png, root)}' alt='{html.escape(png.stem)}'>"
                             f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        expanded = steps.assign(experiment=steps["experiments"].map(lambda e: e or ["(no experiment named)"]))
        expanded = expanded.explode("experiment")
        for experiment, group in expanded.groupby("experiment", sort=True):
            parts.append(f"<h3>Experiment: {html.escape(str(experiment))}</h3><table><tr><th>condition</th>"
                         "<th>step</th><th>notebook</th><th>seconds</th><th>finished</th></tr>")
            for condition, rows in group.groupby("condition", sort=True):
                for row in rows.to_dict(orient="records"):
                    link = "<span class='muted'>not rendered</span>"
                    if row["notebook"]:
                        name = html.escape(Path(row["notebook"]).name)
                        link = f"<a href='{_link(study_dir / row['notebook'], root)}'>{name}</a>"
                    parts.append(f"<tr><td>{html.escape(condition)}</td><td>{html.escape(row['kind'])}</td>"
                                 f"<td>{link}</td><td>{row['seconds']:.1f}</td>"
                                 f"<td>{html.escape(str(row['finished']))}</td></tr>")
            parts.append("</table>")
    parts.append("</body></html>\n")
    return io.write_text(root / "index.html", "\n".join(parts))
