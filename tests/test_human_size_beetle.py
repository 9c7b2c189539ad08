"""The exchange rate recovers a known answer on real human-coded data (SemEval-2013 Beetle; skips without it).

When the "synthetic" arm is a pool of real held-out human responses, drawn from the same population
as the extra human responses of the human curve, every synthetic response is worth exactly one human
one in expectation: the true exchange rate is 1 at every human size. The study is run with a fast
stand-in learner (TF-IDF word 1-2 grams + logistic regression, scikit-learn) so that 40 replicates
take seconds; everything else is the real code: the nested stratified subsamples, the draws of the
synthetic and extra-human arms on their schedules (``synthmix.data.sampling``), the table, the
exchange rate and its interval (``synthmix.analysis.exchange``) and the overlap correction
(``verdicts.ResamplingDesign``).

Replicates share one test set of 1,200 answers (so everything is conditional on it, and the truth of
1 holds conditionally too) and draw their training material (240 answers to subsample from, 120 as
the held-out pool) at random from the other 3,180, so they overlap by about 11%: the design says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthmix.analysis import exchange
from synthmix.analysis.verdicts import ResamplingDesign
from synthmix.data.sampling import (
    draw_schedule,
    extra_human_shares,
    increment_schedule,
    largest_supplied,
    positive_rate,
    subsample_train,
    synthetic_count,
)
from synthmix.data.semeval import read_semeval

REPLICATES, TEST, TRAIN, POOL = 40, 1200, 240, 120
SIZES, SHARE, EXTENT, INCREMENT = (20, 40, 80), 0.5, 3.0, 20


def _learner(test: pd.DataFrame, vocabulary: pd.Series):
    """AUC on ``test`` of TF-IDF + logistic regression trained on a frame's text and label."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    vectoriser = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(vocabulary)
    test_features = vectoriser.transform(test["text"])

    def auc(train: pd.DataFrame) -> float:
        model = LogisticRegression(C=10, solver="liblinear").fit(vectoriser.transform(train["text"]), train["label"])
        return float(roc_auc_score(test["label"], model.predict_proba(test_features)[:, 1]))

    return auc


def _study(answers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, ResamplingDesign]:
    """The human-size experiment run with the fast learner: rows as ``results.summary_table`` gives them,
    and the same rows with a negative control as the synthetic arm (the held-out responses' codes flipped)."""
    order = np.random.default_rng(2).permutation(len(answers))
    test, rest = answers.iloc[order[:TEST]], order[TEST:]
    auc = _learner(test, answers["text"].iloc[rest])
    rows, flipped = [], []
    for replicate in range(REPLICATES):
        drawn = answers.iloc[np.random.default_rng([2, replicate]).choice(rest, TRAIN + POOL, replace=False)]
        train, pool = drawn.iloc[:TRAIN], drawn.iloc[TRAIN:].reset_index(drop=True)
        for size in SIZES:
            human, extra = subsample_train({"train": train}, size, seed=[13, replicate, 16])
            sub = human["train"]
            rate = positive_rate(sub["label"], "match_human")
            keys = {"model": "teacher", "experiments": "human_size", "human_size": size, "replicate": replicate,
                    "n_human": size, "step": f"r{replicate}-h{size}"}
            base = auc(sub)
            count = synthetic_count(size, SHARE)
            (synthetic,) = draw_schedule(pool, [count], rate, [replicate, 1])
            wrong = synthetic.assign(label=1 - synthetic["label"])  # the negative control: the wrong codes
            flipped.append({**keys, "protocol": "incremental", "checkpoint": 1, "n_added": count,
                            "target_share": SHARE, "auc": auc(pd.concat([sub, wrong]))})
            rows += [{**keys, "protocol": "incremental", "checkpoint": 0, "n_added": 0, "target_share": 0.0, "auc": base},
                     {**keys, "protocol": "incremental", "checkpoint": 1, "n_added": count, "target_share": SHARE,
                      "auc": auc(pd.concat([sub, synthetic]))},
                     {**keys, "protocol": "extra_human", "checkpoint": 0, "n_added": 0, "target_share": 0.0, "auc": base}]
            synthetic_schedule = increment_schedule(size, [SHARE], INCREMENT)
            available = largest_supplied(extra, rate, int(round(EXTENT * synthetic_schedule[-1])))
            schedule = increment_schedule(size, extra_human_shares(size, [SHARE], INCREMENT, EXTENT, available),
                                          INCREMENT)
            added = []
            for checkpoint, (n_added, chunk) in enumerate(zip(schedule, draw_schedule(extra, schedule, rate,
                                                                                      [replicate, 1])), start=1):
                added.append(chunk)
                rows.append({**keys, "protocol": "extra_human", "checkpoint": checkpoint, "n_added": n_added,
                             "target_share": SHARE if n_added == count else np.nan,
                             "auc": auc(pd.concat([sub, *added]))})
    design = ResamplingDesign(pool_size=len(rest), draw_size=TRAIN + POOL, shared_pool=True)
    summary = pd.DataFrame(rows)
    control = pd.concat([summary[~((summary["protocol"] == "incremental") & (summary["checkpoint"] > 0))],
                         pd.DataFrame(flipped)], ignore_index=True)
    return summary, control, design


@pytest.fixture(scope="module")
def beetle_answers(beetle_dir) -> pd.DataFrame:
    """Beetle's training answers and its unseen-answers test answers (the same 47 questions), coded 1/0."""
    folders = ["training/2way/beetle", "test/2way/beetle/test-unseen-answers"]
    answers = pd.concat([read_semeval(beetle_dir / folder) for folder in folders], ignore_index=True)
    return pd.DataFrame({"text": answers["response"], "label": (answers["label"] == "correct").astype(int),
                         "item": answers["item"]})


@pytest.fixture(scope="module")
def beetle_study(beetle_answers):
    """The fast-learner study on Beetle, run once: (summary, the negative control's summary, design)."""
    return _study(beetle_answers)


def test_held_out_human_responses_as_the_synthetic_arm_are_worth_one_human_response_each(beetle_study):
    summary, _, design = beetle_study
    table = exchange.human_size_table(summary)
    base = table[table["arm"] == exchange.BASE].groupby("size", observed=True)["auc"].mean()
    assert list(base.index) == ["20", "40", "80"]
    assert np.all(np.diff(base.to_numpy()) > 0) and base.iloc[-1] - base.iloc[0] > 0.02, base  # the curve rises
    rates = exchange.exchange_rates(table, SHARE, 0.02, design=design, draws=4000)
    measured = rates[rates["status"] == "measured"]
    assert len(measured) == len(SIZES), rates[["size", "status", "gain"]]
    for row in measured.to_dict(orient="records"):  # the known answer, 1, lies within every interval
        assert row["rate_low"] <= 1.0 <= row["rate_high"], row["text"]
        assert 0.5 < row["rate"] < 2.0, row["text"]
    assert np.isfinite(measured["rate_high"]).any(), measured  # the intervals say something
    assert (measured["rate_high"] - measured["rate_low"]).min() < 2.5, measured


def test_held_out_responses_with_the_wrong_code_are_harmful(beetle_study):
    _, control, design = beetle_study
    rates = exchange.exchange_rates(exchange.human_size_table(control), SHARE, 0.02, design=design, draws=500)
    assert list(rates["status"]) == ["harmful"] * len(SIZES), rates[["size", "gain", "gain_high"]]
    assert (rates["rate"] == 0).all()
