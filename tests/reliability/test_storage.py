"""What ran is what the record says, and storage failures end in one clear line with nothing wrong on disk:
a params file edited under a running step, a corrupt LLM cache, a reply changed inside the cache, a full
disk, a read-only disk and an immutable step folder (real mechanisms: a small tmpfs, a read-only remount,
``chattr +i``; each case skips, saying why, where the machine does not allow it)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
import yaml

from reliability.harness import Run, copy_run, params_copy, step_folders

ERROR_PREFIX = "error: "


def error_lines(run: Run) -> list[str]:
    """What the run printed on stderr, line by line (a traceback would be many lines)."""
    return [line for line in run.stderr.splitlines() if line.strip()]


@contextmanager
def tmpfs(path: Path, size: str):
    """A small tmpfs mounted at ``path`` (skips when this machine does not allow mounting)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); needs root with CAP_SYS_ADMIN")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def chattr(flag: str, path: Path) -> None:
    """Set or clear a file attribute (skips when the file system does not support it)."""
    done = subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr {flag} is not supported here ({done.stderr.strip()})")


def generation_folder(root: Path) -> Path:
    (folder,) = step_folders(root / "results", "01_generate")
    return folder


def test_a_params_file_edited_under_a_running_step_cannot_change_what_it_ran(finished_smoke, tmp_path):
    root = copy_run(finished_smoke, tmp_path / "edited", without=("results",))  # a fresh cache: real calls
    params = params_copy(root)
    original = params.read_text()
    run = Run(root, params, "--only", "generate")
    kind_dir = root / "results" / "smoke" / "01_generate"
    run.wait_until(lambda: kind_dir.is_dir() and any(p.is_dir() for p in kind_dir.iterdir()),
                   what="the generation step's folder")
    edited = yaml.safe_load(original)
    edited["generation"]["max_tokens"] = 120  # five seconds into the step, the user changes the file
    params.write_text(yaml.safe_dump(edited, sort_keys=False))
    assert run.wait() == 0, run.stdout + run.stderr

    folder = generation_folder(root)
    with sqlite3.connect(root / "results" / "llm_cache.sqlite") as cache:
        asked = {json.loads(row[0])["max_tokens"] for row in cache.execute("SELECT request FROM replies")}
    assert asked == {200}, f"calls made with max_tokens {asked}; the step was planned with 200"
    assert set(pd.read_parquet(folder / "calls.parquet")["max_tokens"]) == {200}
    marker = json.loads((folder / "_complete.json").read_text())
    snapshot = root / "results" / "smoke" / marker["parameters"]["params_file"]
    assert marker["params_sha256"] == hashlib.sha256(snapshot.read_bytes()).hexdigest()
    assert yaml.safe_load(snapshot.read_text())["generation"]["max_tokens"] == 200

    dry = Run(root, params, "--only", "generate", "--dry-run")  # the edited file (120) is another step
    assert dry.wait() == 0 and "[to do] 01_generate.ipynb" in dry.stdout, dry.stdout
    params.write_text(original)  # reverted: the step done is the one that ran with 200
    dry = Run(root, params, "--only", "generate", "--dry-run")
    assert dry.wait() == 0 and "[done ] 01_generate.ipynb" in dry.stdout, dry.stdout


def test_a_corrupt_cache_is_one_line_and_the_previous_pool_is_kept(finished_smoke, tmp_path):
    root = copy_run(finished_smoke, tmp_path / "corrupt")
    folder = generation_folder(root)
    pool = (folder / "pool.parquet").read_bytes()
    (folder / "_complete.json").unlink()  # the step must be redone (as after --rerun-stale), its pool still valid
    cache = root / "results" / "llm_cache.sqlite"
    for extra in cache.parent.glob("llm_cache.sqlite-*"):
        extra.unlink()
    data = bytearray(cache.read_bytes())
    data[:100] = b"\x17" * 100
    cache.write_bytes(bytes(data))
    run = Run(root, params_copy(root), "--only", "generate")
    assert run.wait() == 1, run.stdout + run.stderr
    lines = error_lines(run)
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), run.stderr
    assert f"{cache}: the LLM reply cache is corrupt" in lines[0] and f"mv {cache} {cache}.corrupt" in lines[0]
    assert (folder / "pool.parquet").read_bytes() == pool  # nothing was deleted before the inputs were checked
    assert not (root / "results" / "smoke" / ".previous").exists()
    assert run.leftovers(within_s=5)[0] == []


def test_a_reply_changed_inside_the_cache_is_never_data(finished_smoke, tmp_path):
    root = copy_run(finished_smoke, tmp_path / "changed", without=("results/smoke",))
    cache = root / "results" / "llm_cache.sqlite"
    with sqlite3.connect(cache) as raw:
        key = raw.execute("SELECT key FROM replies ORDER BY rowid LIMIT 1").fetchone()[0]
        raw.execute("UPDATE replies SET text = text || ' Altered inside the cache.' WHERE key = ?", (key,))
    run = Run(root, params_copy(root), "--only", "generate")
    assert run.wait() == 0, run.stdout + run.stderr
    folder = generation_folder(root)
    assert not pd.read_parquet(folder / "pool.parquet")["text"].str.contains("Altered inside the cache").any()
    stats = json.loads((folder / "generation_report.json").read_text())["stats"]
    assert stats["cache_checksum_mismatches"] == 1 and stats["calls_made"] >= 1, stats  # a miss: called again
    assert "1 cached reply failed its checksum" in run.stdout, run.stdout
    with sqlite3.connect(cache) as raw:
        assert "Altered inside" not in raw.execute("SELECT text FROM replies WHERE key = ?", (key,)).fetchone()[0]


def test_a_full_disk_is_one_line_and_no_step_claims_completion(finished_smoke, tmp_path):
    root = tmp_path / "full"
    root.mkdir()
    params = params_copy(root)
    with tmpfs(root / "results", "160k") as results:
        shutil.copy(finished_smoke / "results" / "llm_cache.sqlite", results / "llm_cache.sqlite")  # replayed: quick
        run = Run(root, params, "--only", "generate")
        assert run.wait() == 1, run.stdout + run.stderr
        lines = error_lines(run)
        assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX) and "no space left on the device" in lines[0], \
            run.stderr
        assert str(results) in lines[0]
        assert not list(results.rglob("_complete.json"))
        assert run.leftovers(within_s=5)[0] == [] and run.temp_files() == []


def test_a_read_only_results_disk_is_one_line(finished_smoke, tmp_path):
    root = tmp_path / "readonly"
    root.mkdir()
    params = params_copy(root)
    with tmpfs(root / "results", "8m") as results:
        shutil.copy(finished_smoke / "results" / "llm_cache.sqlite", results / "llm_cache.sqlite")
        remounted = subprocess.run(["mount", "-o", "remount,ro", str(results)], capture_output=True, text=True)
        if remounted.returncode != 0:
            pytest.skip(f"cannot remount read-only here ({remounted.stderr.strip()})")
        run = Run(root, params, "--only", "generate")
        assert run.wait() == 1, run.stdout + run.stderr
        lines = error_lines(run)
        assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX) and "read-only" in lines[0], run.stderr
        assert sorted(p.name for p in results.iterdir()) == ["llm_cache.sqlite"]  # nothing written


def test_an_immutable_step_folder_is_one_line_and_its_outputs_stay(finished_smoke, tmp_path):
    root = copy_run(finished_smoke, tmp_path / "immutable")
    folder = generation_folder(root)
    (folder / "_complete.json").unlink()
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    chattr("+i", folder)
    try:
        run = Run(root, params_copy(root), "--only", "generate")
        code = run.wait()
    finally:
        chattr("-i", folder)
    assert code == 1, run.stdout + run.stderr
    lines = error_lines(run)
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX) and "operation not permitted" in lines[0], run.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before


def test_an_immutable_output_file_does_not_stop_the_redo(finished_smoke, tmp_path):
    root = copy_run(finished_smoke, tmp_path / "immutable-file")
    folder = generation_folder(root)
    (folder / "_complete.json").unlink()
    chattr("+i", folder / "pool.parquet")
    kept = root / "results" / "smoke" / ".previous" / "01_generate" / folder.name
    try:
        run = Run(root, params_copy(root), "--only", "generate")
        code = run.wait()
        assert code == 0, run.stdout + run.stderr
        assert (folder / "_complete.json").is_file()  # redone in full, not a half-cleared folder
        assert f"its previous outputs in {kept} could not be removed" in run.stdout, run.stdout
    finally:
        if (kept / "pool.parquet").exists():
            chattr("-i", kept / "pool.parquet")
