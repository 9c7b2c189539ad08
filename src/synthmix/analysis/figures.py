"""Figures of a study: each ``plot_*`` returns ``(figure, caption)``; ``save_figure`` writes a PNG.

Every figure of a metric shows one dot per replicate and, beside the dots, the mean with a 95%
interval across replicates (Student's t on the replicate values), so a reader sees the spread the
statistics are computed from, not only the means. The caption is one line that says what is shown,
at which share, and over how many replicates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from synthmix.analysis import stats as st
from synthmix.analysis.results import (
    PAPER_BEST_SHARE,
    at_share,
    default_protocol,
    human_baseline,
    replicate_column,
    unfiltered,
)
from synthmix.core import io

JITTER = 0.012  # horizontal spread of replicate dots on a share axis (in share units)
REPLAY_COLOUR = "#555555"
VERDICT_COLOURS = {"supported": "#1a7f37", "contradicted": "#b42318", "inconclusive": "#b7791f",
                   "not tested": "#999999"}


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


def replicates_text(frame: pd.DataFrame) -> str:
    """'5 replicates' (or '3–5 replicates' when conditions differ) for a caption."""
    replicate = replicate_column(frame)
    keys = [c for c in ("protocol", "temperature", "filter", "checkpoint", "target_share") if c in frame.columns]
    counts = frame.groupby(keys, dropna=False)[replicate].nunique() if keys and len(frame) else pd.Series(dtype=int)
    low, high = (int(counts.min()), int(counts.max())) if len(counts) else (0, 0)
    return f"{low} replicate{'s' if low != 1 else ''}" if low == high else f"{low}–{high} replicates"


def _mean_and_interval(ax, x, values, colour, label=None, offset=0.0, jitter=0.0, rng=None, size=22):
    """Draw one dot per replicate value at ``x`` and the mean with its 95% interval beside them."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not values.size:
        return np.nan
    rng = rng or np.random.default_rng(0)
    ax.scatter(x + rng.uniform(-jitter, jitter, values.size), values, color=colour, alpha=0.45, s=size,
               linewidths=0, zorder=3)
    described = st.describe_groups(pd.DataFrame({"g": 0, "v": values}), "g", "v").iloc[0]
    low, high = described["ci_low"], described["ci_high"]
    err = [[described["mean"] - low], [high - described["mean"]]] if np.isfinite(low) else None
    ax.errorbar(x + offset, described["mean"], yerr=err, fmt="o", color=colour, markersize=7, capsize=4,
                elinewidth=1.5, zorder=4, label=label)
    return described["mean"]


def _baseline_line(ax, summary: pd.DataFrame, metric: str) -> None:
    base = human_baseline(summary, metric)
    if len(base):
        ax.axhline(base["baseline"].mean(), color="black", linestyle="--", linewidth=1, label="human only (mean)")


def save_figure(fig, path, caption: str = "") -> Path:
    """Save ``fig`` as a PNG atomically (and its caption beside it as ``.txt`` when given)."""
    path = Path(path)
    with io.atomic_path(path) as temporary:
        fig.savefig(temporary, format="png", dpi=120, bbox_inches="tight")
    if caption:
        io.write_text(path.with_suffix(".txt"), caption + "\n")
    return path


def _share_curve(ax, rows: pd.DataFrame, share_of, metric: str, colour, label: str, rng) -> None:
    """One curve of replicate dots and mean ± 95% interval per checkpoint (or mixture) on a share axis."""
    keys = ["checkpoint"] if rows["protocol"].iloc[0] != "mixed" else ["target_share"]
    points = []
    for _, group in rows.groupby(keys, dropna=False):
        x = float(np.nanmean(share_of(group)))
        points.append((x, _mean_and_interval(ax, x, group[metric], colour, jitter=JITTER, rng=rng)))
    points = sorted(p for p in points if np.isfinite(p[1]))
    if points:
        xs, ys = zip(*points)
        ax.plot(xs, ys, "-", color=colour, label=label, zorder=2)


def plot_auc_by_share(summary: pd.DataFrame, metric: str = "auc", model: str = "teacher"):
    """Test AUC by synthetic share per protocol, one curve per temperature (replicate dots, mean and 95% interval).

    The replay control (training continued on human responses) is drawn on the incremental panel at the
    share its added responses would have had; the dashed line is the mean human-only baseline.
    """
    rows = unfiltered(summary[(summary["model"] == model)]).dropna(subset=[metric])
    if rows.empty:
        return _message_figure("AUC by synthetic share", f"No {model} results to plot."), f"No {model} results."
    plt, _ = _plt()
    replay = rows[rows["protocol"] == "replay"]
    protocols = sorted(set(rows["protocol"]) - {"replay"}) or ["replay"]
    fig, axes = plt.subplots(1, len(protocols), figsize=(6.5 * len(protocols), 4.5), squeeze=False, sharey=True)
    synthetic = rows[rows["protocol"] != "replay"]
    colours = _palette(synthetic["temperature"].dropna().unique())
    rng = np.random.default_rng(0)
    for ax, protocol in zip(axes[0], protocols):
        for temperature, line in synthetic[synthetic["protocol"] == protocol].groupby("temperature"):
            _share_curve(ax, line, lambda g: g["synthetic_share"], metric, colours[temperature],
                         f"t = {temperature:g}", rng)
        if len(replay) and protocol in ("incremental", "replay"):
            added = replay["n_added"] if "n_added" in replay else replay["n_synthetic"]
            equivalent = (added / (replay["n_human"] + added)).rename("share")
            _share_curve(ax, replay.assign(_share=equivalent), lambda g: g["_share"], metric, REPLAY_COLOUR,
                         "replay control (human responses)", rng)
        _baseline_line(ax, summary, metric)
        ax.set(title=f"{protocol} protocol", xlabel="synthetic share of training data", ylabel=f"test {metric.upper()}")
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
        ax.legend(fontsize=9)
    fig.tight_layout()
    filters = ", ".join(sorted(rows["filter"].unique()))
    caption = (f"{model.capitalize()} test {metric.upper()} against the synthetic share of its training data, "
               f"one curve per sampling temperature (filter: {filters}); one dot per replicate, and the mean with "
               f"its 95% interval across {replicates_text(rows)}; "
               + ("grey: the replay control at the share of its added human responses; " if len(replay) else "")
               + "dashed: the human-only baseline.")
    return fig, caption


def plot_replicate_spread(summary: pd.DataFrame, share: float = PAPER_BEST_SHARE, metric: str = "auc"):
    """Per-replicate AUC by temperature at the checkpoint closest to ``share`` (mean and 95% interval beside)."""
    rows = at_share(summary, share).dropna(subset=[metric])
    if rows.empty:
        note = rows.attrs.get("note") or "no run with synthetic responses"
        return _message_figure("Spread across replicates", note), note
    plt, _ = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    order = sorted(rows["temperature"].unique())
    colours = _palette(order)
    rng = np.random.default_rng(0)
    for i, temperature in enumerate(order):
        _mean_and_interval(ax, i, rows.loc[rows["temperature"] == temperature, metric], colours[temperature],
                           offset=0.22, jitter=0.08, rng=rng, size=40)
    ax.set_xticks(range(len(order)), [f"{t:g}" for t in order])
    _baseline_line(ax, summary, metric)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=9)
    achieved = rows["synthetic_share"].mean()
    ax.set(xlabel="sampling temperature", ylabel=f"test {metric.upper()}",
           title=f"Spread across replicates at ≈{achieved:.0%} synthetic")
    fig.tight_layout()
    sds = rows.groupby("temperature")[metric].std()
    caption = (f"Test {metric.upper()} of each replicate (dots) by sampling temperature at the checkpoint closest to "
               f"{share:.0%} synthetic (achieved {achieved:.0%}; {rows['protocol'].iloc[0]}, unfiltered; "
               f"{replicates_text(rows)}), with the mean and its 95% interval; SD across replicates "
               + ", ".join(f"t={t:g}: {s:.3f}" if pd.notna(s) else f"t={t:g}: n/a" for t, s in sds.items())
               + "; dashed: human-only baseline.")
    return fig, caption


def plot_filter_comparison(summary: pd.DataFrame, share: float = PAPER_BEST_SHARE, metric: str = "auc"):
    """AUC of filtered and unfiltered pools per temperature at the checkpoint closest to ``share``.

    One dot per replicate, and the mean with its 95% interval, per filter method.
    """
    teacher = summary[summary["model"] == "teacher"]
    protocol = default_protocol(teacher)
    rows = at_share(summary, share, protocol=protocol, only_unfiltered=False).dropna(subset=[metric])
    if rows.empty:
        message = "No teacher run with synthetic responses to compare."
        return _message_figure("Filtered vs unfiltered", message), message
    plt, _ = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    temps = sorted(rows["temperature"].unique())
    methods = sorted(rows["filter"].unique(), key=lambda m: (m != "none", m))
    width = 0.7 / max(len(methods), 1)
    colours = dict(zip(methods, ["#888888", "#d95f02", "#1b9e77", "#7570b3"]))
    rng = np.random.default_rng(0)
    for j, method in enumerate(methods):
        for k, temperature in enumerate(temps):
            values = rows.loc[(rows["filter"] == method) & (rows["temperature"] == temperature), metric]
            _mean_and_interval(ax, k + (j - (len(methods) - 1) / 2) * width, values, colours[method],
                               label=method if k == 0 else None, jitter=width / 6, rng=rng)
    _baseline_line(ax, summary, metric)
    ax.set_xticks(range(len(temps)), [f"{t:g}" for t in temps])
    ax.set_xlim(-0.5, len(temps) - 0.5)
    ax.set(xlabel="sampling temperature", ylabel=f"test {metric.upper()}",
           title="Filtered vs unfiltered synthetic pools")
    ax.legend(fontsize=9)
    fig.tight_layout()
    caption = (f"Test {metric.upper()} with unfiltered and filtered synthetic pools per temperature at the checkpoint "
               f"closest to {share:.0%} synthetic ({protocol}; one dot per replicate, and the mean with its 95% "
               f"interval across {replicates_text(rows)}; filters: {', '.join(methods)}).")
    return fig, caption


def plot_teacher_vs_student(summary: pd.DataFrame):
    """Teacher vs distilled student: test AUC (replicate dots, mean and 95% interval), size on disk, CPU latency."""
    students = summary[summary["model"] == "student"]
    if students.empty:
        return _message_figure("Teacher vs student", "No distilled student in this study."), "No student results."
    plt, _ = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    colours = {"teacher": "#4c72b0", "student": "#dd8452"}
    rng = np.random.default_rng(0)
    aucs = {"teacher": students["teacher_auc"], "student": students["auc"]}
    for i, (who, values) in enumerate(aucs.items()):
        _mean_and_interval(axes[0], i, values, colours[who], offset=0.15, jitter=0.06, rng=rng)
    axes[0].set_xticks([0, 1], ["teacher", "student"])
    axes[0].set_xlim(-0.5, 1.5)
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
    caption = (f"Teacher vs distilled student over {len(students)} distillation run(s) "
               f"({students[replicate_column(students)].nunique()} replicates): test AUC (one dot per run, mean and "
               f"95% interval), size on disk and CPU latency per response; the student is {speed:.1f}x faster at "
               f"batch 1.")
    return fig, caption


def plot_grader_agreement(agreement: pd.DataFrame):
    """The filter's agreement (Cohen's kappa, accuracy) with the intended labels, per temperature and method.

    Bars are means over graders (one per replicate where each replicate trains its own); dots are graders.
    """
    graded = agreement[agreement["graded"] > 0] if len(agreement) else agreement
    if graded.empty:
        message = "No filter graded the pools ('none' keeps every response): no agreement to show."
        return _message_figure("Grader agreement with intended labels", message), message
    plt, sns = _plt()
    long = graded.melt(id_vars=["method", "temperature"], value_vars=["kappa", "accuracy"], var_name="measure")
    long["temp"] = long["temperature"].map(lambda t: f"{t:g}")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, measure in zip(axes, ("kappa", "accuracy")):
        data = long[long["measure"] == measure]
        sns.barplot(data=data, x="temp", y="value", hue="method", ax=ax, errorbar=None, alpha=0.6)
        sns.stripplot(data=data, x="temp", y="value", hue="method", ax=ax, dodge=True, legend=False,
                      palette="dark:black", size=4)
        ax.set(xlabel="sampling temperature", ylabel=measure, title=f"{measure} with intended labels",
               ylim=(-0.1, 1.05))
        ax.legend(title="method", fontsize=9, loc="lower right")
    fig.tight_layout()
    graders = len(graded)
    caption = ("Agreement of the filter's grades with the labels the generator was asked to write, per sampling "
               f"temperature (Cohen's kappa and accuracy; bars: mean over {graders} grader run(s), dots: each run; "
               f"{int(graded['graded'].sum())} graded responses, methods: "
               f"{', '.join(sorted(graded['method'].unique()))}).")
    return fig, caption


def _is_ratio(record: dict) -> bool:
    """Whether a verdict record is on a ratio scale (an SD or instability ratio: no effect = 1) rather than a difference."""
    if record.get("scale"):
        return record["scale"] == "ratio"
    return "ratio" in str(record.get("method") or "").split(";")[0]


def plot_verdicts(records: list[dict]):
    """Every verdict as a forest plot: the estimate with its interval against the margin, coloured by verdict.

    ``records`` are the verdict records of ``claims.judge_claims`` (keys id, part, role, verdict, estimate,
    ci_low, ci_high, ci_level, margin, scale). Differences (AUC) are drawn around 0 with the band
    (-margin, +margin) shaded and the decision boundary +margin dashed; ratios on a log axis around 1 with
    the band (1/margin, margin) and the boundary at margin. Primary verdicts are drawn bold. A verdict
    without an estimate is listed as not tested.
    """
    if not records:
        return _message_figure("Verdicts", "No claim was judged."), "No claim was judged."
    plt, _ = _plt()
    kinds = [("difference", [r for r in records if not _is_ratio(r)]), ("ratio", [r for r in records if _is_ratio(r)])]
    kinds = [(kind, rows) for kind, rows in kinds if rows]
    counts = [len(rows) for _, rows in kinds]
    import textwrap

    fig, axes = plt.subplots(len(kinds), 1, figsize=(12, 1.4 * len(kinds) + 0.6 * sum(counts)), squeeze=False,
                             gridspec_kw={"height_ratios": [n + 1.5 for n in counts]})
    levels = set()
    for ax, (kind, rows) in zip(axes[:, 0], kinds):
        neutral = 1.0 if kind == "ratio" else 0.0
        margins = {float(r["margin"]) for r in rows if r.get("margin") is not None}
        for margin in margins:
            low, high = (1 / margin, margin) if kind == "ratio" else (-margin, margin)
            ax.axvspan(low, high, color="#dddddd", alpha=0.6, linewidth=0)
            ax.axvline(margin, color="#555555", linewidth=1, linestyle="--")
        ax.axvline(neutral, color="black", linewidth=0.8)
        for y, record in enumerate(reversed(rows)):
            colour = VERDICT_COLOURS.get(record.get("verdict"), "#444444")
            estimate, low, high = (record.get(k) for k in ("estimate", "ci_low", "ci_high"))
            if estimate is None or not np.isfinite(float(estimate)):
                ax.text(neutral, y, "not tested", ha="center", va="center", fontsize=9, color=colour)
                continue
            primary = record.get("role") == "primary"
            if low is not None and high is not None:
                ax.plot([low, high], [y, y], color=colour, linewidth=4 if primary else 2, solid_capstyle="butt")
                levels.add(record.get("ci_level"))
            ax.plot(estimate, y, "o", color=colour, markersize=9 if primary else 7)
        ax.set_yticks(range(len(rows)), ["\n".join(textwrap.wrap(
            f"{r.get('id', '')} · {r.get('part') or 'whole claim'} ({r.get('role') or 'verdict'}: {r.get('verdict')})",
            60)) for r in reversed(rows)], fontsize=8)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        if kind == "ratio":
            ax.set_xscale("log")
            ax.set_xticks(sorted({0.25, 1.0, 4.0, *margins, *(1 / m for m in margins)}))
            ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.2g}"))
            ax.xaxis.set_minor_formatter(plt.NullFormatter())
            ax.set(xlabel="ratio across temperatures (1 = equal)", title="Ratios")
        else:
            ax.set(xlabel="difference in test AUC (paired by replicate)", title="Differences")
    fig.tight_layout()
    def level_of(role: str) -> str:
        values = sorted({float(r["ci_level"]) for r in records if r.get("role") == role and r.get("ci_level")})
        return ", ".join(f"{v:.1%}".replace(".0%", "%") for v in values)

    shown = [f"{level_of('primary')} for primary verdicts (thick bars)" if level_of("primary") else "",
             f"{level_of('secondary')} for secondary ones" if level_of("secondary") else ""]
    shown = "; ".join(w for w in shown if w) or ", ".join(f"{float(v):.0%}" for v in sorted(v for v in levels if v))
    caption = (f"Each verdict's estimate (dot) with its interval (bar: {shown or 'no interval'}) against the smallest "
               "effect of interest (dashed: the margin each one-sided decision is taken at; grey band: no meaningful "
               "effect, descriptive); colour: the verdict (green supported, red contradicted, amber inconclusive).")
    return fig, caption
