"""The analysis modules (results, figures, diagnostics, report, and the old claims in analysis) on constructed
results trees and tables with known answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthmix.analysis import diagnostics, figures, report, results
from synthmix.core import io

REPO = Path(__file__).resolve().parents[1]
WORDS = ("the student forgot to carry the one and added the tens wrong so the answer was off by ten "
         "tutor should ask what they did first then point at the place value column gently").split()


# ------------------------------------------------------------------------ constructed trees
def default_auc(temperature, method, protocol, share, seed):
    """AUC of a constructed run: a seed effect, a gain peaking at 80 % synthetic, noisier at high temperature."""
    rng = np.random.default_rng(int(seed * 1000 + temperature * 100 + share * 10) + (method != "none"))
    gain = 0.06 * (1 - abs(share - 0.8) / 0.8) if share > 0 else 0.0
    noise = rng.normal(0, 0.002 if temperature < 0.5 else 0.03) if share > 0 else 0.0
    return 0.70 + 0.005 * seed + gain + noise


def _sentence(rng, n=12) -> str:
    return " ".join(rng.choice(WORDS, size=n))


def _complete(folder: Path, kind: str, condition: str, parameters: dict, experiments=()):
    number = {"generate": "01", "filter": "02", "train_teacher": "03", "distill": "04", "analyze": "05"}[kind]
    name = f"{number}_{kind}"
    (folder / f"{name}.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    (folder / f"{name}.html").write_text(f"<html><body>{kind} {condition}</body></html>")
    io.write_json(folder / "_complete.json", {"step": f"{kind}/{folder.name}", "kind": kind, "condition": condition,
                                              "parameters": {**parameters, "output_dir": str(folder)},
                                              "experiments": list(experiments), "seconds": 1.5,
                                              "finished": "2025-01-01 00:00:00"})


def _metric_row(protocol, replicate_key, seed, checkpoint, nh, ns, value, n_added=None) -> dict:
    return {"protocol": protocol, replicate_key: seed, "checkpoint": checkpoint, "n_human": nh,
            **({"n_added": ns if n_added is None else n_added} if replicate_key == "replicate" else {}),
            "n_synthetic": ns, "synthetic_share": ns / (nh + ns), "auc": value,
            "auc_ci_low": value - 0.05, "auc_ci_high": value + 0.05, "macro_f1": value - 0.1,
            "macro_f1_ci_low": value - 0.15, "macro_f1_ci_high": value - 0.05,
            "accuracy": value - 0.05, "kappa": value - 0.3, "n": 100, "n_positive": 40}


def _predictions(rows: list[dict], replicate: int, n_test: int = 60) -> pd.DataFrame:
    """Test scores per checkpoint whose AUC is near the row's AUC (binormal: d = sqrt(2) * probit(AUC))."""
    from scipy.stats import norm

    labels = np.arange(n_test) % 2
    parts = []
    for row in rows:
        rng = np.random.default_rng([replicate, int(row["checkpoint"]), int(row["auc"] * 1e6)])
        separation = np.sqrt(2) * norm.ppf(min(max(row["auc"], 0.51), 0.99))
        parts.append(pd.DataFrame({"checkpoint": row["checkpoint"], "id": [f"r{replicate}-{i}" for i in range(n_test)],
                                   "row": 1000 * replicate + np.arange(n_test), "item": "", "label": labels,
                                   "score": rng.normal(labels * separation, 1.0)}))
    return pd.concat(parts, ignore_index=True)


def build_tree(study_dir: Path, temps=(0.3, 0.7), filters=("none", "llm_judge"), seeds=(0, 1, 2),
               protocols=("incremental",), shares=(0.5, 0.8), increments=4, n_human=20, step=20,
               auc=default_auc, distill=True, legacy=False, replay=False) -> Path:
    """Write a results tree in the driver's formats (generate → filter → train_teacher → distill).

    Replicates are numbered in ``replicate`` columns and parameters; ``legacy`` writes the older ``seed``
    (and ``synthetic_share``) instead. ``replay`` adds the training-steps control per replicate.
    """
    rng = np.random.default_rng(0)
    key = "seed" if legacy else "replicate"
    for temperature in temps:
        gen = study_dir / "01_generate" / f"t{temperature}-g{int(temperature * 10)}"
        gen.mkdir(parents=True)
        n_pool = step * increments
        pool = pd.DataFrame({"text": [_sentence(rng) for _ in range(n_pool)], "label": [i % 2 for i in range(n_pool)],
                             "temperature": temperature, "model": "fake", "call_id": range(n_pool), "seed": 0})
        io.write_table(gen / "pool.parquet", pool)
        io.write_json(gen / "generation_report.json", {"collected": n_pool, "calls": 4, "rejects": 0,
                                                       "stats": {}, "seconds": 1.0})
        _complete(gen, "generate", f"t{temperature}", {"temperature": temperature}, ["size", "variety", "consistency"])
        for method in filters:
            flt = study_dir / "02_filter" / f"t{temperature}-{method}-f{int(temperature * 10)}"
            flt.mkdir(parents=True)
            graded = method != "none"
            grades = pool[["text", "label", "temperature"]].assign(
                grade=pd.array([(l if i % 5 else 1 - l) if graded else pd.NA for i, l in enumerate(pool["label"])],
                               dtype="Int64"),
                p_positive=np.nan, rationale="", status="graded" if graded else "not graded")
            grades["kept"] = (grades["grade"] == grades["label"]).fillna(True).astype(bool) if graded else True
            io.write_table(flt / "grades.parquet", grades)
            io.write_table(flt / "filtered_pool.parquet", pool[grades["kept"].to_numpy()])
            io.write_json(flt / "filter_report.json", {"method": method, "responses": n_pool,
                                                       "kept": int(grades["kept"].sum()),
                                                       "agreement_with_intended_labels": {}})
            _complete(flt, "filter", f"t{temperature}-{method}", {"method": method, "pool_dir": str(gen)},
                      ["consistency"] if graded else ["size", "variety", "consistency"])
            runs = [("incremental", None)] * ("incremental" in protocols)
            runs += [("mixed", s) for s in shares] * ("mixed" in protocols)
            for protocol, share in runs:
                for seed in seeds:
                    name = protocol if share is None else f"mixed{share}"
                    condition = f"t{temperature}-{method}-{name}-s{seed}"
                    teacher = study_dir / "03_train_teacher" / f"{condition}-h"
                    teacher.mkdir(parents=True)
                    if share is None:
                        counts = [(n_human, step * k) for k in range(increments + 1)]
                    else:
                        counts = [(n_human, int(round(n_human * share / (1 - share))))]
                    rows = [_metric_row(protocol, key, seed, checkpoint, nh, ns,
                                        auc(temperature, method, protocol, ns / (nh + ns), seed))
                            for checkpoint, (nh, ns) in enumerate(counts)]
                    if not legacy:  # a checkpoint at exactly an asked share records it
                        for row in rows:
                            asked = [0.5, 0.8] if share is None else [share]
                            row["target_share"] = next((a for a in asked if abs(row["synthetic_share"] - a) < 0.01),
                                                       0.0 if row["n_synthetic"] == 0 else np.nan)
                    io.write_table(teacher / "metrics.parquet", pd.DataFrame(rows))
                    io.write_table(teacher / "test_predictions.parquet", _predictions(rows, seed))
                    io.write_table(teacher / "transfer_logits.parquet", pd.DataFrame({"x": [1]}))
                    io.write_json(teacher / "teacher_report.json", {"protocol": protocol, key: seed})
                    experiments = (["consistency"] if graded else
                                   ["size", "variety", "consistency"] if protocol == "incremental" else ["size"])
                    asked = ({"synthetic_share": -1.0 if share is None else share} if legacy else
                             {"synthetic_shares": [0.5, 0.8] if share is None else [share]})
                    _complete(teacher, "train_teacher", condition,
                              {"protocol": protocol, **asked, key: seed, "filtered_dir": str(flt),
                               "pool_dir": str(gen)}, experiments)
                    if distill:
                        student = study_dir / "04_distill" / f"{condition}-d"
                        student.mkdir(parents=True)
                        final = rows[-1]["auc"]
                        io.write_json(student / "student_metrics.json", {
                            "auc": final - 0.02, "auc_ci_low": final - 0.07, "auc_ci_high": final + 0.03,
                            "macro_f1": 0.6, "accuracy": 0.7, "kappa": 0.4, key: seed,
                            "student_parameters": 11_000_000, "teacher_parameters": 22_000_000,
                            "student_size_mb": 44.0, "teacher_size_mb": 88.0, "student_latency_batch1_s": 0.004,
                            "student_latency_batch32_s": 0.001, "teacher_latency_batch1_s": 0.008,
                            "teacher_latency_batch32_s": 0.002, "speedup_batch1": 2.0, "speedup_batch32": 2.0})
                        _complete(student, "distill", condition, {key: seed, "teacher_dir": str(teacher)},
                                  experiments)
    for seed in seeds if replay else ():  # the training-steps control: no pool, human responses added
        teacher = study_dir / "03_train_teacher" / f"replay-r{seed}-h"
        teacher.mkdir(parents=True)
        rows = [_metric_row("replay", key, seed, k, n_human, 0, 0.70 + 0.005 * seed + 0.001 * k, n_added=step * k)
                for k in range(increments + 1)]
        for row in rows:
            share = row["n_added"] / (n_human + row["n_added"])
            row["target_share"] = next((a for a in (0.5, 0.8) if abs(share - a) < 0.01), np.nan)
        io.write_table(teacher / "metrics.parquet", pd.DataFrame(rows))
        io.write_table(teacher / "test_predictions.parquet", _predictions(rows, seed))
        _complete(teacher, "train_teacher", f"replay-r{seed}",
                  {"protocol": "replay", "synthetic_shares": [0.5, 0.8], key: seed, "filtered_dir": "",
                   "pool_dir": ""}, ["size"])
    return study_dir


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return build_tree(tmp_path_factory.mktemp("results") / "study", protocols=("incremental", "mixed"))


@pytest.fixture(scope="module")
def summary(tree) -> pd.DataFrame:
    return results.summary_table(tree)


def make_summary(auc, temps=(0.3, 0.7, 0.9), filters=("none", "llm_judge"), seeds=range(8)) -> pd.DataFrame:
    """A summary table without files: incremental runs with shares 0, .5, .67, .75, .8 (20 human, +20 per step)."""
    rows = []
    for temperature in temps:
        for method in filters:
            for seed in seeds:
                for checkpoint in range(5):
                    share = 20 * checkpoint / (20 + 20 * checkpoint)
                    rows.append({"model": "teacher", "protocol": "incremental", "temperature": temperature,
                                 "filter": method, "target_share": np.nan, "seed": seed, "checkpoint": checkpoint,
                                 "n_human": 20, "n_synthetic": 20 * checkpoint, "synthetic_share": share,
                                 "auc": auc(temperature, method, "incremental", share, seed)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- reading the tree
def test_collect_steps_lists_every_complete_step(tree):
    steps = results.collect_steps(tree)
    counts = steps["kind"].value_counts().to_dict()
    assert counts == {"generate": 2, "filter": 4, "train_teacher": 4 * 3 * 3, "distill": 36}
    assert list(steps["kind"].drop_duplicates()) == ["generate", "filter", "train_teacher", "distill"]
    assert all((tree / n).is_file() for n in steps["notebook"])


def test_summary_has_a_row_per_checkpoint_replicate_and_condition(summary, tree):
    teacher, student = summary[summary["model"] == "teacher"], summary[summary["model"] == "student"]
    # 2 temperatures x 2 filters x 3 replicates x (5 incremental checkpoints + 2 mixed runs)
    assert len(teacher) == 2 * 2 * 3 * (5 + 2)
    assert len(student) == 2 * 2 * 3 * 3
    for column in ("model", "experiments", "temperature", "filter", "protocol", "target_share", "replicate",
                   "checkpoint", "n_human", "n_added", "n_synthetic", "synthetic_share", "auc", "auc_ci_low",
                   "auc_ci_high", "macro_f1", "accuracy", "kappa", "step", "notebook"):
        assert column in summary.columns
    assert "seed" not in summary.columns
    assert sorted(teacher["replicate"].unique()) == [0, 1, 2] and sorted(student["replicate"].unique()) == [0, 1, 2]
    assert (teacher["n_added"] == teacher["n_synthetic"]).all()
    assert set(teacher["temperature"]) == {0.3, 0.7} and set(teacher["filter"]) == {"none", "llm_judge"}
    assert sorted(teacher.loc[teacher["protocol"] == "mixed", "target_share"].unique()) == [0.5, 0.8]
    incremental = teacher[teacher["protocol"] == "incremental"]  # checkpoints at exactly an asked share record it
    assert incremental.groupby("checkpoint")["target_share"].first().tolist() == pytest.approx(
        [0.0, 0.5, np.nan, np.nan, 0.8], nan_ok=True)
    assert all((tree / n).is_file() for n in summary["notebook"])
    # the student of an incremental run sits at the teacher's last checkpoint
    incremental = student[student["protocol"] == "incremental"]
    assert (incremental["checkpoint"] == 4).all() and np.allclose(incremental["synthetic_share"], 0.8)
    assert "size" in teacher.loc[teacher["filter"] == "none", "experiments"].iloc[0]


def test_a_stale_rerun_of_a_step_is_left_out(tree, tmp_path):
    import os
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tree, copy)
    old = next((copy / "04_distill").glob("t0.3-none-incremental-s0-*"))
    stale = old.with_name(old.name + "-old")
    shutil.copytree(old, stale)
    os.utime(stale / "_complete.json", (1, 1))  # written long before the current one
    steps = results.collect_steps(copy)
    assert len(results.collect_steps(copy, include_stale=True)) == len(steps) + 1
    assert stale.name not in set(steps["name"]) and old.name in set(steps["name"])
    assert len(results.summary_table(copy)) == len(results.summary_table(tree))


def test_summary_joins_survive_a_moved_tree(tree, tmp_path):
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(tree, moved)
    table = results.summary_table(moved)
    assert len(table) == len(results.summary_table(tree))
    assert table["temperature"].notna().all() and (table["filter"] != "unknown").all()


# ------------------------------------------------------------------ conditions and baselines
def test_closest_to_share_picks_the_nearest_checkpoint():
    frame = make_summary(lambda *a: 0.7, temps=(0.3,), filters=("none",), seeds=(0, 1)).rename(
        columns={"seed": "replicate"})
    assert set(results.closest_to_share(frame, 0.8)["checkpoint"]) == {4}
    assert set(results.closest_to_share(frame, 0.7)["checkpoint"]) == {2}  # .667 is nearer than .75
    assert set(results.closest_to_share(frame, 0.0)["checkpoint"]) == {0}
    assert len(results.closest_to_share(frame, 0.8)) == 2  # one per replicate
    older = frame.rename(columns={"replicate": "seed"})  # results written before replicates
    assert len(results.closest_to_share(older, 0.8)) == 2
    tie = pd.DataFrame({"model": "teacher", "protocol": "incremental", "temperature": 0.3, "filter": "none",
                        "replicate": 0, "checkpoint": [0, 1, 2], "synthetic_share": [0.4, 0.6, 0.8]})
    assert results.closest_to_share(tie, 0.5)["checkpoint"].tolist() == [0]  # a tie goes to the earlier one


def test_older_results_with_seed_columns_read_as_replicates(tmp_path):
    older = results.summary_table(build_tree(tmp_path / "older", temps=(0.3,), seeds=(0, 1), legacy=True))
    newer = results.summary_table(build_tree(tmp_path / "newer", temps=(0.3,), seeds=(0, 1)))
    assert "seed" not in older.columns and sorted(older["replicate"].unique()) == [0, 1]
    columns = ["model", "temperature", "filter", "protocol", "replicate", "checkpoint", "n_added", "auc"]
    older, newer = (t[columns].sort_values(columns[:6]).reset_index(drop=True) for t in (older, newer))
    pd.testing.assert_frame_equal(older, newer, check_dtype=False)


def test_replay_runs_have_no_pool_and_count_added_human_responses(tmp_path):
    table = results.summary_table(build_tree(tmp_path / "study", temps=(0.3,), filters=("none",), replay=True))
    replay = table[table["protocol"] == "replay"].sort_values(["replicate", "checkpoint"])
    assert len(replay) == 3 * 5 and replay["temperature"].isna().all() and (replay["filter"] == "none").all()
    assert (replay["n_synthetic"] == 0).all() and replay["n_added"].tolist()[:5] == [0, 20, 40, 60, 80]
    # the human-only baseline: checkpoint 0 of each replicate (the same human fine-tune for every arm)
    base = results.human_baseline(table)
    assert base["replicate"].tolist() == [0, 1, 2] and (base["runs"] == 2).all()  # incremental and replay
    assert np.allclose(base["baseline"], [0.700, 0.705, 0.710])
    assert results.default_protocol(table) == "incremental"


def test_at_share_picks_one_row_per_run(summary):
    picked = results.at_share(summary, 0.8)
    assert len(picked) == 2 * 3 and set(picked["filter"]) == {"none"} and np.allclose(picked["synthetic_share"], 0.8)
    both = results.at_share(summary, 0.5, only_unfiltered=False)
    assert len(both) == 2 * 2 * 3 and set(both["checkpoint"]) == {1}  # 20 synthetic + 20 human = 50%
    assert results.at_share(summary, 0.8, protocol="mixed")["target_share"].eq(0.8).all()


def test_describe_conditions_across_replicates(summary):
    described = results.describe_conditions(summary).set_index("condition_label")
    row = described.loc["teacher · t=0.3 · none · incremental ckpt 4"]
    values = summary[(summary["model"] == "teacher") & (summary["temperature"] == 0.3) & (summary["filter"] == "none")
                     & (summary["protocol"] == "incremental") & (summary["checkpoint"] == 4)]["auc"]
    assert row["n"] == 3 and row["mean"] == pytest.approx(values.mean()) and row["sd"] == pytest.approx(values.std())
    assert row["ci_high"] - row["mean"] == pytest.approx(4.302652729911275 * values.std() / np.sqrt(3))
    assert len(described) == summary.groupby(["model", "temperature", "filter", "protocol", "target_share",
                                              "checkpoint"], dropna=False).ngroups
    one = results.describe_conditions(summary[summary["replicate"] == 0])
    assert "one replicate" in one.attrs["note"] and one["sd"].isna().all()


def test_in_experiment_and_compare_share(summary):
    from synthmix.params import parse_params

    consistency = results.in_experiment(summary, "consistency")
    assert len(consistency) < len(summary) and set(consistency["filter"]) == {"none", "llm_judge"}
    assert set(results.in_experiment(summary, "size")["filter"]) == {"none"}
    assert len(results.in_experiment(summary, "no such experiment")) == len(summary)
    params = parse_params({"study": "x", "claims": {"variety_share": 0.6, "consistency_share": 0.4}})
    assert results.compare_share(params, "variety") == 0.6 and results.compare_share(params, "consistency") == 0.4
    assert results.compare_share(params, "no such experiment") == results.PAPER_BEST_SHARE


def test_leakage_finds_a_planted_near_copy_and_not_unrelated_text():
    test = pd.DataFrame({"text": ["The tutor should ask the student to explain how they carried the tens digit.",
                                  "Praise the effort, then point to the place value column and ask again.",
                                  "I would say nothing and move on to the next problem."]})
    pools = pd.DataFrame({"temperature": [0.7] * 4, "text": [
        "The tutor should ask the student to explain how they had carried the tens digit.",  # near copy
        "praise the effort then point to the place value column and ask again",  # same normalised text
        "Cooking pasta needs salted boiling water and patience.",
        "A completely different reply about fractions and common denominators."]})
    table, examples = diagnostics.leakage(pools, test, threshold=0.9)
    assert table.iloc[0]["near_copies"] == 2 and table.iloc[0]["exact_copies"] == 1
    assert set(examples["nearest"]) == set(test["text"][:2])
    assert not examples["synthetic"].str.contains("pasta|fractions").any()


def test_two_sample_auc_is_near_half_for_one_source_and_high_for_different_ones():
    rng = np.random.default_rng(1)
    same = [_sentence(rng, 10) for _ in range(200)]
    half = diagnostics.two_sample_auc(same[:100], same[100:])["auc"]
    assert abs(half - 0.5) < 0.12
    cooking = ("boil the pasta in salted water stir the sauce add basil and garlic then serve the dish hot "
               "with grated cheese and olive oil").split()
    other = [" ".join(rng.choice(cooking, size=10)) for _ in range(100)]
    assert diagnostics.two_sample_auc(same[:100], other)["auc"] > 0.95
    assert np.isnan(diagnostics.two_sample_auc(["one"], ["two", "three"])["auc"])


def test_diversity_and_distance_per_temperature(tree):
    pools = diagnostics.synthetic_pools(tree)
    human = pd.DataFrame({"text": ["a human answer about carrying digits", "another human reply on place value"] * 10,
                          "label": [0, 1] * 10})
    diversity = diagnostics.diversity_by_temperature(pools, human)
    assert diversity["source"].tolist() == ["human", "synthetic t=0.3", "synthetic t=0.7"]
    assert {"distinct_1", "distinct_2", "mean_pairwise_jaccard"} <= set(diversity.columns)
    distance = diagnostics.distance_by_temperature(pools, human)
    assert (distance["auc"] > 0.9).all()


# ------------------------------------------------------------------------- figures and index
def _replicate_dots(fig) -> int:
    """How many scatter points (replicate dots) a figure draws."""
    from matplotlib.collections import PathCollection

    return sum(len(c.get_offsets()) for ax in fig.axes for c in ax.collections if isinstance(c, PathCollection))


def test_grader_agreement_per_filter_step(tree):
    agreement = diagnostics.grader_agreement_table(tree)
    assert set(agreement["method"]) == {"none", "llm_judge"}
    judged = agreement[agreement["method"] == "llm_judge"]
    assert np.allclose(judged["accuracy"], 0.8)  # every fifth grade was flipped
    assert (agreement["replicate"] == -1).all()  # one grader for every replicate


def test_figures_return_a_figure_and_a_one_line_caption(summary, tree, tmp_path):
    import matplotlib.pyplot as plt

    agreement = diagnostics.grader_agreement_table(tree)
    empty = summary.iloc[0:0]
    calls = [figures.plot_auc_by_share(summary), figures.plot_replicate_spread(summary),
             figures.plot_filter_comparison(summary), figures.plot_teacher_vs_student(summary),
             figures.plot_grader_agreement(agreement), figures.plot_auc_by_share(empty),
             figures.plot_replicate_spread(empty), figures.plot_teacher_vs_student(empty),
             figures.plot_grader_agreement(agreement.iloc[0:0])]
    for i, (fig, caption) in enumerate(calls):
        assert isinstance(caption, str) and caption and "\n" not in caption
        assert "seed" not in caption
        path = figures.save_figure(fig, tmp_path / f"f{i}.png", caption)
        assert path.read_bytes()[:4] == b"\x89PNG" and path.with_suffix(".txt").is_file()
        plt.close(fig)


def test_figures_show_one_dot_per_replicate_and_an_interval(summary, tmp_path):
    import matplotlib.pyplot as plt

    unfiltered_teacher = summary[(summary["model"] == "teacher") & (summary["filter"] == "none")]
    fig, caption = figures.plot_auc_by_share(summary)
    assert _replicate_dots(fig) == len(unfiltered_teacher)  # 2 temperatures x 3 replicates x (5 + 2) runs
    assert "one dot per replicate" in caption and "95% interval across 3 replicates" in caption
    plt.close(fig)
    fig, caption = figures.plot_replicate_spread(summary, 0.8)
    assert _replicate_dots(fig) == 2 * 3
    error_bars = [c for c in fig.axes[0].containers if c.__class__.__name__ == "ErrorbarContainer"]
    assert len(error_bars) == 2  # a mean and its 95% interval per temperature
    interval = error_bars[0].lines[2][0].get_segments()[0][:, 1]  # the vertical bar of t = 0.3
    values = summary[(summary["model"] == "teacher") & (summary["filter"] == "none") & (summary["checkpoint"] == 4)
                     & (summary["protocol"] == "incremental") & (summary["temperature"] == 0.3)]["auc"]
    half = 4.302652729911275 * values.std() / np.sqrt(3)  # t(0.975, 2) * SD / sqrt(3)
    assert sorted(interval) == pytest.approx([values.mean() - half, values.mean() + half])
    plt.close(fig)
    fig, _ = figures.plot_filter_comparison(summary, 0.8)
    assert _replicate_dots(fig) == 2 * 2 * 3  # filters x temperatures x replicates
    plt.close(fig)


def test_the_replay_control_is_drawn_beside_the_synthetic_curve(tmp_path):
    import matplotlib.pyplot as plt

    table = results.summary_table(build_tree(tmp_path / "study", temps=(0.3,), filters=("none",), replay=True))
    fig, caption = figures.plot_auc_by_share(table)
    assert len(fig.axes) == 1 and _replicate_dots(fig) == 3 * 5 + 3 * 5  # synthetic and replay, per replicate
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "replay control (human responses)" in labels and "replay control" in caption
    plt.close(fig)


def test_verdicts_forest_plot_draws_each_estimate_against_its_margin():
    import matplotlib.pyplot as plt

    records = [
        {"id": "1", "part": "incremental, t = 0.3", "role": "primary", "verdict": "supported", "estimate": 0.05,
         "ci_low": 0.03, "ci_high": 0.07, "ci_level": 0.9667, "margin": 0.02, "scale": "difference"},
        {"id": "3", "part": "", "role": "secondary", "verdict": "inconclusive", "estimate": -0.01, "ci_low": -0.05,
         "ci_high": 0.03, "ci_level": 0.9, "margin": 0.02, "scale": "difference"},
        {"id": "2a", "part": "spread", "role": "primary", "verdict": "contradicted", "estimate": 1.1, "ci_low": 0.8,
         "ci_high": 1.3, "ci_level": 0.9667, "margin": 1.5, "scale": "ratio"},
        {"id": "2b", "part": "instability", "role": "secondary", "verdict": "not tested", "estimate": None,
         "ci_low": None, "ci_high": None, "ci_level": None, "margin": None, "scale": "difference"},
    ]
    fig, caption = figures.plot_verdicts(records)
    differences, ratios = fig.axes
    assert ratios.get_xscale() == "log" and differences.get_xscale() == "linear"
    dots = sorted(float(line.get_xdata()[0]) for line in differences.lines if line.get_marker() == "o")
    assert dots == [-0.01, 0.05]
    bands = [patch.get_x() for patch in differences.patches]  # the (-margin, +margin) band
    assert bands == [pytest.approx(-0.02)]
    boundaries = [float(line.get_xdata()[0]) for line in differences.lines if line.get_linestyle() == "--"]
    assert boundaries == [pytest.approx(0.02)]  # every one-sided decision is taken at +margin
    assert [float(line.get_xdata()[0]) for line in ratios.lines if line.get_marker() == "o"] == [1.1]
    assert "not tested" in [t.get_text() for t in differences.texts]
    labels = [t.get_text() for t in differences.get_yticklabels()]
    assert "1 · incremental, t = 0.3 (primary: supported)" in labels
    assert "96.7% for primary verdicts" in caption and "90% for secondary" in caption and "\n" not in caption
    plt.close(fig)
    fig, caption = figures.plot_verdicts([])
    assert caption == "No claim was judged."
    plt.close(fig)


def _claims_file(folder: Path) -> list[dict]:
    entries = [
        {"id": "1", "claim": "Augmentation helps", "part": "incremental protocol, at 80% synthetic", "role": "primary",
         "direction": "helps", "verdict": "supported", "position": "beyond", "estimate": 0.0412, "ci_low": 0.031,
         "ci_high": 0.052, "ci_level": 0.9667, "margin": 0.02, "power": 0.91, "replicates_needed": 4,
         "text": "A gain of +0.041 AUC <over> the human-only teacher."},
        {"id": "1", "claim": "Augmentation helps", "part": "mixed protocol, at 80% synthetic", "role": "secondary",
         "direction": "helps", "verdict": "inconclusive", "position": "crosses", "estimate": -0.004, "ci_low": -0.051,
         "ci_high": 0.043, "ci_level": 0.9, "margin": 0.02, "power": 0.2, "replicates_needed": None,
         "text": "No number of replicates decides."},
        {"id": "2a", "claim": "Temperature 0.3 is stable", "part": "spread", "role": "primary", "direction": "helps",
         "verdict": "contradicted", "position": "crosses", "estimate": 0.67, "ci_low": 0.22, "ci_high": 1.42,
         "ci_level": 0.9667, "margin": 1.5, "power": 0.11, "replicates_needed": 25, "scale": "ratio", "text": "SDs."},
        {"id": "3", "claim": "Filtering does not help", "verdict": "not tested", "estimate": None, "text": ""},
    ]
    io.write_json(folder / "claims.json", entries)
    return entries


def test_index_links_every_rendered_notebook_and_shows_the_claims_table(tree, tmp_path):
    import matplotlib.pyplot as plt

    analyzed = tree / "05_analyze" / "study-x"
    fig, caption = figures.plot_auc_by_share(results.summary_table(tree))
    figures.save_figure(fig, analyzed / "figures" / "auc_by_share.png", caption)
    plt.close(fig)
    _claims_file(analyzed)
    index = report.write_index(tree.parent)
    page = index.read_text()
    links = re.findall(r"href=[\"']([^\"'#]+)[\"']", page)
    # a step listed under two experiments is linked twice
    rendered = sorted({(tree.parent / link).resolve() for link in links if link.endswith(".html")})
    expected = sorted(p.resolve() for p in tree.glob("0[1-4]_*/*/*.html"))
    assert rendered == expected and all(p.is_file() for p in rendered)
    images = re.findall(r"src=[\"']([^\"']+)[\"']", page)
    assert images and all((tree.parent / i).is_file() for i in images)
    assert html_unescape(caption.split(";")[0]) in html_unescape(page)
    for heading in ("Experiment: size", "Experiment: variety", "Experiment: consistency"):
        assert heading in page
    # the claims table comes first, then the figures, then the steps
    assert page.index("The paper's claims") < page.index("Figures") < page.index("Experiment: size")
    table = page[page.index('<table class="claims">'):page.index("</table>", page.index('<table class="claims">'))]
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]]
    assert rows[0] == ["1", "incremental protocol, at 80% synthetic", "primary", "helps (lower bound &gt; margin)",
                       "supported", "beyond", "+0.041", "[+0.031, +0.052] (96.7%)", "0.020", "91%", "4"]
    assert rows[1][1] == "mixed protocol, at 80% synthetic" and rows[1][4:] == [
        "inconclusive", "crosses", "-0.004", "[-0.051, +0.043] (90%)", "0.020", "20%", "none decides"]
    assert rows[2][6:] == ["0.67", "[0.22, 1.42] (96.7%)", "1.5", "11%", "25"]  # a ratio reads as a ratio
    assert rows[3] == ["3", "", "", "", "not tested", "", "", "", "", "", ""]  # missing keys: blank
    assert "&lt;over&gt;" in page and "<over>" not in page  # text is escaped


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


def test_the_index_template_ships_with_the_package():
    from importlib.resources import files

    assert files("synthmix.analysis").joinpath("templates", report.TEMPLATE).is_file()
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"templates/*.j2"' in pyproject and "jinja2>=" in pyproject


def test_an_empty_results_folder_gets_a_page_that_says_so(tmp_path):
    page = report.write_index(tmp_path / "nothing").read_text()
    assert "No complete study under this folder yet." in page


# ---------------------------------------------------------------------------------- notebook
def test_the_analysis_notebook_runs_on_a_constructed_tree(tmp_path):
    import papermill

    study = build_tree(tmp_path / "results" / "study", temps=(0.3, 0.7, 0.9), seeds=(0, 1, 2), replay=True)
    output = tmp_path / "analysis"
    papermill.execute_notebook(str(REPO / "notebooks" / "05_analyze.ipynb"), str(tmp_path / "executed.ipynb"),
                               parameters={"study_dir": str(study), "output_dir": str(output)},
                               kernel_name="python3", cwd=str(REPO / "notebooks"), progress_bar=False)
    assert (output / "summary.csv").is_file() and (study / "summary.csv").is_file()
    table = pd.read_csv(study / "summary.csv")
    assert len(table) == len(results.summary_table(study))
    assert {p.name for p in (output / "figures").glob("*.png")} >= {"auc_by_share.png", "replicate_spread.png",
                                                                     "filter_comparison.png"}
    verdicts = json.loads((output / "claims.json").read_text())
    from synthmix.analysis.claims import RECORD_KEYS

    assert verdicts and all(set(RECORD_KEYS) <= set(c) for c in verdicts)
    index = (tmp_path / "results" / "index.html").read_text()
    assert "auc_by_share.png" in index and "03_train_teacher.html" in index and "The paper's claims" in index
    assert "replicates needed" in index and verdicts[0]["verdict"] in index
