"""Nothing false: a corrupted output of a completed step is redone (not trusted), and two runs started
at once on one results folder end with one consistent step, each exiting 0."""

from __future__ import annotations

import pandas as pd

from reliability.harness import Run, copy_run, params_copy, step_folders


def test_truncated_pool_is_detected_and_redone(finished_smoke, tmp_path):
    root = copy_run(finished_smoke, tmp_path / "corrupt")
    (folder,) = step_folders(root / "results", "01_generate")
    pool = folder / "pool.parquet"
    original = pool.read_bytes()
    pool.write_bytes(original[: len(original) // 2])
    run = Run(root, params_copy(root), "--only", "generate")
    assert run.wait() == 0, run.stdout + run.stderr
    assert "pool.parquet" in run.stdout and "redo" in run.stdout, run.stdout
    assert pool.read_bytes() == original  # replayed from the LLM cache: the same pool, whole again


def test_two_runs_on_one_folder_end_consistent(finished_smoke, tmp_path):
    # the LLM cache is kept (replies replayed, so it is quick); the generation step is not
    root = copy_run(finished_smoke, tmp_path / "race", without=("results/smoke",))
    params = params_copy(root)
    first, second = Run(root, params, "--only", "generate"), Run(root, params, "--only", "generate")
    codes = first.wait(), second.wait()
    assert codes == (0, 0), first.stdout + first.stderr + second.stdout + second.stderr
    (folder,) = step_folders(root / "results", "01_generate")
    assert (folder / "_complete.json").is_file()
    (reference,) = step_folders(finished_smoke / "results", "01_generate")
    assert folder.name == reference.name
    pool, expected = (pd.read_parquet(f / "pool.parquet").drop(columns="call_id", errors="ignore")
                      for f in (folder, reference))  # call ids are the server's, new for every call
    pd.testing.assert_frame_equal(pool, expected)
    for run in (first, second):
        assert run.leftovers(within_s=5)[0] == [] and run.temp_files() == []
    # one run generated; the other waited for it (the step's lock) or found it complete
    assert any("waiting for it" in run.stdout or "nothing to do" in run.stdout for run in (first, second)), \
        first.stdout + second.stdout


def test_base_teacher_cache_has_the_modes_of_other_outputs(finished_smoke):
    results = finished_smoke / "results"
    entries = list((results / ".cache" / "base_teachers").rglob("*"))
    assert entries, "the smoke run stored no base teacher"
    file_mode, folder_mode = ((results / "smoke" / "summary.csv").stat().st_mode & 0o777,
                              (results / "smoke").stat().st_mode & 0o777)
    wrong = {str(p): oct(p.stat().st_mode & 0o777) for p in entries
             if p.stat().st_mode & 0o777 != (folder_mode if p.is_dir() else file_mode)}
    assert wrong == {}, f"expected {oct(file_mode)} for files and {oct(folder_mode)} for folders"
