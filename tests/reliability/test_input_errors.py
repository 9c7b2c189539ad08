"""Bad input gets one clear line naming the file and the line (exit 2), never a traceback or a write
outside the results folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthmix.cli import check_study, main
from synthmix.data.loading import _read_table
from synthmix.errors import InputError
from synthmix.params import load_params

SMOKE = Path(__file__).resolve().parents[2] / "params" / "smoke.yaml"


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../elsewhere", ".hidden", "-x", ""])
def test_study_name_must_be_a_plain_folder_name(tmp_path, name):
    params = tmp_path / "study.yaml"
    params.write_text(f'study: "{name}"\n')
    with pytest.raises(InputError) as error:
        load_params(params)
    assert str(params) in str(error.value) and "study: expected a plain folder name" in str(error.value)


def test_results_naming_a_file_is_one_line_and_exit_2(tmp_path, capsys):
    results = tmp_path / "results.txt"
    results.write_text("not a folder")
    assert main(["run", str(SMOKE), "--results", str(results), "--dry-run"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("--results") and "is a file, not a folder" in error[0]


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("dup.csv", b"text,label,text\na,1,b\n", "line 1: column 'text' appears 2 times in the header"),
    ("dup.tsv", b"text\tlabel\tlabel\na\t1\t0\n", "line 1: column 'label' appears 2 times in the header"),
    ("bad.jsonl", b'{"text": "a", "label": 1}\n{"text": "b", "label": 0,}\n', "line 2: not valid JSON"),
    ("list.jsonl", b'{"text": "a", "label": 1}\n\n[1, 2]\n', "line 3: expected a JSON object"),
    ("twice.jsonl", b'{"text": "a", "text": "b", "label": 1}\n', "line 1: not valid JSON (key 'text' appears more"),
    ("latin1.csv", "text,label\nok,1\ncaf\u00e9,0\n".encode("latin-1"), "line 3, column 4: not valid UTF-8"),
    ("latin1.jsonl", '{"text": "ok", "label": 1}\n{"text": "caf\u00e9", "label": 0}\n'.encode("latin-1"),
     "line 2, column 14: not valid UTF-8"),
])
def test_table_errors_name_the_file_and_line(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as error:
        _read_table(path)
    assert str(error.value).startswith(f"{path}: ") and expected in str(error.value), str(error.value)


def test_model_and_rubric_errors_name_the_params_file_and_line(tmp_path):
    params = tmp_path / "study.yaml"
    params.write_text(SMOKE.read_text().replace("model: minilm-l6", "model: no-such-teacher-model")
                      .replace("model: smollm2-135m", "model: no-such-model.gguf")
                      .replace("  split_seed: 13", "  split_seed: 13\n  rubric: missing-rubric.yaml"))
    lines = params.read_text().splitlines()
    with pytest.raises(InputError) as error:
        check_study(params)
    problems = error.value.problems
    for key, value in (("teacher.model", "no-such-teacher-model"), ("generation.model", "no-such-model.gguf"),
                       ("dataset.rubric", "missing-rubric.yaml")):
        line = next(i for i, text in enumerate(lines, 1) if value in text)
        assert any(p.startswith(f"{params}: line {line}: {key}:") for p in problems), (key, problems)
