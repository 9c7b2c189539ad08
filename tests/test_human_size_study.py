"""A human-size study run by the real driver: the arms share their human-only teacher, and the index shows
the human-size figure, the exchange-rate figure, claim 4's verdict and the cost table."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, run_cli

from synthmix.analysis import cost
from synthmix.core.io import read_table
from synthmix.data.splits import load_study_data
from synthmix.params import load_params


@pytest.fixture(scope="module")
def human_size_study(smoke_study, tmp_path_factory) -> Path:
    """The smoke study's settings with a human-size experiment (sizes 24 and all, 8% synthetic, one
    replicate), run into a fresh results folder that starts from a copy of the smoke study's LLM cache
    (so generation replays it). Returns the study folder."""
    root = tmp_path_factory.mktemp("human-size")
    params = yaml.safe_load((REPO / "params" / "smoke.yaml").read_text())
    params |= {"study": "smoke-human-size",
               "experiments": {"human_size": {"temperatures": [0.7], "filters": ["none"], "synthetic_shares": [0.08],
                                              "human_sizes": [24, "all"], "distill": False}},
               "claims": {"exchange_draws": 400}}
    params["teacher"] |= {"bootstrap_resamples": 10}
    params["dataset"]["source"] = "embedded:tutor_error_feedback"
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    results = root / "results"
    results.mkdir()
    with sqlite3.connect(smoke_study.parent / "llm_cache.sqlite") as source, \
            sqlite3.connect(results / "llm_cache.sqlite") as copy:
        source.backup(copy)
    out = run_cli("run", str(root / "params.yaml"), "--results", str(results), "--no-progress")
    assert out.returncode == 0, out.stdout + out.stderr
    return results / "smoke-human-size"


def _teacher(study: Path, prefix: str) -> Path:
    (folder,) = [p for p in (study / "03_train_teacher").iterdir() if p.name.startswith(prefix)]
    return folder


def test_the_arms_of_a_size_share_their_human_only_teacher_and_subsample(human_size_study):
    synthetic = read_table(_teacher(human_size_study, "t0.7-none-incremental8-h24-r0") / "metrics.parquet")
    extra = read_table(_teacher(human_size_study, "extrahuman8-h24-r0") / "metrics.parquet")
    assert list(extra["protocol"].unique()) == ["extra_human"] and (extra["n_synthetic"] == 0).all()
    assert list(extra["n_added"]) == [0, 2, 4] and list(synthetic["n_added"]) == [0, 2]  # the schedule continued
    assert (extra["n_human"] == 24).all() and (synthetic["n_human"] == 24).all()
    assert extra.loc[0, "auc"] == synthetic.loc[0, "auc"]  # one human-only fine-tune on the same 24
    report = json.loads((_teacher(human_size_study, "extrahuman8-h24-r0") / "teacher_report.json").read_text())
    params = load_params(human_size_study.parent.parent / "params.yaml")
    train_rows = set(load_study_data(params, human_size_study.parent.parent / "params.yaml")["train"]["row"])
    assert len(report["used_rows"]["train"]) == 24 and set(report["used_rows"]["train"]) <= train_rows
    assert report["history"]["extra_human"]["rest"] == len(train_rows) - 24


def test_claims_json_carries_claim_4_and_the_index_shows_its_figures_and_tables(human_size_study):
    (analysis,) = (human_size_study / "05_analyze").iterdir()
    records = [r for r in json.loads((analysis / "claims.json").read_text()) if r["id"] == "4"]
    assert [r["part"] for r in records] == ["gain at 24 minus at all human responses, 8% synthetic",
                                            "human size above which the gain is below the margin"]
    assert records[0]["verdict"] == "inconclusive" and records[0]["replicates"] == 1  # one replicate decides nothing
    assert {"estimate", "ci_low", "ci_high", "margin", "power", "replicates_needed", "text"} <= set(records[0])
    rates = pd.read_csv(analysis / "exchange_rates.csv")
    assert list(rates["size"].astype(str)) == ["24", "all"]
    at_all = rates.loc[1]
    assert at_all["curve_to"] == 0  # the whole split trains at "all": no extra human responses to read a curve from
    expected = ("harmful" if at_all["gain_high"] < 0 else "worth nothing" if at_all["gain"] <= 0
                else "no extra human responses")  # a gain at or below 0 is worth nothing without any curve
    assert at_all["status"] == expected, at_all.to_dict()
    costs = pd.read_csv(analysis / "costs.csv")
    assert list(costs["synthetic"]) == [2, 8]
    (pool,) = cost.pool_costs(human_size_study).to_dict(orient="records")
    if pool["source"] == "calls.parquet":  # per-call records: a replayed call keeps its tokens
        assert pool["prompt_tokens"] > 0 and (costs["prompt_tokens"] > 0).all()
    else:  # the generation report of a pool replayed from the cache has no tokens for those calls
        assert pool["calls_replayed"] == pool["calls"] > 0 and costs["prompt_tokens"].isna().all()
    index = (human_size_study.parent / "index.html").read_text()
    for shown in ("auc_by_human_size.png", "exchange_rate.png", "How much human coding the synthetic responses replace",
                  "Augmentation helps more when human data is scarce", "tokens in / out", expected):
        assert shown in index, shown
