"""The reliability suite: crashes, signals, faults and concurrency, on the smoke study (see harness.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reliability.harness import Run, params_copy


@pytest.fixture(scope="session")
def finished_smoke(smoke_study, tmp_path_factory) -> Path:
    """One uninterrupted smoke run with its params copied into the folder; every test copies from it. It is
    a copy of the session's smoke study (the same params), checked by a run that finds nothing to do."""
    root = tmp_path_factory.mktemp("reliability-seed")
    params = params_copy(root)
    shutil.copytree(smoke_study.parent, root / "results", ignore=shutil.ignore_patterns(".*.lock"))
    run = Run(root, params)
    code = run.wait()
    assert code == 0 and "nothing to do" in run.stdout, run.stdout + run.stderr
    assert not run.leftovers(within_s=5)[0]
    return root
