"""The data layer on real human-coded data: the shared SemEval-2013 Beetle corpus (not in the repo).

The XML is turned into the kind of table a user brings (TSV and JSONL, raw 'correct'/'incorrect'
codes, an item column) in a scratch folder; the real `synthmix validate` and the loader read it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pandas as pd
import pytest
import yaml

from conftest import REPO, run_cli
from synthmix.data import load_human_data, split_human_data
from synthmix.params import parse_params


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
    dataset = {"source": "beetle.tsv", "rubric": str(REPO / "src/synthmix/default_data/tutor_error_feedback/rubric.yaml"),
               "text_column": "answer", "label_column": "accuracy", "id_column": "answer_id",
               "item_column": "question", "positive_labels": ["correct"], "negative_labels": ["incorrect"]}
    (folder / "params.yaml").write_text(yaml.safe_dump({"study": "beetle", "dataset": dataset}))
    return folder, table, dataset


def test_real_data_validates_and_reports_duplicates(beetle_study):
    folder, table, _ = beetle_study
    result = run_cli("validate", str(folder / "params.yaml"))
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
    result = run_cli("validate", str(folder / "broken.yaml"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"{folder / 'broken.tsv'}: column 'accuracy' has values {{partially_correct}} in rows 5, 11; "
        "expected one of positive_labels ['correct'] or negative_labels ['incorrect']")
