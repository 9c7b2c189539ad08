"""Per-call records and rates: every call a pool used is a row of calls.parquet (tokens, seconds of the call,
replayed or not, responses it added), and a run replayed from the cache reports the rate of the original
calls, not the speed of reading SQLite. Against the fault-injecting OpenAI-compatible server (no faults,
a fixed delay per call), so the seconds are known."""

from __future__ import annotations

import pandas as pd
from conftest import REPO
from fault_server import fault_server

from synthmix.data.rubric import load_rubric
from synthmix.params import GenerationParams
from synthmix.steps.generate import CALL_COLUMNS, generate_pool, save_pool

RUBRIC = load_rubric(REPO / "src/synthmix/data/default_data/tutor_error_feedback/rubric.yaml")


def test_a_replayed_pool_reports_the_rate_of_its_original_calls(tmp_path):
    with fault_server(delay_s=0.3, fault_rate=0.0) as server:
        settings = GenerationParams(backend="openai", base_url=server.base_url, model="fake-llm", responses_per_call=4,
                                    max_tokens=200, max_calls_per_label=20, concurrency=1)
        first_pool, first = generate_pool(settings, RUBRIC, 0.7, tmp_path / "llm.sqlite", targets={1: 6, 0: 6})
        again_pool, again = generate_pool(settings, RUBRIC, 0.7, tmp_path / "llm.sqlite", targets={1: 6, 0: 6})
    pd.testing.assert_frame_equal(first_pool, again_pool)
    assert again["stats"]["calls_made"] == 0 and again["calls_replayed_in_pool"] == sum(again["calls"].values())
    assert first["rate_basis"] == "calls made in this run"
    assert again["rate_basis"] == "the original calls, replayed from the cache"
    assert again["responses_per_minute"] == first["responses_per_minute"] < 12 / 0.3 * 60  # no 48000 per minute
    assert again["seconds"] < first["seconds"]  # the replay itself was quick

    save_pool(again_pool, again, tmp_path / "pool")
    calls = pd.read_parquet(tmp_path / "pool" / "calls.parquet")
    assert list(calls.columns) == CALL_COLUMNS and len(calls) == sum(again["calls"].values())
    assert calls["replayed"].all() and (calls["seconds"] >= 0.3).all()  # the stored seconds of the original calls
    assert list(calls["seconds"]) == [r["seconds"] for r in first["call_records"]]
    assert calls["responses"].sum() == len(again_pool) and set(calls["label"]) == {0, 1}
    assert (calls["max_tokens"] == 200).all() and (calls["prompt_tokens"] > 0).all()
    assert "call_records" not in pd.read_json(tmp_path / "pool" / "generation_report.json", typ="series")
