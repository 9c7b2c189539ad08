"""The reliability suite: crashes, signals, faults and concurrency, on the smoke study (see harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import seed_llm_cache

from reliability.harness import Run, params_copy


@pytest.fixture(scope="session")
def finished_smoke(smoke_study, tmp_path_factory) -> Path:
    """One uninterrupted smoke run (params copied into the folder, a lighter teacher); every test copies
    from it. Its generation replays the session's smoke study's LLM cache (same generation settings)."""
    root = tmp_path_factory.mktemp("reliability-seed")
    params = params_copy(root)
    seed_llm_cache(smoke_study, root / "results")
    run = Run(root, params)
    code = run.wait()
    assert code == 0, run.stdout + run.stderr
    assert not run.leftovers(within_s=5)[0]
    return root


