"""`synthmix init DATA`: proposes columns and label mapping, writes params + rubric template whose
TODO parts make `synthmix validate` fail until a person writes them; the params hold the paper's three
experiments and the claims section rendered from the schema, sized to the data, so that init, the
rubric written, and `synthmix run` end in a verdict on every claim."""

from __future__ import annotations

import json

import pandas as pd
import yaml
from conftest import REPO, cli_here, run_cli

from synthmix.data.rubric import TODO_MARK
from synthmix.params import ClaimsParams, ExperimentParams, load_params

EMBEDDED = REPO / "src" / "synthmix" / "data" / "default_data" / "tutor_error_feedback"


def coded_csv(folder):
    """A user's file: string codes, an item column, an id column, in an order that hides nothing; 240
    responses, so that a replicate trains on enough of each code for the teacher-agreement filter."""
    rows = []
    for item in ("fractions", "decimals"):
        for i in range(120):
            good = i % 3 == 0
            rows.append({"response_id": f"{item}-{i}", "code": "Correct" if good else "incorrect",
                         "question_id": item, "answer": f"{'good' if good else 'weak'} answer {i} about {item}, in words"})
    pd.DataFrame(rows).to_csv(folder / "coded.csv", index=False)
    return folder / "coded.csv"


def fill_todos(value, text="Written by the researcher."):
    """What a person does: write every marked part (``text`` maps a key to what is written, or is the text)."""
    if isinstance(value, dict):
        return {k: fill_todos(v, text[k] if isinstance(text, dict) and k in text else text) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_todos(v, text) for v in value]
    return (text if isinstance(text, (str, list)) else "Written by the researcher.") if value == TODO_MARK else value


def test_init_proposes_columns_and_labels_and_validate_passes_once_todos_are_written(tmp_path):
    data = coded_csv(tmp_path)
    out = cli_here("init", str(data), "--results", str(tmp_path / "results"))
    assert out.returncode == 0, out.stderr
    assert "values: incorrect x160, Correct x80" in out.stdout
    params_file, rubric_file = tmp_path / "coded.params.yaml", tmp_path / "coded.rubric.yaml"
    params = load_params(params_file).dataset
    assert (params.text_column, params.label_column, params.item_column, params.id_column) == \
        ("answer", "code", "question_id", "response_id")
    assert (params.positive_labels, params.negative_labels) == (["Correct"], ["incorrect"])
    assert all("#" in line for line in params_file.read_text().splitlines()
               if line.strip() and not line.rstrip().endswith(":")), "every key carries a comment"

    before = cli_here("validate", str(params_file))
    assert before.returncode == 2
    missing = before.stderr.strip().splitlines()
    assert f"{rubric_file}: scenario still says '{TODO_MARK}': write it" in missing
    assert f"{rubric_file}: items.decimals.question still says '{TODO_MARK}': write it" in missing
    assert len(missing) == 9  # scenario, question, persona, 2 criteria, 2 examples, 2 items' questions

    rubric_file.write_text(yaml.safe_dump(fill_todos(yaml.safe_load(rubric_file.read_text()))))
    after = cli_here("validate", str(params_file), "--results", str(tmp_path / "results"))
    assert after.returncode == 0, after.stderr
    assert "2 items, each stratified" in after.stdout
    assert "pool t0.3:" in after.stdout and "calls" in after.stdout  # the estimate per pool


def test_experiments_and_claims_are_rendered_from_the_schema(tmp_path):
    assert cli_here("init", str(coded_csv(tmp_path)), "--results", str(tmp_path / "results")).returncode == 0
    text = (tmp_path / "coded.params.yaml").read_text()
    study = load_params(tmp_path / "coded.params.yaml")
    assert set(study.experiments) == {"size", "variety", "consistency"}
    for key, field in ExperimentParams.model_fields.items():  # every field, with its description as the comment
        assert f"    {key}: " in text and (not field.description or f"# {field.description}" in text), key
    for key, field in ClaimsParams.model_fields.items():
        assert f"  {key}: " in text and f"# {field.description}" in text, key
    claims = study.claims
    assert claims.size_share in study.experiments["size"].synthetic_shares
    assert {claims.stable_temperature, claims.variable_from} <= set(study.experiments["variety"].temperatures)
    assert set(study.experiments["consistency"].filters) == {"none", "teacher_agreement"}
    assert "Paper-sized alternative" in text and "costs:" in text


def test_the_proposal_is_sized_to_the_time_budget(tmp_path):
    data = coded_csv(tmp_path)
    sized = {}
    for budget in ("600", "1"):
        out = cli_here("init", str(data), "--force", "--budget-minutes", budget, "--results", str(tmp_path / "results"))
        assert out.returncode == 0, out.stderr
        sized[budget] = load_params(tmp_path / "coded.params.yaml")
        assert "min (estimate; budget" in out.stdout
    assert sized["1"].replicates < sized["600"].replicates  # a smaller budget, a smaller study
    assert max(sized["1"].experiments["size"].synthetic_shares) <= max(sized["600"].experiments["size"].synthetic_shares)


def test_unmapped_label_values_are_left_for_a_person(tmp_path):
    data = coded_csv(tmp_path)
    table = pd.read_csv(data)
    table.loc[::4, "code"] = "partially_correct"
    table.to_csv(data, index=False)
    assert cli_here("init", str(data)).returncode == 0
    text = (tmp_path / "coded.params.yaml").read_text()
    assert "values not mapped yet: partially_correct (60)" in text
    out = cli_here("validate", str(tmp_path / "coded.params.yaml"))
    assert out.returncode == 2 and "partially_correct" in out.stderr


def test_too_few_responses_of_a_code_leave_the_consistency_experiment_out_and_say_why(tmp_path):
    """A teacher-agreement grader trained on a dozen responses of a code can reject every synthetic response of
    it, and the filtered arm then has nothing to draw (measured on 120 embedded responses): below
    GRADER_MIN_PER_CODE human training responses of a code, init proposes no consistency experiment."""
    from synthmix.data.scaffold import GRADER_MIN_PER_CODE

    table = pd.read_csv(EMBEDDED / "responses.csv")  # our own responses (written for this project)
    small, enough = tmp_path / "small", tmp_path / "enough"
    for folder, n in ((small, 120), (enough, 200)):
        folder.mkdir()
        table.sample(n=n, random_state=1).to_csv(folder / "feedback.csv", index=False)
        out = cli_here("init", str(folder / "feedback.csv"), "--results", str(folder / "results"))
        assert out.returncode == 0, out.stderr
    assert GRADER_MIN_PER_CODE == 20
    study = load_params(small / "feedback.params.yaml")
    assert set(study.experiments) == {"size", "variety"} and study.filter.methods == ["none"]
    text = (small / "feedback.params.yaml").read_text()
    assert "the consistency experiment (claim 3) is left out: a replicate trains on about 12 human responses " \
           "coded 1 and 18 coded 0, fewer than the 20 of each" in text
    bigger = load_params(enough / "feedback.params.yaml")
    assert "consistency" in bigger.experiments and bigger.filter.methods == ["none", "teacher_agreement"]


def test_init_never_overwrites_without_force(tmp_path):
    data = coded_csv(tmp_path)
    assert cli_here("init", str(data)).returncode == 0
    (tmp_path / "coded.rubric.yaml").write_text("name: mine\n")
    again = cli_here("init", str(data))
    assert again.returncode == 2 and "already exists; pass --force" in again.stderr
    assert (tmp_path / "coded.rubric.yaml").read_text() == "name: mine\n"
    assert cli_here("init", str(data), "--force").returncode == 0


# ------------------------------------------------------------------------------- end to end
def run_to_verdicts(folder, data, rubric_text, budget: str = "2") -> list[dict]:
    """init on ``data``, the rubric's TODOs written from ``rubric_text``, then `synthmix run` with no other
    edit; the claim records of its 05_analyze."""
    out = cli_here("init", str(data), "--budget-minutes", budget, "--results", str(folder / "results"))
    assert out.returncode == 0, out.stdout + out.stderr
    rubric = folder / f"{data.stem}.rubric.yaml"
    rubric.write_text(yaml.safe_dump(fill_todos(yaml.safe_load(rubric.read_text()), rubric_text)))
    params = folder / f"{data.stem}.params.yaml"
    run = run_cli("run", str(params), "--results", str(folder / "results"), "--workers", "2", "--no-progress")
    assert run.returncode == 0, run.stdout + run.stderr
    (claims,) = (folder / "results" / data.stem / "05_analyze").glob("*/claims.json")
    return json.loads(claims.read_text())


def assert_a_verdict_on_every_claim(records: list[dict]) -> None:
    verdicts = {r["id"]: r["verdict"] for r in records if r["id"] in ("1", "2a", "3")}
    assert set(verdicts) == {"1", "2a", "3"}, records
    primary = {r["id"]: r["text"] for r in records if r["role"] == "primary" and r["verdict"] == "not tested"}
    assert primary == {}, primary  # each claim's primary verdict is decided from the run
    assert_untested_parts_say_why(records)


def assert_untested_parts_say_why(records: list[dict]) -> None:
    for r in records:  # a part a small study cannot test says why
        assert r["verdict"] != "not tested" or r["text"].startswith("Not tested: ") and len(r["text"]) > 20, r


def embedded_rubric_text() -> dict:
    """The embedded data's own rubric (written for this project) as what the user writes."""
    rubric = yaml.safe_load((EMBEDDED / "rubric.yaml").read_text())
    return {key: rubric[key] for key in ("scenario", "question", "persona", "positive_criteria", "negative_criteria")} \
        | {"examples": {"positive": rubric["examples"]["positive"][0], "negative": rubric["examples"]["negative"][0]}}


def test_init_rubric_run_on_small_data_decides_claims_1_and_2_and_says_why_not_3(tmp_path):
    """120 of the embedded responses (12 coded 1 per replicate's training split): init leaves the consistency
    experiment out, and the study it proposes runs to verdicts on claims 1 and 2 (on 120 responses with
    the consistency experiment in, a grader trained on 12 responses coded 1 rejected every synthetic one
    and the study stopped). Claim 3 on data with enough of each code: tests/test_init_beetle.py."""
    table = pd.read_csv(EMBEDDED / "responses.csv")  # our own responses (written for this project), as a user's CSV
    table.sample(n=120, random_state=1).to_csv(tmp_path / "feedback.csv", index=False)
    records = run_to_verdicts(tmp_path, tmp_path / "feedback.csv", embedded_rubric_text(), budget="4")
    primary = {r["id"]: r for r in records if r["role"] == "primary"}
    assert {i: primary[i]["verdict"] != "not tested" for i in ("1", "2a")} == {"1": True, "2a": True}, records
    assert primary["3"]["verdict"] == "not tested" and "consistency" in primary["3"]["text"], primary["3"]
    assert_untested_parts_say_why(records)
