"""`synthmix validate` and `run` on bad params and bad data: exact messages, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import REPO, cli_here, run_cli

GOOD_ROWS = "response_id,response,label\n" + "".join(
    f"r{i},response number {i} about fractions,{i % 2}\n" for i in range(1, 13)
)


def write_study(folder: Path, data_text: str | None = GOOD_ROWS, data_name: str = "coded.csv", **overrides) -> Path:
    """A params file pointing at a small dataset written beside it."""
    if data_text is not None:
        (folder / data_name).write_text(data_text)
    params = {"study": "bad", "dataset": {"source": data_name,
                                          "rubric": str(REPO / "src/synthmix/data/default_data/tutor_error_feedback/rubric.yaml")}}
    for dotted, value in overrides.items():
        section, _, key = dotted.partition("__")
        if key:
            params.setdefault(section, {})[key] = value
        else:
            params[section] = value
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


CASES = {
    "unknown top-level key": (dict(seedz=[1]), None, ["{params}: seedz: unknown key (a typo?); see the schema in synthmix/params.py"]),
    "unknown nested key": (dict(generation__temprature=0.3), None,
                           ["{params}: generation.temprature: unknown key (a typo?); see the schema in synthmix/params.py"]),
    "temperature out of range": (dict(generation__temperatures=[0.3, 3.0]), None,
                                 ["{params}: generation.temperatures: temperature 3.0 is outside [0, 2]; got [0.3, 3.0]"]),
    "share outside [0, 1]": (dict(teacher__synthetic_shares=[0.5, 1.5]), None,
                             ["{params}: teacher.synthetic_shares: synthetic share 1.5 is outside [0, 1]; got [0.5, 1.5]"]),
    "a share incremental training cannot reach": (
        dict(experiments={"size": {"protocols": ["incremental"], "synthetic_shares": [0.5, 1.0]}}), None,
        ["{params}: experiments.size: share 1.0 cannot be reached by protocol 'incremental' or 'replay' (they start "
         "from the human fine-tune); use protocol 'mixed' for synthetic-only training"]),
    "a claim judged at a share its experiment does not run": (
        dict(experiments={"size": {"synthetic_shares": [0.5]}}), None,
        ["{params}: (top level): claims.size_share (0.8) is not among experiments.size.synthetic_shares [0.5]: "
         "the claim is judged at a share the experiment runs"]),
    "patience below 1": (dict(teacher__patience=0), None,
                         ["{params}: teacher.patience: Input should be greater than or equal to 1; got 0"]),
    "alpha outside [0, 1]": (dict(student__alpha=1.5), None,
                             ["{params}: student.alpha: Input should be less than or equal to 1; got 1.5"]),
    "missing study name": (dict(study=None), None, ["{params}: study: Input should be a valid string; got None"]),
    "missing data file": (dict(dataset__source="nowhere.csv"), None, ["{folder}/nowhere.csv: dataset file not found (dataset.source)"]),
    "unsupported format": (dict(dataset__source="coded.xlsx"), ("coded.xlsx", "x"),
                           ["{folder}/coded.xlsx: unsupported format '.xlsx'; expected one of .csv, .tsv, .jsonl, .parquet (dataset.source)"]),
    "missing column": (dict(dataset__text_column="answer"), None,
                       ["{folder}/coded.csv: column 'answer' (dataset.text_column) not found; columns are: response_id, response, label"]),
    "empty response": ({}, ("coded.csv", GOOD_ROWS.replace("response number 3 about fractions", "  ")),
                       ["{folder}/coded.csv: column 'response' is empty in rows 3; expected a non-empty response"]),
    "label outside the mapping": ({}, ("coded.csv", GOOD_ROWS.replace("fractions,1\n", "fractions,yes\n", 1).replace("r4,response number 4 about fractions,0", "r4,response number 4 about fractions,2")),
                                  ["{folder}/coded.csv: column 'label' has values {{2, yes}} in rows 1, 4; expected one of positive_labels [1] or negative_labels [0]"]),
    "empty label cells": ({}, ("coded.csv", GOOD_ROWS.replace("fractions,1\n", "fractions,\n", 2)),
                          ["{folder}/coded.csv: column 'label' has values {{(empty cell)}} in rows 1, 3; expected one of "
                           "positive_labels [1] or negative_labels [0]"]),
    "a class with no examples": ({}, ("coded.csv", GOOD_ROWS.replace(",1\n", ",0\n")),
                                 ["{folder}/coded.csv: no responses coded 1 (positive_labels [1]); both classes are needed"]),
    "repeated ids": ({}, ("coded.csv", GOOD_ROWS.replace("r5,", "r4,")),
                     ["{folder}/coded.csv: column 'response_id' repeats ids in rows 4, 5; expected unique ids"]),
    "labels both positive and negative": (dict(dataset__negative_labels=[0, 1]), None,
                                          ["{params}: dataset: label values ['1'] are both positive and negative"]),
    "missing rubric": (dict(dataset__rubric="no_rubric.yaml"), None, ["{params}: line 2: dataset.rubric: rubric file {folder}/no_rubric.yaml not found; expected a rubric YAML "
                                                                 "(a path relative to the params file, or embedded:NAME)"]),
    "unknown teacher model": (dict(teacher__model="minilm-l7"), None,
                              ["{params}: line 6: teacher.model: unknown model 'minilm-l7': not a short name (minilm-l6), not a local folder, "
                               "and not reachable on the Hugging Face hub (offline?)"]),
    "unknown student model": (dict(student__model="tiny-bert-x"), None,
                              ["{params}: line 5: student.model: unknown model 'tiny-bert-x': not a short name (minilm-l6), not a local folder, "
                               "and not reachable on the Hugging Face hub (offline?)"]),
    "managed server with an unknown model": (dict(generation__model="gpt-5"), None,
                                             ["{params}: line 5: generation.model: 'gpt-5' is neither 'smollm2-135m' nor an existing .gguf file (backend managed-llama-cpp serves a local GGUF model)"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_named_and_exits_2(tmp_path, case):
    overrides, data_file, expected = CASES[case]
    overrides = dict(overrides)
    params = write_study(tmp_path, **overrides)
    if overrides.get("study", "x") is None:
        text = yaml.safe_load(params.read_text())
        text.pop("study")
        params.write_text(yaml.safe_dump(text))
        expected = ["{params}: study: required key is missing"]
    if data_file:
        (tmp_path / data_file[0]).write_text(data_file[1])
    before = sorted(p.name for p in tmp_path.iterdir())
    rubric = str(REPO / "src/synthmix/data/default_data/tutor_error_feedback/rubric.yaml")
    result = cli_here("validate", str(params), env={"OPENAI_API_KEY": ""})
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [e.format(params=params, folder=tmp_path, rubric=rubric) for e in expected]
    # a run with the same params stops before writing anything
    results = tmp_path / "results"
    run = cli_here("run", str(params), "--results", str(results))
    assert run.returncode == 2
    assert not results.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_every_problem_is_listed_at_once(tmp_path):
    params = write_study(tmp_path, GOOD_ROWS.replace("response number 2 about fractions", "").replace(",0\n", ",maybe\n", 1))
    result = cli_here("validate", str(params))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert "is empty in rows 2" in lines[0] and "has values {maybe} in rows 2" in lines[1]


def test_openai_backend_without_key_says_which_variable(tmp_path):
    params = write_study(tmp_path, generation={"backend": "openai", "model": "gpt-4o", "api_key_env": "SYNTHMIX_TEST_KEY"})
    result = cli_here("validate", str(params), env={"SYNTHMIX_TEST_KEY": ""})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"{params}: line 4: generation: backend 'openai' needs an API key in the environment variable SYNTHMIX_TEST_KEY (it is not set); "
        "or set generation.base_url to an OpenAI-compatible server")


def test_valid_study_passes_with_a_summary(tmp_path):
    params = write_study(tmp_path)
    result = cli_here("validate", str(params))
    assert result.returncode == 0, result.stderr
    assert f"{params}: OK" in result.stdout
    assert "12 responses, 6 coded 1" in result.stdout


def test_duplicate_responses_are_reported_with_counts(tmp_path):
    rows = GOOD_ROWS.replace("response number 7 about fractions", "Response number 3 about fractions!")
    params = write_study(tmp_path, rows)
    result = cli_here("validate", str(params))
    assert result.returncode == 0, result.stderr
    assert "warning: " in result.stdout
    assert "1 responses appear more than once (2 rows in all), e.g. 'response number 3 about fractions' x2" in result.stdout


@pytest.mark.parametrize("name", ["default.yaml", "smoke.yaml"])
def test_shipped_params_validate(name):
    result = run_cli("validate", f"params/{name}")
    assert result.returncode == 0, result.stderr


def test_a_pool_too_small_for_a_share_names_the_condition_and_the_numbers(tmp_path):
    """96 human training responses, 42% coded 1: 50% synthetic needs 96 synthetic, 40 coded 1 and 56 coded 0."""
    params = write_study(tmp_path, None, dataset={"source": "embedded:tutor_error_feedback"}, replicates=1,
                         generation={"temperatures": [0.7], "pool_size_per_label": 30},
                         teacher={"synthetic_shares": [0.5]})
    result = cli_here("validate", str(params))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"{params}: experiments.grid: condition t0.7-none-incremental50 (replicate 0) needs {n} synthetic responses "
        f"coded {label} at share 0.5 (96 human training responses, 42% positive), but generation.pool_size_per_label "
        "is 30; raise it or set it to 'auto'" for n, label in ((40, 1), (56, 0))]
    run = cli_here("run", str(params), "--results", str(tmp_path / "results"))
    assert run.returncode == 2 and not (tmp_path / "results").exists()
    enough = write_study(tmp_path, None, dataset={"source": "embedded:tutor_error_feedback"}, replicates=1,
                         generation={"temperatures": [0.7], "pool_size_per_label": 56},
                         teacher={"synthetic_shares": [0.5]})
    assert cli_here("validate", str(enough)).returncode == 0


def test_an_unavailable_device_is_a_clear_error_at_validate(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    params = write_study(tmp_path, compute={"device": "cuda"})
    result = cli_here("validate", str(params))
    assert result.returncode == 2
    assert "compute.device: cuda is not available on this machine" in result.stderr
    assert cli_here("validate", str(write_study(tmp_path, compute={"device": "auto"}))).returncode == 0


# ------------------------------------------------------------------------------ estimates
def test_validate_prints_calls_tokens_and_time_per_pool_and_per_step_kind(tmp_path):
    result = cli_here("validate", str(REPO / "params" / "smoke.yaml"), "--results", str(tmp_path / "results"))
    assert result.returncode == 0, result.stderr
    pool = next(line for line in result.stdout.splitlines() if "pool t0.7:" in line)
    # nothing measured in the results folder: the yield of SmolLM2 at t = 0.7 the shipped default study measured
    assert "8 responses needed (3 coded 1, 5 coded 0)" in pool and "in results/default (the shipped study" in pool, pool
    assert " calls " in pool and "prompt +" in pool and "completion" in pool and "[to do]" in pool
    for kind in ("generate", "filter", "train_teacher", "distill", "analyze"):
        assert f"    {kind}: 1 step, " in result.stdout, kind
    assert "LLM spend: none priced" in result.stdout
    assert not (tmp_path / "results").exists()  # validate writes nothing


def test_without_the_shipped_study_the_estimate_uses_the_assumed_rates(tmp_path, monkeypatch):
    from synthmix.run import measured

    monkeypatch.setattr(measured, "SHIPPED_STUDY", tmp_path / "not-shipped" / "default")  # an installed package
    result = cli_here("validate", str(REPO / "params" / "smoke.yaml"), "--results", str(tmp_path / "results"))
    assert result.returncode == 0, result.stderr
    pool = next(line for line in result.stdout.splitlines() if "pool t0.7:" in line)
    assert "assumed yield (costs.assumed_yield)" in pool and "time assumed rates" in pool, pool
    teacher = next(line for line in result.stdout.splitlines() if "train_teacher: " in line)
    assert "assumed rates (costs.assumed_*)" in teacher, teacher


def test_a_shipped_study_that_cannot_be_planned_is_no_prior_and_no_error(tmp_path, monkeypatch):
    import json

    from synthmix.run import measured

    study = tmp_path / "checkout" / "results" / "default"  # its params name data that is not there
    (study / "_params").mkdir(parents=True)
    (study / "_params" / "params-0.yaml").write_text((REPO / "params" / "smoke.yaml").read_text().replace(
        "embedded:tutor_error_feedback", "missing.csv"))
    (study / "05_analyze" / "study-0").mkdir(parents=True)
    (study / "05_analyze" / "study-0" / "_complete.json").write_text(
        json.dumps({"parameters": {"params_file": "_params/params-0.yaml"}}))
    monkeypatch.setattr(measured, "SHIPPED_STUDY", study)
    result = cli_here("validate", str(REPO / "params" / "smoke.yaml"), "--results", str(tmp_path / "results"))
    assert result.returncode == 0, result.stderr
    teacher = next(line for line in result.stdout.splitlines() if "train_teacher: " in line)
    assert "assumed rates (costs.assumed_*)" in teacher, teacher


def test_a_fresh_estimate_scales_training_rates_to_the_shipped_study_where_it_trained_the_same_models(tmp_path):
    result = cli_here("validate", str(REPO / "params" / "smoke.yaml"), "--results", str(tmp_path / "results"))
    assert result.returncode == 0, result.stderr
    kinds = {line.split(":")[0].strip(): line for line in result.stdout.splitlines() if " in all, " in line}
    for kind in ("filter", "train_teacher", "analyze"):  # the same teacher (MiniLM-L6) on the same device
        assert "of the shipped study (results/default)" in kinds[kind], kinds[kind]
    assert "assumed rates (costs.assumed_*)" in kinds["distill"], kinds["distill"]  # 2 layers kept, not 3


def test_a_fresh_estimate_of_the_default_study_predicts_the_generation_time_it_measured(tmp_path):
    """On an empty results folder the default study's generation is estimated from the calls of the shipped
    run (its yields per temperature and seconds per call): within 25% of the seconds its 11 pools took
    (with the assumed rates alone: 12 of 48 min). A consistency check of the per-pool call model, not
    an out-of-sample test: the rates come from the same run."""
    import json

    from synthmix.params import load_params
    from synthmix.run.estimate import estimate_study
    from synthmix.run.measured import SHIPPED_STUDY

    markers = [json.loads(path.read_text()) for path in SHIPPED_STUDY.glob("01_generate/*/_complete.json")]
    if not markers:
        pytest.skip("the shipped study is not in this checkout")
    measured = sum(marker["seconds"] for marker in markers)
    params_path = REPO / "params" / "default.yaml"
    predicted = estimate_study(load_params(params_path), params_path, tmp_path / "results").kinds["generate"]["seconds"]
    assert 0.75 < predicted / measured < 1.25, (predicted, measured)


def write_earlier_pool(results, model="smollm2-135m", temperature=0.7, calls=20, responses_per_call=5) -> None:
    """A complete pool of an earlier run, as 01_generate leaves it: its marker and calls.parquet (1 response per call)."""
    from synthmix.steps.generate import call_table

    folder = results / "earlier" / "01_generate" / f"t{temperature:g}-0123456789"
    folder.mkdir(parents=True)
    (folder / "_complete.json").write_text("{}")
    records = [{"kind": "generate", "label": n % 2, "item": "", "seed": n, "model": model, "temperature": temperature,
                "max_tokens": 200, "responses_per_call": responses_per_call, "prompt_tokens": 300, "completion_tokens": 90,
                "seconds": 3.0, "replayed": False, "responses": 1, "call_id": f"c{n}"} for n in range(calls)]
    call_table(records).to_parquet(folder / "calls.parquet")


def test_the_estimate_uses_the_yield_and_rates_measured_by_earlier_runs(tmp_path):
    results = tmp_path / "results"
    write_earlier_pool(results)
    result = cli_here("validate", str(REPO / "params" / "smoke.yaml"), "--results", str(results))
    assert result.returncode == 0, result.stderr
    pool = next(line for line in result.stdout.splitlines() if "pool t0.7:" in line)
    # 1 new response per call measured: 3 + 5 responses need 8 calls of 90 completion tokens and 3 s each
    assert "about 8 calls (1.0 new responses per call, measured on 20 calls; time measured on 20 calls)" in pool, pool
    assert "completion" in pool and "720 completion" in pool


def test_run_asks_before_a_study_above_the_threshold_and_refuses_without_a_terminal(tmp_path):
    params = tmp_path / "smoke.yaml"
    params.write_text((REPO / "params" / "smoke.yaml").read_text() + "costs:\n  confirm_above_hours: 0.001\n")
    results = tmp_path / "results"
    run = run_cli("run", str(params), "--results", str(results), "--only", "generate")
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.strip().splitlines() == [
        next(line for line in run.stderr.splitlines() if line.startswith("not started: the steps to do need about"))]
    assert "(costs.confirm_above_hours: 0.001); pass --yes to run anyway" in run.stderr
    assert not (results / "smoke").exists()


def test_yes_skips_the_question():
    from argparse import Namespace

    from synthmix.cli import _confirmed

    assert _confirmed("about 2 h", Namespace(yes=True)) is True

