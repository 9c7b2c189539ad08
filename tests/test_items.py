"""Multi-question (item) data: per-item rubric entries, question text and references from data
columns, per-item AUC, and single-task data sets unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO
from sklearn.metrics import roc_auc_score

from synthmix.data.loading import load_human_data
from synthmix.data.rubric import load_rubric, load_study_rubric
from synthmix.errors import InputError
from synthmix.params import DatasetParams, parse_params
from synthmix.steps.metrics import auc_by_item

EMBEDDED_RUBRIC = REPO / "src/synthmix/data/default_data/tutor_error_feedback/rubric.yaml"
DEFAULT = {"name": "circuits", "scenario": "A lesson on circuits.", "question": "Why does the bulb light?",
           "persona": "You are a student.", "positive_criteria": "Names a closed path.",
           "negative_criteria": "Anything else.", "examples": {"positive": ["closed path"], "negative": ["no idea"]}}


def toy_data(folder, with_columns: bool = True) -> DatasetParams:
    """Two items with their own question text and references in columns of the data."""
    rows = []
    for i in range(24):
        rows.append({"qid": "bulb", "question_text": "Why does bulb A light?", "refs": "A is in a closed path || the path is closed",
                     "answer": f"bulb answer {i}", "code": "correct" if i % 3 == 0 else "incorrect"})
        rows.append({"qid": "switch", "question_text": "What does the open switch do?", "refs": "it opens the circuit",
                     "answer": f"switch answer {i}", "code": "correct" if i % 2 == 0 else "incorrect"})
    pd.DataFrame(rows).to_csv(folder / "two_items.csv", index=False)
    extra = {"item_text_column": "question_text", "reference_column": "refs"} if with_columns else {}
    return DatasetParams(source=str(folder / "two_items.csv"), rubric=str(folder / "rubric.yaml"),
                         text_column="answer", label_column="code", id_column=None, item_column="qid",
                         positive_labels=["correct"], negative_labels=["incorrect"], **extra)


def write_rubric(folder, **changes) -> None:
    (folder / "rubric.yaml").write_text(yaml.safe_dump({**DEFAULT, **changes}))


def test_rubric_items_fall_back_to_the_default_key_by_key(tmp_path):
    write_rubric(tmp_path, items={"switch": {"question": "What does the open switch do?",
                                             "examples": {"negative": ["the bulb gets brighter"]}}})
    rubric = load_rubric(tmp_path / "rubric.yaml")
    switch = rubric.for_item("switch")
    assert switch.question == "What does the open switch do?" and switch.item == "switch"
    assert switch.negative_examples == ("the bulb gets brighter",)
    assert switch.positive_examples == ("closed path",) and switch.scenario == "A lesson on circuits."
    assert rubric.for_item("bulb").question == "Why does the bulb light?"  # no entry: the default
    assert rubric.for_item("") is rubric


def test_question_and_references_come_from_the_data_columns(tmp_path):
    params = toy_data(tmp_path)
    write_rubric(tmp_path, items={"switch": {"negative_criteria": "Says the bulb stays lit."}})
    rubric = load_study_rubric(params)
    bulb, switch = rubric.for_item("bulb"), rubric.for_item("switch")
    assert bulb.question == "Why does bulb A light?"
    assert bulb.positive_examples == ("A is in a closed path", "the path is closed")
    assert bulb.negative_examples == ("no idea",)
    assert switch.question == "What does the open switch do?" and switch.positive_examples == ("it opens the circuit",)
    assert switch.negative_criteria == "Says the bulb stays lit." and bulb.negative_criteria == "Anything else."
    assert sorted(rubric.items) == ["bulb", "switch"]


def test_without_a_question_column_every_item_keeps_the_default(tmp_path):
    params = toy_data(tmp_path, with_columns=False)
    write_rubric(tmp_path)
    rubric = load_study_rubric(params)
    assert rubric.for_item("bulb").question == rubric.question == "Why does the bulb light?"


def test_item_problems_name_the_file_and_the_item(tmp_path):
    write_rubric(tmp_path, items={"swtich": {"question": "What does the open switch do?"},
                                  "bulb": {"critera": "typo", "examples": {"positive": []}}})
    with pytest.raises(InputError) as error:
        load_rubric(tmp_path / "rubric.yaml")
    path = tmp_path / "rubric.yaml"
    assert f"{path}: items.bulb: key 'critera' is unknown" in str(error.value)
    assert f"{path}: items.bulb: examples.positive must be a non-empty list of example responses" in str(error.value)
    write_rubric(tmp_path, items={"swtich": {"question": "What does the open switch do?"}})
    with pytest.raises(InputError, match=r"items\.swtich: no response in the data has item 'swtich'; "
                                         r"items in the data: bulb, switch"):
        load_study_rubric(toy_data(tmp_path))


def test_an_item_with_two_question_texts_is_named(tmp_path):
    params = toy_data(tmp_path)
    table = pd.read_csv(tmp_path / "two_items.csv")
    table.loc[5, "question_text"] = "A different wording"
    table.to_csv(tmp_path / "two_items.csv", index=False)
    with pytest.raises(InputError, match=r"item 'switch': column 'question_text' \(dataset.item_text_column\) "
                                         r"has 2 different texts"):
        load_human_data(params)


def test_single_task_data_keeps_working_unchanged():
    params = parse_params({"study": "t"})
    rubric = load_study_rubric(params.dataset)
    assert rubric == load_rubric(EMBEDDED_RUBRIC) and rubric.items == {}
    assert set(load_human_data(params.dataset).dataset["item"]) == {""}


def test_auc_by_item_pools_and_averages_over_items():
    rng = np.random.default_rng(0)
    labels = np.array([1, 0] * 20 + [1, 1, 1])
    items = np.array(["a"] * 20 + ["b"] * 20 + ["c"] * 3)
    scores = rng.random(len(labels))
    scores[:20] = np.where(labels[:20] == 1, 0.9, 0.1)  # item a: perfect
    result = auc_by_item(labels, scores, items)
    auc_b = roc_auc_score(labels[20:40], scores[20:40])
    assert result["pooled"] == pytest.approx(roc_auc_score(labels, scores))
    assert result["macro"] == pytest.approx((1.0 + auc_b) / 2)
    assert result["n_items"] == 3 and result["n_items_scored"] == 2 and result["items_one_class"] == ["c"]
    table = result["table"].set_index("item")
    assert table.loc["a", "auc"] == 1.0 and table.loc["c", "n"] == 3 and np.isnan(table.loc["c", "auc"])
    assert table["n_positive"].tolist() == [10, 10, 3]
