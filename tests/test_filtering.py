"""02_filter: judge-reply parsing, a real judge call, and the keep/remove bookkeeping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from synthmix.data.rubric import load_rubric
from synthmix.llm.cache import ReplyCache
from synthmix.llm.client import ChatClient
from synthmix.steps.filtering import apply_grades, build_judge_messages, filter_report, judge_pool, parse_judgement

RUBRIC = load_rubric(REPO / "src/synthmix/data/default_data/tutor_error_feedback/rubric.yaml")


@pytest.mark.parametrize("reply, expected", [
    ('{"Rationale": "Asks her to explain.", "Score": 1}', (1, "Asks her to explain.")),
    ('```json\n{"Rationale": "Gives the answer.", "Score": 0}\n```', (0, "Gives the answer.")),
    ('Sure! Here is my grade:\n{"rationale": "vague", "score": "0"}\nHope this helps.', (0, "vague")),
    ("{'Rationale': 'hint toward common parts', 'Score': 1,}", (1, "hint toward common parts")),
    ('{"Rationale": "ok", "Score": true}', (1, "ok")),
    ('Score: 1 because it prompts reflection', (1, "")),
    ('{"Rationale": "unsure", "Score": 0.5}', (None, "")),
    ('I cannot grade this response.', (None, "")),
    ('', (None, "")),
    ('{"Rationale": "two scores", "Score": 10}', (None, "")),
])
def test_parse_judgement_on_awkward_replies(reply, expected):
    assert parse_judgement(reply) == expected


def test_judge_prompt_carries_the_rubric_and_asks_for_json():
    system, user = build_judge_messages(RUBRIC, "Why did you add the bottoms?")
    assert RUBRIC.positive_criteria in user["content"] and RUBRIC.negative_criteria in user["content"]
    assert "Why did you add the bottoms?" in user["content"]
    assert user["content"].endswith('{"Rationale": "<one sentence>", "Score": 0 or 1}.')


def test_unparseable_grades_are_counted_and_follow_the_setting():
    pool = pd.DataFrame({"text": ["a b c", "d e f", "g h i", "j k l"], "label": [1, 1, 0, 0], "temperature": 0.5})
    grades = pd.DataFrame({"grade": [1, None, 1, 0], "p_positive": np.nan, "rationale": "",
                           "status": ["graded", "unparseable", "graded", "graded"]})
    dropped = apply_grades(pool, grades, keep_unparseable=False)
    assert dropped["kept"].tolist() == [True, False, False, True]
    kept = apply_grades(pool, grades, keep_unparseable=True)
    assert kept["kept"].tolist() == [True, True, False, True]
    report = filter_report("llm_judge", dropped)
    assert report["unparseable"] == 1 and report["kept"] == 2 and report["removed"] == 2
    agreement = report["agreement_with_intended_labels"]
    assert agreement["n"] == 3 and agreement["accuracy"] == pytest.approx(2 / 3)
    per_label = {(r["label"]): (r["kept"], r["removed"]) for r in report["by_label_and_temperature"]}
    assert per_label == {0: (1, 1), 1: (1, 1)}


def test_real_judge_call_against_llama_server(llama_server, tmp_path):
    pool = pd.DataFrame({"text": ["Can you tell me how you got the 6 on the bottom?", "The answer is 5/4, Maya."],
                         "label": [1, 0], "temperature": 0.5})
    client = ChatClient("llama.cpp:test", "smollm2-135m", ReplyCache(tmp_path / "llm.sqlite"),
                        connect=lambda: llama_server.base_url)
    grades = judge_pool(pool, RUBRIC, client, temperature=0.0, max_tokens=120)
    assert client.stats.calls_made == 2
    assert set(grades["status"]) <= {"graded", "unparseable"}
    graded = grades[grades["status"] == "graded"]
    assert graded["grade"].isin([0, 1]).all()
    assert (grades.loc[grades["status"] == "unparseable", "grade"].isna()).all()
    # the same grading again is replayed from the cache
    again = judge_pool(pool, RUBRIC, client, temperature=0.0, max_tokens=120)
    assert client.stats.calls_replayed == 2 and again.equals(grades)
