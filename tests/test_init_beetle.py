"""`synthmix init` on real multi-question data (Beetle answers), then the rubric written and `synthmix run`:
a verdict on every claim. Apart from tests/test_init.py so that pytest-xdist (``--dist loadfile``) runs
the two end-to-end studies side by side."""

from __future__ import annotations

import pandas as pd
from test_init import assert_a_verdict_on_every_claim, run_to_verdicts

BEETLE_RUBRIC = {
    "scenario": "Students in a tutoring system about basic electricity answer short questions on circuits with "
                "bulbs, batteries and switches, in their own words.",
    "persona": "You are a secondary school student answering a short question about an electric circuit in a "
               "tutoring system. Write one short answer of one sentence, in plain words, as a student would.",
    "positive_criteria": "Score 1 when the answer states the correct reason, in the sense of the reference answer.",
    "negative_criteria": "Score 0 when the answer is wrong, irrelevant, or only restates the question.",
    "examples": {"positive": "The bulb is in a closed path with the battery.",
                 "negative": "Because the bulb is bright."},
}


def test_init_rubric_run_gives_a_verdict_on_every_claim_on_beetle_answers(beetle_dir, tmp_path):
    from synthmix.data.semeval import read_semeval

    table = read_semeval(beetle_dir / "training" / "2way" / "beetle")
    table = table.assign(correct=(table["label"] == "correct").astype(int))
    counts = table.groupby("item")["correct"].agg(["size", "mean"])
    items = counts[(counts["size"] >= 60) & counts["mean"].between(0.3, 0.7)].index[:3]
    subset = pd.concat([table[table["item"] == item].sample(min(100, counts.loc[item, "size"]), random_state=0)
                        for item in items])
    subset = subset.drop(columns="correct").rename(columns={
        "response_id": "answer_id", "item": "question_id", "question": "question_text", "response": "answer",
        "label": "accuracy"})
    subset.to_csv(tmp_path / "beetle.csv", index=False)  # in the test's scratch folder only, never the repository
    records = run_to_verdicts(tmp_path, tmp_path / "beetle.csv", BEETLE_RUBRIC)
    assert_a_verdict_on_every_claim(records)
