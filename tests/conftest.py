"""Shared fixtures: offline Hugging Face, a real llama.cpp server, the shared Beetle data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "semeval2013-task7-beetle-2way"


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real ``synthmix`` command in a subprocess."""
    return subprocess.run([sys.executable, "-m", "synthmix", *args], cwd=cwd or REPO, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=1800)


@pytest.fixture(scope="session")
def llama_server():
    """A real llama.cpp server with SmolLM2-135M-Instruct, started once for the session."""
    from synthmix.llm.server import ManagedLlamaServer, smollm2_gguf

    with ManagedLlamaServer(smollm2_gguf(), threads=2) as server:
        yield server


@pytest.fixture(scope="session")
def beetle_dir() -> Path:
    """The shared SemEval-2013 Beetle data beside the repository (skips when absent)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared development data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory) -> Path:
    """The smoke study run once for the whole session with the real driver (every notebook under
    papermill); tests that only read its results share it. Returns ``<results>/smoke``."""
    results = tmp_path_factory.mktemp("smoke-shared") / "results"
    out = run_cli("run", "params/smoke.yaml", "--results", str(results), "--no-progress")
    assert out.returncode == 0, out.stdout + out.stderr
    return results / "smoke"
