"""`synthmix init DATA`: proposes columns and label mapping, writes params + rubric template whose
TODO parts make `synthmix validate` fail until a person writes them."""

from __future__ import annotations

import pandas as pd
import yaml
from conftest import run_cli

from synthmix.data.rubric import TODO_MARK
from synthmix.params import load_params


def coded_csv(folder):
    """A user's file: string codes, an item column, an id column, in an order that hides nothing."""
    rows = []
    for item in ("fractions", "decimals"):
        for i in range(30):
            good = i % 3 == 0
            rows.append({"response_id": f"{item}-{i}", "code": "Correct" if good else "incorrect",
                         "question_id": item, "answer": f"{'good' if good else 'weak'} answer {i} about {item}, in words"})
    pd.DataFrame(rows).to_csv(folder / "coded.csv", index=False)
    return folder / "coded.csv"


def fill_todos(value):
    """What a person does: write every marked part."""
    if isinstance(value, dict):
        return {k: fill_todos(v) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_todos(v) for v in value]
    return "Written by the researcher." if value == TODO_MARK else value


def test_init_proposes_columns_and_labels_and_validate_passes_once_todos_are_written(tmp_path):
    data = coded_csv(tmp_path)
    out = run_cli("init", str(data))
    assert out.returncode == 0, out.stderr
    assert "values: incorrect x40, Correct x20" in out.stdout
    params_file, rubric_file = tmp_path / "coded.params.yaml", tmp_path / "coded.rubric.yaml"
    params = load_params(params_file).dataset
    assert (params.text_column, params.label_column, params.item_column, params.id_column) == \
        ("answer", "code", "question_id", "response_id")
    assert (params.positive_labels, params.negative_labels) == (["Correct"], ["incorrect"])
    assert all("#" in line for line in params_file.read_text().splitlines()
               if line.strip() and not line.rstrip().endswith(":")), "every key carries a comment"

    before = run_cli("validate", str(params_file))
    assert before.returncode == 2
    missing = before.stderr.strip().splitlines()
    assert f"{rubric_file}: scenario still says '{TODO_MARK}': write it" in missing
    assert f"{rubric_file}: items.decimals.question still says '{TODO_MARK}': write it" in missing
    assert len(missing) == 9  # scenario, question, persona, 2 criteria, 2 examples, 2 items' questions

    rubric_file.write_text(yaml.safe_dump(fill_todos(yaml.safe_load(rubric_file.read_text()))))
    after = run_cli("validate", str(params_file))
    assert after.returncode == 0, after.stderr
    assert "2 items, each stratified" in after.stdout


def test_unmapped_label_values_are_left_for_a_person(tmp_path):
    data = coded_csv(tmp_path)
    table = pd.read_csv(data)
    table.loc[::4, "code"] = "partially_correct"
    table.to_csv(data, index=False)
    assert run_cli("init", str(data)).returncode == 0
    text = (tmp_path / "coded.params.yaml").read_text()
    assert "values not mapped yet: partially_correct (15)" in text
    out = run_cli("validate", str(tmp_path / "coded.params.yaml"))
    assert out.returncode == 2 and "partially_correct" in out.stderr


def test_init_never_overwrites_without_force(tmp_path):
    data = coded_csv(tmp_path)
    assert run_cli("init", str(data)).returncode == 0
    (tmp_path / "coded.rubric.yaml").write_text("name: mine\n")
    again = run_cli("init", str(data))
    assert again.returncode == 2 and "already exists; pass --force" in again.stderr
    assert (tmp_path / "coded.rubric.yaml").read_text() == "name: mine\n"
    assert run_cli("init", str(data), "--force").returncode == 0
