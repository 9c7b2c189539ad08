"""Shared fixtures: offline Hugging Face, a real llama.cpp server, the shared Beetle data, and the smoke
study built once per test session (shared by pytest-xdist workers too) for every test that only reads it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):  # a core per worker: torch and the llama.cpp servers tests start get one thread
    for variable in ("SYNTHMIX_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "semeval2013-task7-beetle-2way"


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real ``synthmix`` command in a subprocess."""
    return subprocess.run([sys.executable, "-m", "synthmix", *args], cwd=cwd or REPO, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=1800)


def cli_here(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``synthmix`` in this process (``synthmix.cli.main``, what the command calls): the same exit
    status and output as ``run_cli`` without a new interpreter's imports, for commands that only read
    and check (validate, init, a run refused before it starts). ``env`` values replace the environment's
    for the call ("" included); the old environment and working folder are restored afterwards."""
    import contextlib
    import io

    from synthmix.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    try:
        os.environ.update(env or {})
        os.chdir(cwd or REPO)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                returncode = main(list(args))
            except SystemExit as exit_:  # argparse and explicit exits
                returncode = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["synthmix", *args], int(returncode or 0), stdout.getvalue(), stderr.getvalue())


@pytest.fixture(scope="session")
def llama_server():
    """A real llama.cpp server with SmolLM2-135M-Instruct, started once for the session."""
    from synthmix.llm.server import ManagedLlamaServer, smollm2_gguf

    with ManagedLlamaServer(smollm2_gguf(), threads=int(os.environ.get("SYNTHMIX_THREADS") or 2)) as server:
        yield server


@pytest.fixture(scope="session")
def beetle_dir() -> Path:
    """The shared SemEval-2013 Beetle data beside the repository (skips when absent)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared development data not found at {SHARED_DATA}")
    return SHARED_DATA


def built_once(tmp_path_factory, name: str, build) -> Path:
    """The folder ``name``, made by ``build(folder)`` once per test session: with pytest-xdist, the
    first worker builds it under a file lock in the session's shared temp folder and the others wait
    for it and reuse it. A build that failed is redone (and fails again) by the next test asking."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the folder every worker's basetemp lives in
    folder, done = root / name, root / f"{name}.built"
    with FileLock(str(root / f"{name}.lock")):
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            build(folder)
            done.touch()
    return folder


def _run_smoke(folder: Path) -> None:
    out = run_cli("run", "params/smoke.yaml", "--results", str(folder / "results"), "--no-progress")
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory) -> Path:
    """The smoke study run once for the whole session with the real driver (every notebook under
    papermill, a real llama.cpp server); tests that only read its results share it, and tests that
    change a run start from a copy of it or of its LLM cache. Returns ``<results>/smoke``."""
    return built_once(tmp_path_factory, "smoke-shared", _run_smoke) / "results" / "smoke"


def seed_llm_cache(smoke_study: Path, results: Path) -> Path:
    """A copy of the smoke study's LLM cache in ``results``: generation with the smoke params replays
    it instead of calling a server (what the smoke study already did). Returns ``results``."""
    results.mkdir(parents=True, exist_ok=True)
    for part in smoke_study.parent.glob("llm_cache.sqlite*"):  # the database and any write-ahead log beside it
        shutil.copy(part, results / part.name)
    return results


def pytest_runtest_logreport(report):
    """With SYNTHMIX_TEST_TIMES=<file>, append each test phase's seconds to it as it ends (to find slow tests):
    seconds, phase, outcome, test, the xdist worker and the time it started (seconds since the epoch)."""
    target = os.environ.get("SYNTHMIX_TEST_TIMES")
    if target and not hasattr(report, "node"):  # once, where the test ran (pytest-xdist's controller gets a copy)
        with open(target, "a") as out:
            out.write(f"{report.duration:.1f}\t{report.when}\t{report.outcome}\t{report.nodeid}\t"
                      f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}\t{report.start:.0f}\n")
