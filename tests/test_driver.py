"""The driver: plan, dry run, papermill execution into results/, skipping complete steps."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
from conftest import REPO, run_cli, seed_llm_cache

from synthmix.core.layout import MARKER
from synthmix.params import load_params
from synthmix.run.graph import plan_study
from synthmix.run.markers import is_complete


def generate_dirs(results: Path) -> list[Path]:
    return sorted((results / "smoke" / "01_generate").glob("t*"))


def test_dry_run_lists_steps_and_writes_nothing(tmp_path):
    results = tmp_path / "results"
    out = run_cli("run", "params/smoke.yaml", "--results", str(results), "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "[to do] 01_generate.ipynb" in out.stdout and "t0.7" in out.stdout
    assert not results.exists()


def test_smoke_generation_runs_through_papermill_then_skips(smoke_study, tmp_path):
    results = seed_llm_cache(smoke_study, tmp_path / "results")  # replies replayed: the step, not the server, is tested
    first = run_cli("run", "params/smoke.yaml", "--only", "generate", "--results", str(results), "--no-progress")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "[1/1] generate t0.7" in first.stdout
    (folder,) = generate_dirs(results)
    assert (folder / MARKER).is_file()
    pool = pd.read_parquet(folder / "pool.parquet")
    assert set(pool["label"]) == {0, 1} and (pool["temperature"] == 0.7).all()
    report = json.loads((folder / "generation_report.json").read_text())
    assert report["collected"]["positive"] == (pool["label"] == 1).sum()
    executed = nbformat.read(folder / "01_generate.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "temperature = 0.7" in injected[0].source
    assert not any(o.get("output_type") == "error" for c in executed.cells for o in c.get("outputs", []))
    html = (folder / "01_generate.html").read_text()
    assert "Generate the pool" in html and "responses per label" in html

    second = run_cli("run", "params/smoke.yaml", "--only", "generate", "--results", str(results))
    assert second.returncode == 0, second.stderr
    assert "nothing to do: every step is already complete" in second.stdout
    assert generate_dirs(results) == [folder]


def test_a_step_without_its_marker_is_redone(smoke_study, tmp_path):
    results = seed_llm_cache(smoke_study, tmp_path / "results")
    params = load_params(REPO / "params/smoke.yaml")
    steps, _ = plan_study(params, REPO / "params/smoke.yaml", results, only=["generate"])
    (step,) = steps
    folder = Path(step.output_dir)
    folder.mkdir(parents=True)
    (folder / "pool.parquet").write_bytes(b"half-written")  # an interrupted run's leftovers
    assert not is_complete(step)
    out = run_cli("run", "params/smoke.yaml", "--only", "generate", "--results", str(results), "--no-progress")
    assert out.returncode == 0, out.stderr
    assert is_complete(step)
    assert len(pd.read_parquet(folder / "pool.parquet")) > 0


def test_changed_parameter_gets_its_own_folder(tmp_path):
    params = load_params(REPO / "params/smoke.yaml")
    (a,), _ = plan_study(params, REPO / "params/smoke.yaml", tmp_path, only=["generate"])
    changed = params.model_copy(update={"generation": params.generation.model_copy(update={"pool_size_per_label": 9})})
    (b,), _ = plan_study(changed, REPO / "params/smoke.yaml", tmp_path, only=["generate"])
    assert a.output_dir != b.output_dir and a.condition == b.condition


def test_steps_are_picklable_plain_records(tmp_path):
    import pickle

    params = load_params(REPO / "params/default.yaml")
    steps, _ = plan_study(params, REPO / "params/default.yaml", tmp_path)
    assert steps and pickle.loads(pickle.dumps(steps)) == steps
    assert all(isinstance(s.output_dir, str) for s in steps)


def test_two_workers_run_independent_steps_side_by_side_with_progress(tmp_path):
    import yaml

    params = yaml.safe_load((REPO / "params/smoke.yaml").read_text())
    params["generation"]["temperatures"] = [0.5, 0.9]
    path = tmp_path / "two_pools.yaml"
    path.write_text(yaml.safe_dump(params))
    results = tmp_path / "results"
    out = run_cli("run", str(path), "--only", "generate", "--results", str(results), "--workers", "2")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("start generate") == 2 and "[2/2] generate" in out.stdout
    assert "generate t0.5" in out.stderr and "generate t0.9" in out.stderr  # the bars inside the steps
    folders = sorted((results / "smoke" / "01_generate").glob("t*"))
    assert [f.name.split("-")[0] for f in folders] == ["t0.5", "t0.9"]
    assert all((f / MARKER).is_file() for f in folders)
