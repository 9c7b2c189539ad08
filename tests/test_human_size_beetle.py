"""The exchange rate recovers a known answer on real human-coded data (SemEval-2013 Beetle; skips without it).

Held-out real human responses used as the "synthetic" arm are worth exactly one human response each
in expectation, so the true exchange rate is 1 at every size; with their codes flipped they must be
harmful. The study runs with a fast stand-in learner (TF-IDF + logistic regression) and the real
sampling, table, exchange-rate and overlap code (``synthmix.analysis.exchange_calibration``).
"""

from __future__ import annotations

import numpy as np
import pytest

from synthmix.analysis import exchange
from synthmix.analysis.exchange_calibration import Shape, beetle_answers, simulate_study

SHAPE = Shape()  # 40 replicates, sizes 20, 40, 80, 50% "synthetic", the human curve to 3x


@pytest.fixture(scope="module")
def beetle_study(beetle_dir):
    """The fast-learner study on Beetle, run once: (summary, the negative control's summary, design)."""
    return simulate_study(beetle_answers(beetle_dir), SHAPE, seed=2)


def test_held_out_human_responses_as_the_synthetic_arm_are_worth_one_human_response_each(beetle_study):
    summary, _, design = beetle_study
    table = exchange.human_size_table(summary)
    base = table[table["arm"] == exchange.BASE].groupby("size", observed=True)["auc"].mean()
    assert list(base.index) == ["20", "40", "80"]
    assert np.all(np.diff(base.to_numpy()) > 0) and base.iloc[-1] - base.iloc[0] > 0.02, base  # the curve rises
    rates = exchange.exchange_rates(table, SHAPE.share, 0.02, design=design, draws=4000)
    measured = rates[rates["status"] == "measured"]
    assert len(measured) == len(SHAPE.sizes), rates[["size", "status", "gain"]]
    for row in measured.to_dict(orient="records"):  # the known answer, 1, lies within every interval
        assert row["rate_low"] <= 1.0 <= row["rate_high"], row["text"]
        assert 0.5 < row["rate"] < 2.0, row["text"]
    assert np.isfinite(measured["rate_high"]).any(), measured  # the intervals say something
    assert (measured["rate_high"] - measured["rate_low"]).min() < 2.5, measured


def test_held_out_responses_with_the_wrong_code_are_harmful(beetle_study):
    _, control, design = beetle_study
    rates = exchange.exchange_rates(exchange.human_size_table(control), SHAPE.share, 0.02, design=design, draws=500)
    assert list(rates["status"]) == ["harmful"] * len(SHAPE.sizes), rates[["size", "gain", "gain_high"]]
    assert (rates["rate"] == 0).all()
