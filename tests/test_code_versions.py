"""Code versions per step: a marker records the notebook and the synthmix modules its kernel loaded,
so a change to one module marks stale only the steps that ran it (and what depends on them)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO


def _markers(study: Path) -> dict[str, dict]:
    return {marker.parent.parent.name: json.loads(marker.read_text()) for marker in study.glob("*/*/_complete.json")}


def test_markers_record_the_modules_each_kernel_loaded(smoke_study):
    markers = _markers(smoke_study)
    modules = {kind: set(marker["code"]["modules"]) for kind, marker in markers.items()}
    assert "synthmix.steps.generate" in modules["01_generate"]
    assert "synthmix.steps.train" in modules["03_train_teacher"]
    assert "synthmix.analysis.figures" in modules["05_analyze"]
    for kind in ("01_generate", "02_filter", "03_train_teacher", "04_distill"):
        assert "synthmix.analysis.figures" not in modules[kind], kind
        assert not {m for m in modules[kind] if m.startswith("synthmix.run.") and m != "synthmix.run.upstream"}, kind
    assert all(len(digest) == 16 for marker in markers.values() for digest in marker["code"]["modules"].values())


def _dry_run_with_changed(module: str, smoke_study: Path, tmp_path: Path) -> dict[str, str]:
    """--dry-run of the smoke study with a copy of the code in which only ``module`` changed:
    notebook name → its status line."""
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO / "src", checkout / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "notebooks", checkout / "notebooks")
    changed = checkout / "src" / Path(*module.split(".")).with_suffix(".py")
    changed.write_text(changed.read_text() + "\n# a change that computes nothing differently\n")
    env = {**os.environ, "PYTHONPATH": str(checkout / "src")}
    env.pop("SYNTHMIX_NOTEBOOKS", None)
    out = subprocess.run([sys.executable, "-m", "synthmix", "run", str(REPO / "params/smoke.yaml"), "--results",
                          str(smoke_study.parent), "--dry-run"], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    status = re.compile(r"^\s*\[(stale|done |to do)\]\s+(\S+)")
    return {match.group(2): line for line in out.stdout.splitlines() if (match := status.match(line))}


def test_a_figures_change_marks_only_the_analysis_stale(smoke_study, tmp_path):
    lines = _dry_run_with_changed("synthmix.analysis.figures", smoke_study, tmp_path)
    assert "[stale]" in lines["05_analyze.ipynb"] and "synthmix.analysis.figures" in lines["05_analyze.ipynb"]
    for notebook in ("01_generate.ipynb", "02_filter.ipynb", "03_train_teacher.ipynb", "04_distill.ipynb"):
        assert lines[notebook].strip().startswith("[done ]"), lines[notebook]


def test_a_change_to_the_llama_cpp_server_marks_generation_stale(smoke_study, tmp_path):
    """The managed server runs outside the kernel (``synthmix.llm.llama_serve``) and decides the replies, so
    the pool: generation records it, and a change to it leaves generation and what follows stale."""
    assert "synthmix.llm.llama_serve" in _markers(smoke_study)["01_generate"]["code"]["modules"]
    lines = _dry_run_with_changed("synthmix.llm.llama_serve", smoke_study, tmp_path)
    assert "changed since it ran: synthmix.llm.llama_serve" in lines["01_generate.ipynb"], lines
    assert "[stale]" in lines["03_train_teacher.ipynb"], lines


def test_a_training_change_marks_training_and_what_follows_stale(smoke_study, tmp_path):
    lines = _dry_run_with_changed("synthmix.steps.train", smoke_study, tmp_path)
    assert "changed since it ran: synthmix.steps.train" in lines["03_train_teacher.ipynb"]
    assert "[stale]" in lines["04_distill.ipynb"] and "[stale]" in lines["05_analyze.ipynb"]
    assert lines["01_generate.ipynb"].strip().startswith("[done ]")
    assert lines["02_filter.ipynb"].strip().startswith("[done ]")  # method none: it never loads training code


@pytest.mark.parametrize("lines", [3])
def test_dry_run_into_a_closed_pipe_exits_quietly(lines):
    command = (f"{sys.executable} -m synthmix run params/default.yaml --dry-run | head -{lines}; "
               "echo \"exit ${PIPESTATUS[0]}\"")
    out = subprocess.run(["bash", "-c", command], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.stdout.splitlines()[-1] == "exit 0" and len(out.stdout.splitlines()) == lines + 1, out.stdout
    assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr, out.stderr
