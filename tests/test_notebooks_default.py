"""Each notebook runs top to bottom with its default parameters, as a user would in JupyterLab.

The notebooks and params are copied into a scratch checkout-like folder, so that their default
relative paths (../params/smoke.yaml, ../results/…) land there and not in the repository; its
results/ starts as a copy of the session's smoke study, so what a notebook builds upstream when
opened by hand (run.upstream) is found complete instead of built again.
"""

from __future__ import annotations

import shutil

import nbformat
import papermill
import pytest
from conftest import REPO

NOTEBOOKS = ["01_generate", "02_filter", "03_train_teacher", "04_distill", "05_analyze"]


@pytest.fixture(scope="module")
def scratch(smoke_study, tmp_path_factory):
    """A checkout-like folder whose results/ starts as a copy of the session's smoke study: the notebooks'
    own default runs (results/interactive/…) are done here, the upstream steps they need are found complete."""
    root = tmp_path_factory.mktemp("checkout")
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    shutil.copytree(REPO / "params", root / "params")
    shutil.copytree(smoke_study.parent, root / "results")
    return root


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_with_its_defaults(scratch, name):
    source = scratch / "notebooks" / f"{name}.ipynb"
    clean = nbformat.read(source, as_version=4)
    assert not any(cell.get("outputs") for cell in clean.cells if cell.cell_type == "code"), "committed with outputs"
    parameters = [c for c in clean.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1 and clean.cells.index(parameters[0]) == 1
    executed = scratch / f"{name}.executed.ipynb"
    papermill.execute_notebook(str(source), str(executed), cwd=str(scratch / "notebooks"), kernel_name="python3",
                               progress_bar=False)
    result = nbformat.read(executed, as_version=4)
    assert not any(o.get("output_type") == "error" for c in result.cells for o in c.get("outputs", []))
    assert (scratch / "results" / "interactive" / name).is_dir()
