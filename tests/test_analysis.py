"""The analysis step on constructed results trees and tables with known answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthmix import analysis
from synthmix import io

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


def build_tree(study_dir: Path, temps=(0.3, 0.7), filters=("none", "llm_judge"), seeds=(0, 1, 2),
               protocols=("incremental",), shares=(0.5, 0.8), increments=4, n_human=20, step=20,
               auc=default_auc, distill=True) -> Path:
    """Write a results tree in the driver's formats (generate → filter → train_teacher → distill)."""
    rng = np.random.default_rng(0)
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
                    rows = []
                    for checkpoint, (nh, ns) in enumerate(counts):
                        actual = ns / (nh + ns)
                        value = auc(temperature, method, protocol, actual, seed)
                        rows.append({"protocol": protocol, "seed": seed, "checkpoint": checkpoint, "n_human": nh,
                                     "n_synthetic": ns, "synthetic_share": actual, "auc": value,
                                     "auc_ci_low": value - 0.05, "auc_ci_high": value + 0.05, "macro_f1": value - 0.1,
                                     "macro_f1_ci_low": value - 0.15, "macro_f1_ci_high": value - 0.05,
                                     "accuracy": value - 0.05, "kappa": value - 0.3, "n": 100, "n_positive": 40})
                    io.write_table(teacher / "metrics.parquet", pd.DataFrame(rows))
                    for name_ in ("test_predictions.parquet", "transfer_logits.parquet"):
                        io.write_table(teacher / name_, pd.DataFrame({"x": [1]}))
                    io.write_json(teacher / "teacher_report.json", {"protocol": protocol, "seed": seed})
                    experiments = (["consistency"] if graded else
                                   ["size", "variety", "consistency"] if protocol == "incremental" else ["size"])
                    _complete(teacher, "train_teacher", condition,
                              {"protocol": protocol, "synthetic_share": -1.0 if share is None else share, "seed": seed,
                               "filtered_dir": str(flt), "pool_dir": str(gen)}, experiments)
                    if distill:
                        student = study_dir / "04_distill" / f"{condition}-d"
                        student.mkdir(parents=True)
                        final = rows[-1]["auc"]
                        io.write_json(student / "student_metrics.json", {
                            "auc": final - 0.02, "auc_ci_low": final - 0.07, "auc_ci_high": final + 0.03,
                            "macro_f1": 0.6, "accuracy": 0.7, "kappa": 0.4, "seed": seed,
                            "student_parameters": 11_000_000, "teacher_parameters": 22_000_000,
                            "student_size_mb": 44.0, "teacher_size_mb": 88.0, "student_latency_batch1_s": 0.004,
                            "student_latency_batch32_s": 0.001, "teacher_latency_batch1_s": 0.008,
                            "teacher_latency_batch32_s": 0.002, "speedup_batch1": 2.0, "speedup_batch32": 2.0})
                        _complete(student, "distill", condition, {"seed": seed, "teacher_dir": str(teacher)},
                                  experiments)
    return study_dir


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return build_tree(tmp_path_factory.mktemp("results") / "study", protocols=("incremental", "mixed"))


@pytest.fixture(scope="module")
def summary(tree) -> pd.DataFrame:
    return analysis.summary_table(tree)


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
    steps = analysis.collect_steps(tree)
    counts = steps["kind"].value_counts().to_dict()
    assert counts == {"generate": 2, "filter": 4, "train_teacher": 4 * 3 * 3, "distill": 36}
    assert list(steps["kind"].drop_duplicates()) == ["generate", "filter", "train_teacher", "distill"]
    assert all((tree / n).is_file() for n in steps["notebook"])


def test_summary_has_a_row_per_checkpoint_seed_and_condition(summary, tree):
    teacher, student = summary[summary["model"] == "teacher"], summary[summary["model"] == "student"]
    # 2 temperatures x 2 filters x 3 seeds x (5 incremental checkpoints + 2 mixed runs)
    assert len(teacher) == 2 * 2 * 3 * (5 + 2)
    assert len(student) == 2 * 2 * 3 * 3
    for column in ("model", "experiments", "temperature", "filter", "protocol", "target_share", "seed", "checkpoint",
                   "n_human", "n_synthetic", "synthetic_share", "auc", "auc_ci_low", "auc_ci_high", "macro_f1",
                   "accuracy", "kappa", "notebook"):
        assert column in summary.columns
    assert set(teacher["temperature"]) == {0.3, 0.7} and set(teacher["filter"]) == {"none", "llm_judge"}
    assert teacher.loc[teacher["protocol"] == "mixed", "target_share"].dropna().tolist()
    assert teacher.loc[teacher["protocol"] == "incremental", "target_share"].isna().all()
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
    steps = analysis.collect_steps(copy)
    assert len(analysis.collect_steps(copy, include_stale=True)) == len(steps) + 1
    assert stale.name not in set(steps["name"]) and old.name in set(steps["name"])
    assert len(analysis.summary_table(copy)) == len(analysis.summary_table(tree))


def test_summary_joins_survive_a_moved_tree(tree, tmp_path):
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(tree, moved)
    table = analysis.summary_table(moved)
    assert len(table) == len(analysis.summary_table(tree))
    assert table["temperature"].notna().all() and (table["filter"] != "unknown").all()


# ------------------------------------------------------------------ conditions and baselines
def test_closest_to_share_picks_the_nearest_checkpoint():
    frame = make_summary(lambda *a: 0.7, temps=(0.3,), filters=("none",), seeds=(0, 1))
    assert set(analysis.closest_to_share(frame, 0.8)["checkpoint"]) == {4}
    assert set(analysis.closest_to_share(frame, 0.7)["checkpoint"]) == {2}  # .667 is nearer than .75
    assert set(analysis.closest_to_share(frame, 0.0)["checkpoint"]) == {0}
    assert len(analysis.closest_to_share(frame, 0.8)) == 2  # one per seed
    tie = pd.DataFrame({"model": "teacher", "protocol": "incremental", "temperature": 0.3, "filter": "none",
                        "seed": 0, "checkpoint": [0, 1, 2], "synthetic_share": [0.4, 0.6, 0.8]})
    assert analysis.closest_to_share(tie, 0.5)["checkpoint"].tolist() == [0]  # a tie goes to the earlier one


def test_in_experiment_and_compare_share(summary):
    from synthmix.params import parse_params

    consistency = analysis.in_experiment(summary, "consistency")
    assert len(consistency) < len(summary) and set(consistency["filter"]) == {"none", "llm_judge"}
    assert set(analysis.in_experiment(summary, "size")["filter"]) == {"none"}
    assert len(analysis.in_experiment(summary, "no such experiment")) == len(summary)
    params = parse_params({"study": "x", "experiments": {"variety": {"compare_at_share": 0.5}}})
    assert analysis.compare_share(params, "variety") == 0.5
    assert analysis.compare_share(params, "consistency") == analysis.PAPER_BEST_SHARE


def test_paired_vs_human_recovers_a_constructed_gain():
    frame = make_summary(lambda t, m, p, share, seed: 0.7 + 0.01 * seed + (0.05 if share > 0.79 else 0.0)
                         + (0.001 * seed if share > 0 else 0), temps=(0.7,), filters=("none",), seeds=range(6))
    paired = analysis.paired_vs_human(frame)
    assert len(paired) == 4  # checkpoints 1-4
    best = paired.loc[paired["checkpoint"] == 4].iloc[0]
    assert best["n_pairs"] == 6 and best["mean_diff"] == pytest.approx(0.05 + 0.0025)
    assert best["p_holm"] < 0.001 and best["cohens_dz"] > 1
    assert paired.loc[paired["checkpoint"] == 1, "mean_diff"].iloc[0] == pytest.approx(0.0025)


def test_share_vs_human_averages_temperatures_within_each_seed():
    frame = make_summary(lambda t, m, p, share, seed: 0.7 + 0.01 * seed + (share > 0) * (0.02 + 0.04 * t)
                         + 0.001 * seed * (share > 0), temps=(0.3, 0.7), filters=("none", "llm_judge"), seeds=range(4))
    shares = analysis.share_vs_human(frame)
    assert shares["share_point"].tolist() == [f"incremental ckpt {k}" for k in range(1, 5)]
    assert (shares["temperatures"] == 2).all() and (shares["n_pairs"] == 4).all()
    assert np.allclose(shares["mean_diff"], 0.02 + 0.04 * 0.5 + 0.0015)


def test_statistics_say_why_when_there_is_a_single_seed():
    frame = make_summary(default_auc, temps=(0.7,), filters=("none",), seeds=(0,))
    assert analysis.describe_conditions(frame).attrs["note"]
    assert analysis.paired_vs_human(frame).attrs["note"]
    tests = analysis.temperature_tests(analysis.variety_frame(frame))
    assert tests["omnibus"]["p_value"].isna().all() and tests["omnibus"]["note"].str.len().gt(0).all()
    assert "filters present" in analysis.filter_comparison(frame).attrs["note"]
    assert all(c["supported"] is None and c["evidence"].startswith("Inconclusive") for c in analysis.claims(frame))


# --------------------------------------------------------------------------------- statistics
def test_a_variance_difference_across_temperatures_is_flagged_and_equal_spreads_are_not():
    deviations = np.array([-2, -1, -0.5, 0, 0.5, 1, 2, 1.5, -1.5, 0.2])
    unequal = pd.DataFrame({"temperature": np.repeat([0.3, 0.7], 10),
                            "auc": np.r_[0.8 + 0.001 * deviations, 0.8 + 0.03 * deviations], "gain": 0.0})
    equal = unequal.assign(auc=np.r_[0.8 + 0.01 * deviations, 0.75 + 0.01 * deviations])
    flagged = analysis.temperature_tests(unequal)["omnibus"].set_index("test")
    assert flagged.loc["Brown–Forsythe (equal variances)", "p_value"] < 0.01
    calm = analysis.temperature_tests(equal)
    assert calm["omnibus"].set_index("test").loc["Brown–Forsythe (equal variances)", "p_value"] > 0.5
    # equal spreads but different means: the location tests see it
    assert calm["omnibus"].set_index("test").loc["Welch ANOVA (equal means)", "p_value"] < 0.001
    assert calm["games_howell"]["p_value"].iloc[0] < 0.001 and calm["mannwhitney"]["p_holm"].iloc[0] < 0.01


def test_variety_frame_is_at_the_share_with_gains_over_the_baseline(summary):
    variety = analysis.variety_frame(summary, 0.8)
    assert len(variety) == 2 * 3  # temperatures x seeds, unfiltered, incremental
    assert set(variety["filter"]) == {"none"} and set(variety["protocol"]) == {"incremental"}
    assert np.allclose(variety["synthetic_share"], 0.8)
    assert np.allclose(variety["gain"], variety["auc"] - (0.70 + 0.005 * variety["seed"]))


def test_filter_comparison_recovers_a_constructed_difference():
    frame = make_summary(lambda t, m, p, share, seed: 0.7 + 0.003 * seed * (1 + t) + (0.02 if m != "none" else 0),
                         temps=(0.3, 0.7), seeds=range(5))
    compared = analysis.filter_comparison(frame, 0.8)
    pooled = compared[compared["scope"] == "pooled"].iloc[0]
    assert pooled["method"] == "llm_judge" and pooled["n_pairs"] == 10
    assert pooled["mean_diff"] == pytest.approx(0.02)
    per_temperature = compared[compared["scope"] == "per temperature"]
    assert sorted(per_temperature["temperature"]) == [0.3, 0.7] and (per_temperature["n_pairs"] == 5).all()


# --------------------------------------------------------------------------------- the claims
def supporting_auc(temperature, method, protocol, share, seed):
    rng = np.random.default_rng(int(seed * 100 + temperature * 10 + share * 1000) + 7 * (method != "none"))
    if share == 0:
        return 0.70 + 0.004 * seed
    gain = 0.05 * (1 - abs(share - 0.8) / 0.8)
    spread = 0.002 if temperature < 0.5 else 0.04
    return 0.70 + 0.004 * seed + gain + rng.normal(0, spread)


def contradicting_auc(temperature, method, protocol, share, seed):
    rng = np.random.default_rng(int(seed * 100 + temperature * 10 + share * 1000) + 7 * (method != "none"))
    if share == 0:
        return 0.75 + 0.004 * seed
    spread = 0.04 if temperature < 0.5 else 0.002  # 0.3 is the noisy one
    return 0.72 + 0.004 * seed + rng.normal(0, spread) + (0.03 if method != "none" else 0)  # filtering helps


def test_claims_are_supported_by_supporting_data():
    verdicts = analysis.claims(make_summary(supporting_auc))
    assert [c["supported"] for c in verdicts] == [True, True, True], verdicts
    assert "80%" in verdicts[0]["evidence"] and "Brown–Forsythe" in verdicts[1]["evidence"]
    assert re.search(r"[-+]\d\.\d{3}", verdicts[2]["evidence"])


def test_claims_flip_on_contradicting_data():
    verdicts = analysis.claims(make_summary(contradicting_auc))
    assert [c["supported"] for c in verdicts] == [False, False, False], verdicts
    assert all(analysis.verdict(c["supported"]) == "not supported" for c in verdicts)


def test_claim_one_needs_the_best_share_near_eighty_percent():
    early = make_summary(lambda t, m, p, share, seed: 0.7 + 0.003 * seed + (0.06 if 0.4 < share < 0.6 else 0.0)
                         + 0.001 * (seed % 3) * (share > 0))
    verdict = analysis.claims(early)[0]
    assert verdict["supported"] is False and "far from" in verdict["evidence"] and "50%" in verdict["evidence"]


def test_claim_one_is_inconclusive_on_the_best_share_when_no_share_near_eighty_percent_was_run():
    frame = make_summary(supporting_auc)
    frame = frame[frame["synthetic_share"] <= 0.5]  # checkpoints 0 and 1 only
    verdict = analysis.claims(frame)[0]
    assert verdict["supported"] is None and "no share near 80% was run" in verdict["evidence"]


# -------------------------------------------------------------------------------- diagnostics
def test_leakage_finds_a_planted_near_copy_and_not_unrelated_text():
    test = pd.DataFrame({"text": ["The tutor should ask the student to explain how they carried the tens digit.",
                                  "Praise the effort, then point to the place value column and ask again.",
                                  "I would say nothing and move on to the next problem."]})
    pools = pd.DataFrame({"temperature": [0.7] * 4, "text": [
        "The tutor should ask the student to explain how they had carried the tens digit.",  # near copy
        "praise the effort then point to the place value column and ask again",  # same normalised text
        "Cooking pasta needs salted boiling water and patience.",
        "A completely different reply about fractions and common denominators."]})
    table, examples = analysis.leakage(pools, test, threshold=0.9)
    assert table.iloc[0]["near_copies"] == 2 and table.iloc[0]["exact_copies"] == 1
    assert set(examples["nearest"]) == set(test["text"][:2])
    assert not examples["synthetic"].str.contains("pasta|fractions").any()


def test_two_sample_auc_is_near_half_for_one_source_and_high_for_different_ones():
    rng = np.random.default_rng(1)
    same = [_sentence(rng, 10) for _ in range(200)]
    half = analysis.two_sample_auc(same[:100], same[100:])["auc"]
    assert abs(half - 0.5) < 0.12
    cooking = ("boil the pasta in salted water stir the sauce add basil and garlic then serve the dish hot "
               "with grated cheese and olive oil").split()
    other = [" ".join(rng.choice(cooking, size=10)) for _ in range(100)]
    assert analysis.two_sample_auc(same[:100], other)["auc"] > 0.95
    assert np.isnan(analysis.two_sample_auc(["one"], ["two", "three"])["auc"])


def test_diversity_and_distance_per_temperature(tree):
    pools = analysis.synthetic_pools(tree)
    human = pd.DataFrame({"text": ["a human answer about carrying digits", "another human reply on place value"] * 10,
                          "label": [0, 1] * 10})
    diversity = analysis.diversity_by_temperature(pools, human)
    assert diversity["source"].tolist() == ["human", "synthetic t=0.3", "synthetic t=0.7"]
    assert {"distinct_1", "distinct_2", "mean_pairwise_jaccard"} <= set(diversity.columns)
    distance = analysis.distance_by_temperature(pools, human)
    assert (distance["auc"] > 0.9).all()


# ------------------------------------------------------------------------- figures and index
def test_figures_return_a_figure_and_a_one_line_caption(summary, tree, tmp_path):
    import matplotlib.pyplot as plt

    agreement = analysis.grader_agreement_table(tree)
    assert set(agreement["method"]) == {"none", "llm_judge"}
    judged = agreement[agreement["method"] == "llm_judge"]
    assert np.allclose(judged["accuracy"], 0.8)  # every fifth grade was flipped
    empty = summary.iloc[0:0]
    calls = [analysis.plot_auc_by_share(summary), analysis.plot_seed_spread(summary),
             analysis.plot_filter_comparison(summary), analysis.plot_teacher_vs_student(summary),
             analysis.plot_grader_agreement(agreement), analysis.plot_auc_by_share(empty),
             analysis.plot_seed_spread(empty), analysis.plot_teacher_vs_student(empty),
             analysis.plot_grader_agreement(agreement.iloc[0:0])]
    for i, (fig, caption) in enumerate(calls):
        assert isinstance(caption, str) and caption and "\n" not in caption
        path = analysis.save_figure(fig, tmp_path / f"f{i}.png", caption)
        assert path.read_bytes()[:4] == b"\x89PNG" and path.with_suffix(".txt").is_file()
        plt.close(fig)


def test_index_links_every_rendered_notebook(tree, tmp_path):
    import matplotlib.pyplot as plt

    figures = tree / "05_analyze" / "study-x" / "figures"
    fig, caption = analysis.plot_auc_by_share(analysis.summary_table(tree))
    analysis.save_figure(fig, figures / "auc_by_share.png", caption)
    plt.close(fig)
    index = analysis.write_index(tree.parent)
    page = index.read_text()
    links = re.findall(r"href='([^'#]+)'", page)
    # a step listed under two experiments is linked twice
    rendered = sorted({(tree.parent / link).resolve() for link in links if link.endswith(".html")})
    expected = sorted(p.resolve() for p in tree.glob("0[1-4]_*/*/*.html"))
    assert rendered == expected and all(p.is_file() for p in rendered)
    images = re.findall(r"src='([^']+)'", page)
    assert images and all((tree.parent / i).is_file() for i in images)
    assert caption.split(";")[0] in page.replace("&#x27;", "'")
    for heading in ("Experiment: size", "Experiment: variety", "Experiment: consistency"):
        assert heading in page


# ---------------------------------------------------------------------------------- notebook
def test_the_analysis_notebook_runs_on_a_constructed_tree(tmp_path):
    import papermill

    study = build_tree(tmp_path / "results" / "study", temps=(0.3, 0.7, 0.9), seeds=(0, 1, 2), increments=2)
    output = tmp_path / "analysis"
    papermill.execute_notebook(str(REPO / "notebooks" / "05_analyze.ipynb"), str(tmp_path / "executed.ipynb"),
                               parameters={"study_dir": str(study), "output_dir": str(output)},
                               kernel_name="python3", cwd=str(REPO / "notebooks"), progress_bar=False)
    assert (output / "summary.csv").is_file() and (study / "summary.csv").is_file()
    table = pd.read_csv(study / "summary.csv")
    assert len(table) == len(analysis.summary_table(study))
    assert len(list((output / "figures").glob("*.png"))) == 5
    verdicts = json.loads((output / "claims.json").read_text())
    assert len(verdicts) == 3 and all({"claim", "supported", "evidence"} <= set(c) for c in verdicts)
    index = (tmp_path / "results" / "index.html").read_text()
    assert "auc_by_share.png" in index and "03_train_teacher.html" in index and "The paper's claims" in index
