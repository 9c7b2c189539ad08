"""A flaky OpenAI-compatible server (tests/fault_server.py) at 30% faults: 429 with Retry-After, 500,
hangs, malformed JSON, empty content, error text and refusals as content. The smoke study's
generation step completes, no error text reaches a pool or the cache, and the API key (a sentinel in
the variable named by ``generation.api_key_env``) appears nowhere under the run's folder: results,
LLM cache, rendered notebooks, logs and the temp folder."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pandas as pd
import pytest

from reliability.harness import Run, params_copy, step_folders

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
fault_server_module = pytest.importorskip("fault_server")

SENTINEL = "sk-" + "reliability-SENTINEL-5f0c2e9a"  # built at run time: no key-shaped literal in the repository
KEY_VARIABLE = "SYNTHMIX_RELIABILITY_API_KEY"
ERROR_SHAPES = ("error", "rate limit", "retry after", "sorry", "can't help", "cannot help")


def test_generation_survives_30_percent_faults_without_error_text_or_key_leaks(tmp_path):
    with fault_server_module.fault_server(fault_rate=0.3, retry_after="1", hang_s=20) as server:
        params = params_copy(tmp_path, backend="openai", model="fake-llm", base_url=server.base_url,
                             api_key_env=KEY_VARIABLE, request_timeout_s=2, max_retries=8, concurrency=4,
                             responses_per_call=1, temperatures=[0.3, 0.7])
        run = Run(tmp_path, params, "--only", "generate", env={KEY_VARIABLE: SENTINEL})
        code = run.wait(timeout=300)
        faults = dict(server.faults)
    assert code == 0, run.stdout + run.stderr
    assert len(faults) >= 4, f"too few faults injected to test anything: {faults}"
    assert f"Bearer {SENTINEL}" in server.authorization  # the key was used...

    folders = step_folders(tmp_path / "results", "01_generate")
    assert len(folders) == 2
    texts = pd.concat([pd.read_parquet(folder / "pool.parquet")["text"] for folder in folders]).str.lower()
    in_pool = [t for t in texts if any(shape in t for shape in ERROR_SHAPES)]
    assert in_pool == [], f"error text became data: {in_pool}"
    with sqlite3.connect(tmp_path / "results" / "llm_cache.sqlite") as cache:
        replies = [row[0].lower() for row in cache.execute("SELECT text FROM replies")]
    assert replies and not [r for r in replies if fault_server_module.ERROR_TEXT.lower() in r
                            or fault_server_module.REFUSAL_TEXT.lower() in r or not r.strip()]

    leaks = [str(p) for p in tmp_path.rglob("*") if p.is_file() and SENTINEL.encode() in p.read_bytes()]
    assert leaks == [], f"...but it must be written nowhere: {leaks}"
    print(f"faults injected and survived: {sum(faults.values())} {faults}; requests {server.requests}; "
          f"error strings in the pool: {len(in_pool)}")
