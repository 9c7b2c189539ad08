"""Step execution you can trust: checksummed completion markers, a per-step lock, the kernel's
thread count, the code fingerprint behind ``--dry-run``'s [stale], and paths relative to the study."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from conftest import REPO, run_cli, seed_llm_cache

from synthmix.core.layout import MARKER
from synthmix.params import load_params
from synthmix.run.code_versions import notebook_fingerprint, stale_reason
from synthmix.run.graph import plan_study
from synthmix.run.markers import is_complete
from synthmix.run.runner import lock_path


def generation_step(root: Path):
    """The smoke study's generation step under ``root`` (params ``root/smoke.yaml``, results ``root/results``)."""
    params_file = root / "smoke.yaml"
    (step,), _ = plan_study(load_params(params_file), params_file, root / "results", only=["generate"])
    return step


def run_generation(root: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_cli("run", str(root / "smoke.yaml"), "--only", "generate", "--results", str(root / "results"),
                   "--no-progress", *extra, env=env)


@pytest.fixture(scope="module")
def generated(smoke_study, tmp_path_factory) -> Path:
    """A folder with the smoke params (copied, so every path the run records can be relative) and a
    results folder whose generation step is complete, run here by the driver with the smoke study's
    LLM cache (its replies replayed: no call is made twice); the run's temp folder is ``root/tmp``."""
    root = tmp_path_factory.mktemp("integrity")
    shutil.copy(REPO / "params" / "smoke.yaml", root / "smoke.yaml")
    (root / "tmp").mkdir()
    seed_llm_cache(smoke_study, root / "results")
    out = run_generation(root, env={"TMPDIR": str(root / "tmp")})
    assert out.returncode == 0, out.stdout + out.stderr
    return root


@pytest.fixture
def copy_of(generated, tmp_path) -> Path:
    """A private copy of the generated folder (its LLM cache makes a rerun fast and call-free)."""
    target = tmp_path / "copy"
    shutil.copytree(generated, target, ignore=shutil.ignore_patterns("tmp"))
    return target


def test_marker_records_checksums_threads_and_code(generated):
    step = generation_step(generated)
    marker = json.loads((Path(step.output_dir) / MARKER).read_text())
    assert set(marker["outputs"]) == set(step.outputs)
    for name, recorded in marker["outputs"].items():
        content = (Path(step.output_dir) / name).read_bytes()
        assert recorded == {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    assert marker["threads"] == step.threads
    assert marker["code"]["notebook"] == notebook_fingerprint(REPO / "notebooks" / step.notebook)
    assert "synthmix.steps.generate" in marker["code"]["modules"]  # per module the kernel loaded (test_code_versions)
    assert marker["parameters"]["output_dir"] == f"01_generate/{Path(step.output_dir).name}"
    snapshot = marker["parameters"]["params_file"]  # the params as planned, relative to the study folder
    assert snapshot.startswith("_params/params-") and snapshot.endswith(".yaml"), snapshot
    content = (generated / "results" / "smoke" / snapshot).read_bytes()
    assert marker["params_sha256"] == hashlib.sha256(content).hexdigest()
    assert is_complete(step) and "notebook" not in (stale_reason(step) or "")


def test_no_absolute_path_in_results_and_nothing_left_in_temp(generated):
    step = generation_step(generated)
    executed = nbformat.read(Path(step.output_dir) / step.notebook, as_version=4)
    assert executed.metadata.papermill.output_path == f"01_generate/{Path(step.output_dir).name}/{step.notebook}"
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert '"output_dir": "01_generate/' in printed  # the provenance cell prints the relative path
    machine_paths = {str(generated).encode(), str(REPO).encode()}
    for path in (generated / "results").rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not [p for p in machine_paths if p in content], f"{path} holds an absolute path"
    assert not list((generated / "results" / "smoke" / "01_generate").glob(".*.lock"))
    assert not list(Path(step.output_dir).glob(".*")), "the step's scratch or progress file was left behind"
    assert not list((generated / "tmp").iterdir()), "a file of the run was left in the temp folder"


def test_truncated_output_of_a_complete_step_is_detected_and_redone(copy_of):
    step = generation_step(copy_of)
    pool = Path(step.output_dir) / "pool.parquet"
    pool.write_bytes(pool.read_bytes()[:100])
    assert not is_complete(step)
    dry = run_generation(copy_of, "--dry-run")
    assert "[to do] 01_generate.ipynb" in dry.stdout and "outputs changed since completion: pool.parquet" in dry.stdout
    out = run_generation(copy_of)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "outputs changed since completion: pool.parquet; redoing" in out.stdout
    assert is_complete(step) and len(pd.read_parquet(pool)) > 0


def test_changed_notebook_is_stale_and_rerun_stale_reruns_it_with_the_step_thread_count(copy_of):
    notebooks = copy_of / "notebooks"
    shutil.copytree(REPO / "notebooks", notebooks)
    edited = nbformat.read(notebooks / "01_generate.ipynb", as_version=4)
    edited.cells.append(nbformat.v4.new_code_cell(
        'import os, torch\nprint("threads:", os.environ["OMP_NUM_THREADS"], os.environ["SYNTHMIX_THREADS"], '
        'torch.get_num_threads())'))
    nbformat.write(edited, notebooks / "01_generate.ipynb")
    env = {"SYNTHMIX_NOTEBOOKS": str(notebooks), "OMP_NUM_THREADS": "7", "SYNTHMIX_THREADS": "7"}
    step = generation_step(copy_of)

    dry = run_generation(copy_of, "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "[stale] 01_generate.ipynb" in dry.stdout and "changed since it ran: notebook 01_generate.ipynb" in dry.stdout
    plain = run_generation(copy_of, env=env)
    assert "nothing to do" in plain.stdout and "--rerun-stale reruns them" in plain.stdout

    out = run_generation(copy_of, "--rerun-stale", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    marker = json.loads((Path(step.output_dir) / MARKER).read_text())
    assert marker["code"]["notebook"] == notebook_fingerprint(notebooks / "01_generate.ipynb")
    executed = nbformat.read(Path(step.output_dir) / step.notebook, as_version=4)
    printed = "".join(o.get("text", "") for o in executed.cells[-1].get("outputs", []))
    assert printed.split() == ["threads:", str(step.threads), str(step.threads), str(step.threads)]
    again = run_generation(copy_of, "--dry-run", env=env)
    assert "changed since it ran: notebook" not in again.stdout


def test_two_concurrent_runs_on_one_folder_end_with_one_consistent_step(copy_of):
    step = generation_step(copy_of)
    shutil.rmtree(copy_of / "results" / "smoke")  # keep only the LLM cache: both runs replay it
    command = [sys.executable, "-m", "synthmix", "run", str(copy_of / "smoke.yaml"), "--only", "generate",
               "--results", str(copy_of / "results"), "--no-progress"]
    first = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not lock_path(step).is_file() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock_path(step).is_file(), "the first run never took the step's lock"
    second = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    first_out, first_err = first.communicate(timeout=600)
    assert first.returncode == 0, first_out + first_err
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"another synthmix run (pid {first.pid}) is running this step; waiting for it" in second.stdout
    assert [f.name for f in (copy_of / "results" / "smoke" / "01_generate").iterdir()] == [Path(step.output_dir).name]
    assert is_complete(step) and not lock_path(step).exists()
    marker = json.loads((Path(step.output_dir) / MARKER).read_text())
    assert marker["step"] == step.id and set(marker["outputs"]) == set(step.outputs)
