"""02_filter: grade every synthetic response and keep those consistent with their intended label.

Methods:
- ``none``: keep everything (the unfiltered condition).
- ``llm_judge`` (the paper's): an LLM grades each response against the rubric and answers JSON
  ``{"Rationale": …, "Score": 0|1}``, through the same cached client as generation.
- ``teacher_agreement``: a classifier fine-tuned on the human training data only grades each
  response (P(1) ≥ threshold → 1).
A response is kept when its grade equals the label it was generated for. A judge reply that
cannot be parsed is recorded as ``unparseable`` and counted; ``filter.unparseable`` says whether
such responses are kept or dropped, and the report shows how many there were.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from synthmix.core import io
from synthmix.core.progress import report_progress
from synthmix.data.rubric import Rubric
from synthmix.steps.metrics import grader_agreement

GRADE_COLUMNS = ["text", "label", "temperature", "grade", "p_positive", "rationale", "status", "kept"]


def build_judge_messages(rubric: Rubric, response: str) -> list[dict]:
    """The grader prompt: the rubric as instructions, the response to grade, a JSON answer."""
    examples = "\n".join([f"Score 1: {x}" for x in rubric.positive_examples] +
                         [f"Score 0: {x}" for x in rubric.negative_examples])
    user = (
        f"Scenario: {rubric.scenario}\n\nQuestion: {rubric.question}\n\n"
        f"Score 1 when: {rubric.positive_criteria}\n\nScore 0 when: {rubric.negative_criteria}\n\n"
        f"Examples:\n{examples}\n\n"
        f"Response to grade:\n{response}\n\n"
        'Answer with JSON only, in the form {"Rationale": "<one sentence>", "Score": 0 or 1}.'
    )
    return [{"role": "system", "content": "You are an expert grader who applies a coding rubric to tutors' responses."},
            {"role": "user", "content": user}]


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_OBJECT = re.compile(r"\{.*?\}", re.DOTALL)
_SCORE = re.compile(r"""["']?score["']?\s*[:=]\s*["']?\s*([01])(?![\d.])""", re.IGNORECASE)
_RATIONALE = re.compile(r"""["']?rationale["']?\s*[:=]\s*["'](.*?)["']\s*(?:,|\})""", re.IGNORECASE | re.DOTALL)


def parse_judgement(reply: str) -> tuple[int | None, str]:
    """The score (0/1, or None when the reply holds no usable score) and rationale of a judge reply.

    Accepts JSON fenced or not, with text around it, keys in any case, the score as a number or
    a string, single quotes and trailing commas.
    """
    candidates = [m.group(1) for m in _FENCE.finditer(reply)] + _OBJECT.findall(reply) + [reply]
    for candidate in candidates:
        text = re.sub(r",\s*}", "}", candidate.strip())
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if isinstance(data, dict):
            lowered = {str(k).lower(): v for k, v in data.items()}
            score = lowered.get("score")
            if isinstance(score, bool):
                score = int(score)
            if isinstance(score, str) and score.strip() in ("0", "1"):
                score = int(score.strip())
            if isinstance(score, (int, float)) and score in (0, 1):
                return int(score), str(lowered.get("rationale", "")).strip()
    match = _SCORE.search(reply)
    if match:
        rationale = _RATIONALE.search(reply)
        return int(match.group(1)), rationale.group(1).strip() if rationale else ""
    return None, ""


def judge_pool(pool: pd.DataFrame, rubric: Rubric, client, temperature: float, max_tokens: int,
               concurrency: int = 1, records: list | None = None) -> pd.DataFrame:
    """Grade every response of ``pool`` with the LLM judge; one row per response (see ``GRADE_COLUMNS``).

    Up to ``concurrency`` grading calls run side by side (a managed llama.cpp client runs one);
    the grades come back in pool order, so they do not depend on it. With ``records``, one dict per
    call is appended to it (the columns of ``calls.parquet``, see ``synthmix.steps.generate.CALL_COLUMNS``).
    """
    rows = []
    requests = ({"messages": build_judge_messages(rubric, text), "temperature": temperature, "seed": 0,
                 "max_tokens": max_tokens} for text in pool["text"])
    labels = list(pool["label"]) if "label" in pool.columns else [-1] * len(pool)
    items = list(pool["item"].astype(str)) if "item" in pool.columns else [""] * len(pool)
    for number, reply in enumerate(client.complete_many(requests, concurrency=concurrency), start=1):
        score, rationale = parse_judgement(reply.text)
        if records is not None:
            records.append({"kind": "judge", "label": int(labels[number - 1]), "item": items[number - 1], "seed": 0,
                            "model": client.model, "temperature": temperature, "max_tokens": max_tokens,
                            "responses_per_call": 1, "prompt_tokens": reply.prompt_tokens,
                            "completion_tokens": reply.completion_tokens, "seconds": reply.seconds,
                            "replayed": reply.cached, "responses": int(score is not None), "call_id": reply.call_id})
        rows.append({"grade": score, "p_positive": np.nan, "rationale": rationale or reply.text[:300],
                     "status": "graded" if score is not None else "unparseable"})
        report_progress(number, len(pool), "judge")
    return pd.DataFrame(rows)


def teacher_grades(pool: pd.DataFrame, human, teacher_params, replicate: int, threshold: float,
                   base_cache_dir=None, device=None) -> pd.DataFrame:
    """Grade every response with a classifier fine-tuned on replicate ``replicate``'s human training
    data only (the same human-only fine-tune its incremental runs start from, shared via ``base_cache_dir``)."""
    from synthmix.steps.train import fine_tune_on_human, training_seed
    from synthmix.steps.training import predict_proba

    model, tokenizer, _ = fine_tune_on_human(human, teacher_params, training_seed(replicate), base_cache_dir, device)
    scores = predict_proba(model, tokenizer, list(pool["text"]), max_length=teacher_params.max_length)
    return pd.DataFrame({"grade": (scores >= threshold).astype(int), "p_positive": scores, "rationale": "",
                         "status": "graded"})


def apply_grades(pool: pd.DataFrame, grades: pd.DataFrame, keep_unparseable: bool) -> pd.DataFrame:
    """Join grades to the pool and decide ``kept``: grade equals the intended label; responses
    'not graded' (method none) are kept; 'unparseable' ones as ``keep_unparseable`` says."""
    graded = pd.concat([pool[["text", "label", "temperature"]].reset_index(drop=True), grades.reset_index(drop=True)], axis=1)
    agrees = (graded["grade"].astype("Int64") == graded["label"]).fillna(False).astype(bool)
    status = graded["status"]
    graded["kept"] = np.select([status == "not graded", status == "unparseable"], [True, keep_unparseable], agrees).astype(bool)
    graded["grade"] = graded["grade"].astype("Int64")
    return graded[GRADE_COLUMNS]


def filter_report(method: str, graded: pd.DataFrame) -> dict:
    """Counts kept/removed per label and temperature, and the grader's agreement with intended labels."""
    counts = (graded.assign(removed=~graded["kept"]).groupby(["temperature", "label"])
              .agg(total=("kept", "size"), kept=("kept", "sum"), removed=("removed", "sum")).reset_index())
    usable = graded[graded["status"] == "graded"]
    agreement = grader_agreement(usable["label"].to_numpy(), usable["grade"].astype(int).to_numpy()) if len(usable) else {}
    return {"method": method, "responses": len(graded), "kept": int(graded["kept"].sum()),
            "removed": int((~graded["kept"]).sum()),
            "unparseable": int((graded["status"] == "unparseable").sum()),
            "by_label_and_temperature": counts.to_dict(orient="records"),
            "agreement_with_intended_labels": {k: (None if isinstance(v, float) and np.isnan(v) else v)
                                               for k, v in agreement.items()}}


def filter_pool(method: str, pool: pd.DataFrame, study, params_file: str | Path, cache_path: str | Path | None = None,
                base_cache_dir: str | Path | None = None, replicate: int = 0, device=None):
    """Grade ``pool`` with ``method`` and return (graded rows, filtered pool, report).

    ``teacher_agreement`` grades with replicate ``replicate``'s own grader, trained on its own
    human training split (so no replicate's test responses ever shape its filter)."""
    settings = study.filter
    if method == "none":
        grades = pd.DataFrame({"grade": pd.array([pd.NA] * len(pool), dtype="Int64"), "p_positive": np.nan,
                               "rationale": "", "status": "not graded"})
        graded = apply_grades(pool, grades, keep_unparseable=False)
    elif method == "llm_judge":
        from synthmix.data.rubric import load_study_rubric
        from synthmix.steps.generate import open_client

        rubric = load_study_rubric(study.dataset, params_file)
        records: list[dict] = []
        with open_client(study.generation, cache_path) as client:
            grades = judge_pool(pool, rubric, client, settings.judge_temperature, settings.judge_max_tokens,
                                concurrency=settings.judge_concurrency, records=records)
            mismatches = client.cache.mismatches
        graded = apply_grades(pool, grades, keep_unparseable=settings.unparseable == "keep")
        report = filter_report(method, graded)
        report["call_records"], report["cache_checksum_mismatches"] = records, mismatches
        filtered = pool.reset_index(drop=True)[graded["kept"].to_numpy()]
        return graded, filtered.reset_index(drop=True), report
    elif method == "teacher_agreement":
        from synthmix.data.splits import load_study_data

        human = load_study_data(study, params_file, replicate=replicate)
        grades = teacher_grades(pool, human, study.teacher, replicate, settings.threshold, base_cache_dir, device)
        graded = apply_grades(pool, grades, keep_unparseable=False)
    else:
        raise ValueError(f"unknown filter method {method!r}")
    filtered = pool.reset_index(drop=True)[graded["kept"].to_numpy()]
    return graded, filtered.reset_index(drop=True), filter_report(method, graded)


def save_filter(graded: pd.DataFrame, filtered: pd.DataFrame, report: dict, output_dir: str | Path) -> None:
    """Write grades.parquet, filtered_pool.parquet and filter_report.json atomically, and, for the LLM
    judge, calls.parquet (the report's ``call_records``: one row per grading call)."""
    from synthmix.steps.generate import call_table

    output_dir = Path(output_dir)
    report = dict(report)
    records = report.pop("call_records", None)
    if records is not None:
        io.write_table(output_dir / "calls.parquet", call_table(records))
    io.write_table(output_dir / "grades.parquet", graded)
    io.write_table(output_dir / "filtered_pool.parquet", filtered)
    io.write_json(output_dir / "filter_report.json", report)
