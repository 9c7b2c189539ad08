"""Executors: dependency order on a real Dask LocalCluster and real papermill, the smoke study on
the local and the Dask executor (same summary.csv, a rerun skips every step), the SLURM config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from conftest import REPO, run_cli, seed_llm_cache

from synthmix.errors import InputError
from synthmix.run.executors import DaskExecutor, LocalExecutor, load_cluster_config, make_executor
from synthmix.run.graph import Step

# A step notebook that records when it started and ended, after a pause, and fails if a parent
# it depends on has not left its output yet.
RECORDING_NOTEBOOK = [
    ("parameters", "output_dir = ''\nparents = []\npause_s = 0.0"),
    ("", "import json, time\nfrom pathlib import Path\n"
         "began = time.time()\n"
         "missing = [p for p in parents if not (Path(p) / 'times.json').is_file()]\n"
         "assert not missing, f'started before its parents finished: {missing}'\n"
         "time.sleep(pause_s)\n"
         "Path(output_dir, 'times.json').write_text(json.dumps({'began': began, 'ended': time.time()}))"),
]


@pytest.fixture
def diamond(tmp_path, monkeypatch) -> list[Step]:
    """Four steps a → (b, c) → d running the recording notebook; the parents pause so a child could overtake."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    cells = [nbformat.v4.new_code_cell(source, metadata={"tags": [tag]} if tag else {}) for tag, source in RECORDING_NOTEBOOK]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, notebooks / "record.ipynb")
    monkeypatch.setenv("SYNTHMIX_NOTEBOOKS", str(notebooks))  # inherited by the Dask worker processes

    def step(name: str, parents: tuple[Step, ...] = (), pause_s: float = 0.0) -> Step:
        output_dir = str(tmp_path / "results" / name)
        return Step(kind="record", condition=name, notebook="record.ipynb", digest=name,
                    parameters={"output_dir": output_dir, "parents": [p.output_dir for p in parents], "pause_s": pause_s},
                    output_dir=output_dir, outputs=("times.json",), depends_on=tuple(p.id for p in parents))

    a = step("a", pause_s=4.0)
    b, c = step("b", (a,), pause_s=2.0), step("c", (a,), pause_s=2.0)
    return [a, b, c, step("d", (b, c))]


def times(step: Step) -> dict:
    return json.loads((Path(step.output_dir) / "times.json").read_text())


@pytest.mark.parametrize("executor", [DaskExecutor(cluster="local:2"), LocalExecutor(workers=2)],
                         ids=["dask-local-2", "process-pool-2"])
def test_executor_starts_a_step_only_after_its_parents(diamond, executor):
    a, b, c, d = diamond
    results = executor.run([a, b, c, d], show_progress=False)
    assert sorted(r.step_id for r in results) == sorted(s.id for s in diamond)
    assert all(r.status == "ran" for r in results)
    assert times(b)["began"] >= times(a)["ended"] and times(c)["began"] >= times(a)["ended"]
    assert times(d)["began"] >= max(times(b)["ended"], times(c)["ended"])
    # resumed: only the step whose output is gone is redone
    shutil.rmtree(d.output_dir)
    again = LocalExecutor().run(diamond, show_progress=False)
    assert [r.step_id for r in again] == [d.id]


def test_executor_flags_that_do_not_fit_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="need --executor dask"):
        make_executor("local", cluster="local:2")
    with pytest.raises(InputError, match="either --cluster"):
        make_executor("dask")
    with pytest.raises(InputError, match="expected local:N"):
        make_executor("dask", cluster="local:two")
    with pytest.raises(InputError, match="needs --cluster-config"):
        make_executor("dask", cluster="slurm")
    with pytest.raises(InputError, match="--workers is for --executor local"):
        make_executor("dask", workers=2, cluster="local:2")
    bad = tmp_path / "cluster.yaml"
    bad.write_text("jobs: 0\nqueue: gpu\n")
    with pytest.raises(InputError) as caught:
        load_cluster_config(bad)
    assert any("unknown key queue" in p for p in caught.value.problems)
    assert any("'jobs' is 0" in p for p in caught.value.problems)


def test_example_slurm_config_makes_a_job_script_that_asks_for_a_gpu():
    from dask_jobqueue import SLURMCluster

    arguments, jobs = load_cluster_config(REPO / "params" / "cluster-slurm.example.yaml")
    assert jobs >= 1
    with SLURMCluster(**{**arguments, "scheduler_options": {"dashboard_address": None}}) as cluster:
        script = cluster.job_script()
    assert "--gres=gpu:1" in script and "--resources GPU=1" in script


# ----------------------------------------------------------------------- the smoke study
def metric_columns(summary: pd.DataFrame) -> pd.DataFrame:
    """summary.csv without the measured inference times (they differ between any two runs)."""
    keep = [c for c in summary.columns if "latency" not in c and "speedup" not in c]
    return summary[keep]


@pytest.fixture(scope="module")
def two_runs(smoke_study, tmp_path_factory) -> tuple[Path, Path, object]:
    """The smoke study run by the local executor (the session's ``smoke_study``), then by Dask on a
    LocalCluster of 2 workers in a fresh folder that shares its LLM cache (so generation is replayed)."""
    dask = seed_llm_cache(smoke_study, tmp_path_factory.mktemp("executors") / "dask")
    out = run_cli("run", "params/smoke.yaml", "--results", str(dask), "--executor", "dask", "--cluster", "local:2")
    return smoke_study.parent, dask, out


def test_dask_executor_gives_the_local_summary(two_runs):
    local, dask, out = two_runs
    assert out.returncode == 0, out.stdout + out.stderr
    assert "dask scheduler" in out.stdout
    expected, got = (metric_columns(pd.read_csv(folder / "smoke" / "summary.csv")) for folder in (local, dask))
    assert len(got) > 0
    pd.testing.assert_frame_equal(got, expected)


def test_dask_rerun_skips_every_step_and_resumes_only_what_is_missing(two_runs):
    _, dask, _ = two_runs
    out = run_cli("run", "params/smoke.yaml", "--results", str(dask), "--executor", "dask", "--cluster", "local:2")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "nothing to do" in out.stdout
    (analyze,) = (dask / "smoke" / "05_analyze").glob("*/_complete.json")
    analyze.unlink()
    out = run_cli("run", "params/smoke.yaml", "--results", str(dask), "--executor", "dask", "--cluster", "local:2")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ran 1 steps" in out.stdout and "analyze" in out.stdout
