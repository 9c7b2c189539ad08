"""The exchange rate checked against a known answer on real coded responses (SemEval-2013 Beetle).

When the "synthetic" arm is a pool of real held-out human responses, drawn from the same population
as the extra human responses of the human curve, a synthetic response is worth exactly one human one
in expectation: the true exchange rate is 1 at every human size. ``simulate_study`` runs the
human-size experiment with a fast stand-in learner (TF-IDF word 1-2 grams + logistic regression,
scikit-learn) in place of the teacher, so many replicates take seconds; everything else is the real
code: the nested stratified subsamples and the draws of both arms on their schedules
(``synthmix.data.sampling``), the table, exchange rate and interval (``synthmix.analysis.exchange``)
and the overlap correction (``verdicts.ResamplingDesign``). It also returns a negative control: the
held-out responses with their codes flipped, which must come out harmful.

Replicates share one test set (everything is conditional on it, and the truth of 1 holds
conditionally too) and draw their training material (a split to subsample from, and the held-out
pool) at random from the other responses, so they overlap by draw / rest; the design says so.
``coverage`` repeats whole studies to measure how often the interval holds the known answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

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


@dataclass(frozen=True)
class Shape:
    """The simulated study: replicates, the shared test set, each replicate's split and pool, sizes, share."""

    replicates: int = 40
    test: int = 1200
    train: int = 240
    pool: int = 120
    sizes: tuple[int, ...] = (20, 40, 80)
    share: float = 0.5
    extent: float = 3.0
    increment: int = 20


def beetle_answers(folder) -> pd.DataFrame:
    """Beetle's training answers and its unseen-answers test answers (the same 47 questions): text, label, item."""
    from pathlib import Path

    from synthmix.data.semeval import read_semeval

    folder = Path(folder)
    parts = ["training/2way/beetle", "test/2way/beetle/test-unseen-answers"]
    answers = pd.concat([read_semeval(folder / part) for part in parts], ignore_index=True)
    return pd.DataFrame({"text": answers["response"], "label": (answers["label"] == "correct").astype(int),
                         "item": answers["item"]})


def _learner(test: pd.DataFrame, vocabulary: pd.Series):
    """``auc(train)``: test AUC of TF-IDF + logistic regression trained on a frame's text and label."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    vectoriser = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(vocabulary)
    test_features = vectoriser.transform(test["text"])

    def auc(train: pd.DataFrame) -> float:
        model = LogisticRegression(C=10, solver="liblinear").fit(vectoriser.transform(train["text"]), train["label"])
        return float(roc_auc_score(test["label"], model.predict_proba(test_features)[:, 1]))

    return auc


def simulate_study(answers: pd.DataFrame, shape: Shape = Shape(), seed: int = 2
                   ) -> tuple[pd.DataFrame, pd.DataFrame, ResamplingDesign]:
    """One human-size study with the fast learner: ``(summary, control, design)``, rows as
    ``results.summary_table`` gives them; ``control`` has the flipped-code pool as its synthetic arm."""
    order = np.random.default_rng(seed).permutation(len(answers))
    test, rest = answers.iloc[order[:shape.test]], order[shape.test:]
    auc = _learner(test, answers["text"].iloc[rest])
    rows, flipped = [], []
    for replicate in range(shape.replicates):
        drawn = answers.iloc[np.random.default_rng([seed, replicate]).choice(rest, shape.train + shape.pool,
                                                                             replace=False)]
        train, pool = drawn.iloc[:shape.train], drawn.iloc[shape.train:].reset_index(drop=True)
        for size in shape.sizes:
            human, extra = subsample_train({"train": train}, size, seed=[13, replicate, 16])
            sub = human["train"]
            rate = positive_rate(sub["label"], "match_human")
            keys = {"model": "teacher", "experiments": exchange.EXPERIMENT, "human_size": size,
                    "replicate": replicate, "n_human": size, "step": f"r{replicate}-h{size}"}
            base = auc(sub)
            count = synthetic_count(size, shape.share)
            (synthetic,) = draw_schedule(pool, [count], rate, [replicate, 1])
            wrong = synthetic.assign(label=1 - synthetic["label"])  # the negative control: the wrong codes
            rows += [{**keys, "protocol": "incremental", "checkpoint": 0, "n_added": 0, "target_share": 0.0,
                      "auc": base},
                     {**keys, "protocol": "incremental", "checkpoint": 1, "n_added": count,
                      "target_share": shape.share, "auc": auc(pd.concat([sub, synthetic]))},
                     {**keys, "protocol": "extra_human", "checkpoint": 0, "n_added": 0, "target_share": 0.0,
                      "auc": base}]
            flipped.append({**keys, "protocol": "incremental", "checkpoint": 1, "n_added": count,
                            "target_share": shape.share, "auc": auc(pd.concat([sub, wrong]))})
            last = increment_schedule(size, [shape.share], shape.increment)[-1]
            available = largest_supplied(extra, rate, int(round(shape.extent * last)))
            schedule = increment_schedule(size, extra_human_shares(size, [shape.share], shape.increment,
                                                                   shape.extent, available), shape.increment)
            added = []
            for checkpoint, (n_added, chunk) in enumerate(zip(schedule, draw_schedule(extra, schedule, rate,
                                                                                      [replicate, 1])), start=1):
                added.append(chunk)
                rows.append({**keys, "protocol": "extra_human", "checkpoint": checkpoint, "n_added": n_added,
                             "target_share": shape.share if n_added == count else np.nan,
                             "auc": auc(pd.concat([sub, *added]))})
    design = ResamplingDesign(pool_size=len(rest), draw_size=shape.train + shape.pool, shared_pool=True)
    summary = pd.DataFrame(rows)
    synthetic_rows = (summary["protocol"] == "incremental") & (summary["checkpoint"] > 0)
    control = pd.concat([summary[~synthetic_rows], pd.DataFrame(flipped)], ignore_index=True)
    return summary, control, design


def coverage(answers: pd.DataFrame, studies: int, shape: Shape = Shape(), first_seed: int = 100,
             alpha: float = 0.05, draws: int = 2000) -> pd.DataFrame:
    """Per simulated study and size: the exchange rate, its interval, whether it holds 1, and the
    negative control's status (``studies`` whole studies, seeds ``first_seed`` onwards)."""
    rows = []
    for seed in range(first_seed, first_seed + studies):
        summary, control, design = simulate_study(answers, shape, seed)
        rates = exchange.exchange_rates(exchange.human_size_table(summary), shape.share, 0.02, alpha=alpha,
                                        design=design, draws=draws)
        wrong = exchange.exchange_rates(exchange.human_size_table(control), shape.share, 0.02, alpha=alpha,
                                        design=design, draws=200)
        for row, bad in zip(rates.to_dict(orient="records"), wrong.to_dict(orient="records")):
            rows.append({"seed": seed, "size": row["size"], "status": row["status"], "rate": row["rate"],
                         "rate_low": row["rate_low"], "rate_high": row["rate_high"],
                         "holds_1": bool(row["rate_low"] <= 1.0 <= row["rate_high"]),
                         "control_status": bad["status"]})
    return pd.DataFrame(rows)
