"""Leak-free, replicate-aware splits: identical responses share a split, items and labels stay
stratified, each replicate draws its own split, and dedupe / test-copy removal are counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthmix.data.loading import load_human_data, normalise_text
from synthmix.data.splits import remove_test_copies, split_human_data, split_indices, split_report
from synthmix.errors import InputError
from synthmix.params import DatasetParams


def write_responses(folder, rows) -> DatasetParams:
    """Real files: a CSV of (item, response, code) rows and the dataset params that read it."""
    pd.DataFrame(rows, columns=["item", "response", "code"]).to_csv(folder / "coded.csv", index=False)
    return DatasetParams(source=str(folder / "coded.csv"), rubric="unused.yaml", text_column="response",
                         label_column="code", id_column=None, item_column="item",
                         positive_labels=["correct"], negative_labels=["incorrect"])


def many_duplicates() -> list[tuple]:
    """A data set like real short-answer data: a few answers repeated dozens of times, spelled differently."""
    rows = []
    for i in range(60):
        rows.append(("q1", ["yes", "Yes!", "YES."][i % 3], "incorrect" if i % 5 else "correct"))
    for i in range(25):
        rows.append(("q2", ["no idea", "No idea..."][i % 2], "incorrect"))
    for i in range(20):
        rows.append(("q1", "the bulb is in a closed path", "correct"))
    for i in range(90):
        rows.append((f"q{1 + i % 2}", f"distinct answer number {i} about the circuit", "correct" if i % 3 else "incorrect"))
    return rows


def test_identical_responses_never_cross_splits(tmp_path):
    params = write_responses(tmp_path, many_duplicates())
    loaded = load_human_data(params).dataset
    for replicate in range(5):
        splits = split_human_data(loaded, params, replicate=replicate)
        keys = {name: {normalise_text(t) for t in part["text"]} for name, part in splits.items()}
        assert not keys["train"] & keys["test"] and not keys["validation"] & keys["test"]
        assert not keys["train"] & keys["validation"]
        assert sum(len(part) for part in splits.values()) == len(loaded)
        report = split_report(splits)
        assert report["groups_across_splits"] == 0
        assert report["duplicate_groups"] == 3 and report["duplicate_rows"] == 60 + 25 + 20


def test_the_old_ungrouped_split_would_leak(tmp_path):
    """The check above can fail: splitting rows one by one puts 'yes' on both sides."""
    params = write_responses(tmp_path, many_duplicates())
    loaded = load_human_data(params).dataset
    rows = split_indices(loaded["label"], 13, 1 / 3, 0.25)  # no texts: every row its own group
    train = {normalise_text(loaded["text"][i]) for i in rows["train"]}
    test = {normalise_text(loaded["text"][i]) for i in rows["test"]}
    assert "yes" in train & test


def test_each_replicate_draws_its_own_reproducible_split(tmp_path):
    params = write_responses(tmp_path, many_duplicates())
    loaded = load_human_data(params).dataset
    test_rows = [tuple(split_human_data(loaded, params, replicate=r)["test"]["row"]) for r in range(4)]
    assert len(set(test_rows)) == 4
    assert tuple(split_human_data(loaded, params, replicate=2)["test"]["row"]) == test_rows[2]
    other_seed = params.model_copy(update={"split_seed": 14})
    assert tuple(split_human_data(loaded, other_seed, replicate=0)["test"]["row"]) != test_rows[0]


def two_items() -> list[tuple]:
    """Item a: 60 responses, 20 correct; item b: 90 responses, 60 correct (different base rates)."""
    rows = [("a", f"answer {i} to the first question", "correct" if i < 20 else "incorrect") for i in range(60)]
    rows += [("b", f"reply {i} to the second question", "correct" if i < 60 else "incorrect") for i in range(90)]
    return rows


@pytest.mark.parametrize("replicate", [0, 1, 2])
def test_split_is_stratified_by_item_and_label(tmp_path, replicate):
    params = write_responses(tmp_path, two_items())
    splits = split_human_data(load_human_data(params).dataset, params, replicate=replicate)
    report = split_report(splits)
    sizes = {("a", 1): 20, ("a", 0): 40, ("b", 1): 60, ("b", 0): 30}
    for (item, code), size in sizes.items():
        cell = report["by_item"][item]
        training = cell["train"][code] + cell["validation"][code]
        assert abs(training - size / 3) <= 1.5, (item, code, cell)
        assert abs(cell["validation"][code] - size / 12) <= 1.5, (item, code, cell)
        assert cell["test"][code] == size - training


def test_every_split_holds_both_labels_even_when_groups_are_few(tmp_path):
    rows = [("q", "yes", "correct")] * 30 + [("q", "a right answer", "correct"), ("q", "another right one", "correct")]
    rows += [("q", f"wrong {i}", "incorrect") for i in range(12)]
    params = write_responses(tmp_path, rows)
    splits = split_human_data(load_human_data(params).dataset, params)
    assert all(set(part["label"]) == {0, 1} for part in splits.values())


def test_too_few_distinct_responses_of_a_class_is_an_input_error(tmp_path):
    rows = [("q", "yes", "correct")] * 10 + [("q", "right", "correct")] + [("q", f"wrong {i}", "incorrect") for i in range(9)]
    params = write_responses(tmp_path, rows)
    with pytest.raises(InputError, match="only 2 distinct responses .* coded 1"):
        split_human_data(load_human_data(params).dataset, params)


def test_dedupe_keeps_the_majority_and_reports_conflicts(tmp_path):
    rows = [("q", "Yes", "correct"), ("q", "yes!", "correct"), ("q", "YES", "incorrect"),
            ("q", "no", "incorrect"), ("q", "No.", "incorrect")]
    rows += [("q", f"answer {i}", "correct" if i % 2 else "incorrect") for i in range(10)]
    params = write_responses(tmp_path, rows).model_copy(update={"dedupe": True})
    loaded = load_human_data(params)
    table = loaded.dataset.to_pandas()
    assert len(table) == 12
    assert table.loc[table["text"] == "Yes", "label"].tolist() == [1]
    assert len(loaded.conflicts) == 1
    assert "'Yes' is coded 1 2 times and 0 1 times (rows 1, 2, 3); kept once, coded 1" in loaded.conflicts[0]
    assert any("dedupe kept 12 of 15" in w for w in loaded.warnings)
    without = load_human_data(params.model_copy(update={"dedupe": False}))
    assert len(without.dataset) == 15 and without.conflicts == []


def test_remove_test_copies_counts_what_it_drops(tmp_path):
    params = write_responses(tmp_path, many_duplicates())
    test = split_human_data(load_human_data(params).dataset, params)["test"]
    copy = test["text"][0]
    pool = pd.DataFrame({"text": [copy.upper() + "!", "a new synthetic answer", copy, "another new one"],
                         "label": [1, 0, 1, 1]})
    kept, removed = remove_test_copies(pool, test)
    assert removed == 2
    assert kept["text"].tolist() == ["a new synthetic answer", "another new one"]
    kept_dataset, removed_again = remove_test_copies(test, test)
    assert removed_again == len(test) and len(kept_dataset) == 0
    assert np.array_equal(remove_test_copies(pool, [])[0]["text"], pool["text"])
