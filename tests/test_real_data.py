"""The data layer on real human-coded data: the shared SemEval-2013 Beetle corpus (not in the repo).

The XML is turned into the kind of table a user brings (TSV and JSONL, raw 'correct'/'incorrect'
codes, an item column) in a scratch folder; the real `synthmix validate` and the loader read it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pandas as pd
import pytest
import yaml
from conftest import REPO, cli_here, run_cli

from synthmix.data.loading import load_human_data
from synthmix.data.splits import split_human_data
from synthmix.params import parse_params

pytestmark = pytest.mark.xdist_group("test_real_data")  # pytest-xdist: on one worker (its module-scoped fixtures are built once)


def beetle_table(folder) -> pd.DataFrame:
    """One row per student answer of the Beetle training questions."""
    rows = []
    for path in sorted((folder / "training" / "2way" / "beetle").glob("*.xml")):
        question = ElementTree.parse(path).getroot()
        for answer in question.iter("studentAnswer"):
            rows.append({"answer_id": answer.get("id"), "question": question.get("id"),
                         "answer": (answer.text or "").strip(), "accuracy": answer.get("accuracy")})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def beetle_study(beetle_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("beetle")
    table = beetle_table(beetle_dir)
    table.to_csv(folder / "beetle.tsv", sep="\t", index=False)
    table.to_json(folder / "beetle.jsonl", orient="records", lines=True)
    dataset = {"source": "beetle.tsv", "rubric": str(REPO / "src/synthmix/data/default_data/tutor_error_feedback/rubric.yaml"),
               "text_column": "answer", "label_column": "accuracy", "id_column": "answer_id",
               "item_column": "question", "positive_labels": ["correct"], "negative_labels": ["incorrect"]}
    (folder / "params.yaml").write_text(yaml.safe_dump({"study": "beetle", "dataset": dataset}))
    return folder, table, dataset


def test_real_data_validates_and_reports_duplicates(beetle_study):
    folder, table, _ = beetle_study
    result = cli_here("validate", str(folder / "params.yaml"))
    assert result.returncode == 0, result.stderr
    n_correct = int((table["accuracy"] == "correct").sum())
    assert f"{len(table)} responses, {n_correct} coded 1" in result.stdout
    assert len(table) == 3941 and n_correct == 1665  # the corpus as distributed
    assert "responses appear more than once" in result.stdout  # short answers repeat in real data


def test_real_data_splits_stratified_and_deterministic(beetle_study):
    folder, table, dataset = beetle_study
    for source in ("beetle.tsv", "beetle.jsonl"):
        params = parse_params({"study": "b", "dataset": {**dataset, "source": source}})
        loaded = load_human_data(params.dataset, folder / "params.yaml").dataset
        splits = split_human_data(loaded, params.dataset)
        again = split_human_data(loaded, params.dataset)
        rows = {name: set(part["row"]) for name, part in splits.items()}
        assert rows == {name: set(part["row"]) for name, part in again.items()}
        assert not rows["test"] & (rows["train"] | rows["validation"])
        assert sum(map(len, rows.values())) == len(table)
        share = {name: sum(part["label"]) / len(part) for name, part in splits.items()}
        assert max(share.values()) - min(share.values()) < 0.02
        assert len(splits["test"]) / len(table) == pytest.approx(2 / 3, abs=0.01)
        assert set(splits["train"]["item"]) <= set(table["question"])


def test_real_data_with_a_code_outside_the_mapping_names_the_rows(beetle_study):
    folder, table, dataset = beetle_study
    broken = table.copy()
    broken.loc[[4, 10], "accuracy"] = "partially_correct"
    broken.to_csv(folder / "broken.tsv", sep="\t", index=False)
    (folder / "broken.yaml").write_text(yaml.safe_dump({"study": "beetle", "dataset": {**dataset, "source": "broken.tsv"}}))
    result = cli_here("validate", str(folder / "broken.yaml"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"{folder / 'broken.tsv'}: column 'accuracy' has values {{partially_correct}} in rows 5, 11; "
        "expected one of positive_labels ['correct'] or negative_labels ['incorrect']")


# ------------------------------------------------------- the SemEval XML read in place
SEMEVAL_DATASET = {"rubric": "rubric.yaml", "text_column": "response", "label_column": "label",
                   "id_column": "response_id", "item_column": "item", "item_text_column": "question",
                   "reference_column": "reference", "positive_labels": ["correct"], "negative_labels": ["incorrect"]}
BEETLE_RUBRIC = {
    "name": "beetle", "scenario": "Students in a tutorial dialogue system about basic electricity answer 'explain why' "
    "questions about circuits.", "persona": "You are a student in a tutorial about electric circuits, typing a short answer.",
    "positive_criteria": "The answer gives the reason stated in the reference answers.",
    "negative_criteria": "The answer is wrong, irrelevant, vague or incomplete.",
    "examples": {"positive": ["the bulb is in a closed path with the battery"], "negative": ["i do not know"]}}


def test_semeval_source_reads_items_questions_and_references(beetle_dir, tmp_path):
    from synthmix.data.loading import load_human_data
    from synthmix.data.rubric import load_study_rubric

    (tmp_path / "rubric.yaml").write_text(yaml.safe_dump(BEETLE_RUBRIC))  # no question: the XML gives each one
    folder = beetle_dir / "training" / "2way" / "beetle"
    params = parse_params({"study": "b", "dataset": {**SEMEVAL_DATASET, "source": f"semeval:{folder}"}}).dataset
    loaded = load_human_data(params, tmp_path / "params.yaml")
    assert len(loaded.dataset) == 3941 and sum(loaded.dataset["label"]) == 1665
    assert len(loaded.items) == 47 and len(set(loaded.dataset["item"])) == 47
    rubric = load_study_rubric(params, tmp_path / "params.yaml", loaded)
    item = rubric.for_item("BULB_C_VOLTAGE_EXPLAIN_WHY1")
    assert item.question == "Explain why you got a voltage reading of 1.5 for terminal 1 and the positive terminal."
    assert item.positive_examples[0] == "Terminal 1 and the positive terminal are separated by the gap"
    assert len(item.positive_examples) == 5 and item.negative_examples == ("i do not know",)


def test_semeval_folder_without_xml_names_the_folders_that_have_it(beetle_dir, tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"study": "b", "dataset": {
        **SEMEVAL_DATASET, "source": f"semeval:{beetle_dir}"}}))
    (tmp_path / "rubric.yaml").write_text(yaml.safe_dump(BEETLE_RUBRIC))
    result = cli_here("validate", str(tmp_path / "params.yaml"))
    assert result.returncode == 2
    assert f"{beetle_dir}: no SemEval question files (*.xml) in this folder; folders below it that hold XML files: " \
           "test/2way/beetle/test-unseen-answers, test/2way/beetle/test-unseen-questions, training/2way/beetle" \
           in result.stderr


def test_beetle_split_keeps_identical_answers_together(beetle_dir):
    from synthmix.data.loading import load_human_data, normalise_text
    from synthmix.data.splits import split_human_data, split_report

    folder = beetle_dir / "training" / "2way" / "beetle"
    params = parse_params({"study": "b", "dataset": {**SEMEVAL_DATASET, "source": f"semeval:{folder}",
                                                     "item_text_column": None, "reference_column": None}}).dataset
    splits = split_human_data(load_human_data(params).dataset, params, replicate=1)
    report = split_report(splits)
    assert report["groups_across_splits"] == 0 and report["duplicate_groups"] > 200
    train = {normalise_text(t) for t in splits["train"]["text"]}
    assert not train & {normalise_text(t) for t in splits["test"]["text"]}
    for item, cells in report["by_item"].items():  # every question is stratified: about a third trains
        n = sum(sum(c.values()) for c in cells.values())
        trained = sum(cells["train"].values()) + sum(cells["validation"].values())
        assert abs(trained - n / 3) <= 4, (item, cells)


def test_reduced_beetle_study_runs_to_a_teacher_with_per_item_auc(beetle_dir, tmp_path):
    """Three Beetle questions, smoke-sized settings, the offline generator: generate, filter, teacher."""
    import shutil

    import pandas as pd

    from synthmix.steps.metrics import auc_by_item

    questions = tmp_path / "questions"  # a scratch selection of the shared XML, outside the repository
    questions.mkdir()
    for name in ("FaultFinding-BULB_C_VOLTAGE_EXPLAIN_WHY1", "SwitchesBulbsSeries-SWITCH_OPEN_EXPLAIN_Q",
                 "FaultFinding-TERMINAL_STATE_EXPLAIN_Q"):
        shutil.copy(beetle_dir / "training" / "2way" / "beetle" / f"{name}.xml", questions)
    # a default question as well, for steps that read the rubric without the data's items
    (tmp_path / "rubric.yaml").write_text(yaml.safe_dump({**BEETLE_RUBRIC, "question": "Explain why."}))
    params = {"study": "beetle-reduced", "dataset": {**SEMEVAL_DATASET, "source": "semeval:questions"},
              "generation": {"temperatures": [0.7], "pool_margin": 1.0, "responses_per_call": 5, "max_tokens": 200,
                             "max_calls_per_label": 8},
              "teacher": {"synthetic_shares": [0.1], "max_length": 48, "max_epochs": 1, "patience": 1,
                          "increment": 4, "bootstrap_resamples": 100},
              "replicates": 1}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    checked = cli_here("validate", str(tmp_path / "params.yaml"))
    assert checked.returncode == 0, checked.stderr
    assert "301 responses, 87 coded 1" in checked.stdout and "3 items, each stratified" in checked.stdout
    out = run_cli("run", str(tmp_path / "params.yaml"), "--only", "train_teacher", "--results", str(tmp_path / "results"),
                  "--no-progress")
    assert out.returncode == 0, out.stdout + out.stderr
    (teacher,) = (tmp_path / "results" / "beetle-reduced" / "03_train_teacher").glob("*")
    predictions = pd.read_parquet(teacher / "test_predictions.parquet")
    human_only = predictions[predictions["checkpoint"] == 0]
    assert len(human_only) == 200 and human_only["item"].nunique() == 3
    result = auc_by_item(human_only["label"], human_only["score"], human_only["item"])
    assert result["n_items_scored"] == 3 and 0 <= result["macro"] <= 1 and 0 <= result["pooled"] <= 1


def test_semeval_folder_fingerprint_follows_its_xml(beetle_dir, tmp_path):
    import shutil

    from synthmix.data.loading import dataset_fingerprint
    from synthmix.params import DatasetParams

    shutil.copy(beetle_dir / "training" / "2way" / "beetle" / "FaultFinding-TERMINAL_STATE_EXPLAIN_Q.xml", tmp_path)
    params = DatasetParams(source="semeval:.")
    before = dataset_fingerprint(params, tmp_path / "params.yaml")
    path = tmp_path / "FaultFinding-TERMINAL_STATE_EXPLAIN_Q.xml"
    path.write_text(path.read_text().replace('accuracy="correct"', 'accuracy="incorrect"', 1))
    assert dataset_fingerprint(params, tmp_path / "params.yaml") != before
