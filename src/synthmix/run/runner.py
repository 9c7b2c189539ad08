"""Execute steps: papermill runs each step's notebook into its output folder.

A step is complete when its marker ``_complete.json`` is in place and every declared output still
has the size and sha256 the marker recorded; the marker is written last, atomically, after the
notebook succeeded and was rendered to HTML. A folder without a valid marker (a step killed
half-way, or an output changed since) is cleared and redone. The marker also records the thread
count the kernel ran with and the code that ran (the notebook's cells and each synthmix module
the kernel loaded, see ``synthmix.run.code_versions``), so ``stale_reason`` can tell when a result
no longer matches the code, and which module changed.

A step runs under an exclusive lock (``flock`` on a hidden file beside its folder): a second run
that reaches a step another run is executing waits for it, then finds it complete. The kernel runs
in the study folder with path parameters relative to it, so rendered notebooks and result files
carry no absolute path of the machine. ``execute_step`` is a top-level function of one picklable
``Step``, so an executor on another machine can call it the same way.

What ran is what the record says: the kernel reads the params snapshot the step was planned with
(``synthmix.run.snapshot``), written just before it starts, and the marker records its sha256.
Before a step touches its folder, its inputs are checked (the snapshot, the upstream folders it
reads, the LLM cache); a step being redone moves its previous outputs aside
(``<study>/.previous/<NN_kind>/<folder>``) and deletes them only once the new run is complete.
Storage failures (no space, read-only, permission denied, a corrupt cache) end the step with one
line naming the path.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from synthmix.core import io
from synthmix.core.layout import MARKER, notebooks_dir
from synthmix.core.provenance import CODE_RECORD_ENV
from synthmix.run.code_versions import code_record, module_hashes
from synthmix.run.graph import Step
from synthmix.errors import STORAGE_ERRNOS, StorageError, storage_problem
from synthmix.run.markers import folder_incomplete_reason, incomplete_reason, is_complete, output_checksums
from synthmix.run.rendering import make_portable, render_html, rendered_paths, study_dir_of
from synthmix.run.snapshot import text_sha256

PROGRESS_FILE = ".progress.json"  # inside the step's folder: per run, never in the shared temp folder
CODE_RECORD_FILE = ".code_modules.json"  # inside the step's folder: the synthmix modules its kernel loaded
SCRATCH_DIR = ".tmp"  # the kernel's temp folder (TMPDIR), inside the step's folder, removed when the step ends
#: The step's thread count reaches its kernel through these (torch, OpenMP, MKL and llama.cpp read them).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "SYNTHMIX_THREADS")
#: Parameters holding paths: passed to the kernel (and kept in the marker) relative to the study folder.
PATH_PARAMETERS = ("params_file", "output_dir", "pool_dir", "filtered_dir", "teacher_dir", "cache_path",
                   "base_cache_dir", "study_dir", "pool_size_like_dir")
#: Parameters naming the folders of upstream steps a step reads (checked complete before it starts).
INPUT_FOLDERS = ("pool_dir", "filtered_dir", "teacher_dir", "pool_size_like_dir")
PREVIOUS_DIR = ".previous"  # in the study folder: outputs of a step being redone, until the new run completes


@dataclass
class StepResult:
    """What happened to one step: 'ran', 'skipped' (already complete) or 'failed'."""

    step_id: str
    status: str
    seconds: float = 0.0
    message: str = ""


class StepFailed(RuntimeError):
    """A step's notebook raised; the message points at the executed notebook with the error."""


def forget_completion(step: Step) -> None:
    """Remove a step's marker (under its lock) so that the next run redoes it; what ``--rerun-stale`` uses."""
    with step_lock(step):
        (Path(step.output_dir) / MARKER).unlink(missing_ok=True)


# --------------------------------------------------------------------------------- locking
def lock_path(step: Step) -> Path:
    """The lock file of a step: hidden, beside its folder (the folder itself is cleared when redone)."""
    folder = Path(step.output_dir)
    return folder.parent / f".{folder.name}.lock"


def _same_file(handle, path: Path) -> bool:
    try:
        opened, current = os.fstat(handle.fileno()), os.stat(path)
    except OSError:
        return False
    return (opened.st_dev, opened.st_ino) == (current.st_dev, current.st_ino)


@contextmanager
def step_lock(step: Step, out=sys.stdout):
    """Hold a step's exclusive lock; when another live run holds it, say so (with its pid) and wait.

    The lock is an ``flock`` on ``lock_path(step)``, released by the kernel if its holder dies, so
    a killed run never leaves a step locked. The file is removed on release; a waiter that wakes
    on a removed file takes the lock again on the current one.
    """
    path = lock_path(step)
    path.parent.mkdir(parents=True, exist_ok=True)
    announced = False
    while True:
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not announced:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                print(f"  {step.kind} {step.condition}: another synthmix run (pid {holder}) is running this step; "
                      f"waiting for it", file=out, flush=True)
                announced = True
            fcntl.flock(handle, fcntl.LOCK_EX)
        if _same_file(handle, path):
            break
        handle.close()
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        path.unlink(missing_ok=True)
        handle.close()


def relative_parameters(step: Step) -> dict:
    """The step's parameters with every path made relative to its study folder (the kernel's cwd).

    The study folder itself becomes ``../<study>``, so the path still names the study.
    """
    base = study_dir_of(step)
    parameters = dict(step.parameters)
    for key in PATH_PARAMETERS:
        value = parameters.get(key)
        if isinstance(value, str) and value and os.path.isabs(value):
            relative = os.path.relpath(value, base)
            parameters[key] = relative if relative != "." else os.path.join("..", base.name)
    return parameters


@contextmanager
def _kernel_environment(variables: dict[str, str]):
    """Set environment variables for a kernel started inside the block (kernels inherit the driver's)."""
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ------------------------------------------------------------------------------ execution
def execute_step(step: Step, show_progress: bool = True, position: int = 0, out=sys.stdout) -> StepResult:
    """Run one step's notebook with papermill unless it is complete; mark it complete last.

    The step runs under its lock (a run that finds it held waits, then usually finds the step
    complete), in the study folder with relative path parameters, and with exactly
    ``step.threads`` CPU threads in its kernel. A step whose outputs no longer match its marker
    is said so on ``out`` and redone. With ``show_progress``, a bar (at terminal line
    ``position``) follows the step's own progress.
    """
    if is_complete(step):
        return StepResult(step.id, "skipped")
    try:
        with step_lock(step, out=out):
            reason = incomplete_reason(step)
            if reason is None:  # another run completed it while this one waited
                return StepResult(step.id, "skipped", message="completed by another run")
            check_inputs(step)  # before anything of the step's folder is touched
            if reason != "not run":
                print(f"  {step.kind} {step.condition}: {reason}; redoing", file=out, flush=True)
            return _run_notebook(step, show_progress, position, out)
    except StorageError as exc:
        raise StepFailed(f"{step.id}: {exc}") from None
    except OSError as exc:
        line = storage_problem(exc, where=step.output_dir)
        if line is None:
            raise
        raise StepFailed(f"{step.id}: {line}") from None


# ------------------------------------------------------------------------- inputs first
def check_inputs(step: Step) -> None:
    """Make sure what a step reads is there and sound before its folder is touched: the params
    snapshot it was planned with (written here when missing), each upstream folder it reads
    (complete, outputs matching their marker) and the LLM cache (SQLite's quick check).

    Raises ``StepFailed`` (or ``StorageError``) with one line; nothing is deleted or moved.
    """
    params_file = step.parameters.get("params_file", "")
    if step.params_text:
        snapshot = Path(params_file)
        if not snapshot.is_file() or snapshot.read_text(encoding="utf-8") != step.params_text:
            io.write_text(snapshot, step.params_text)  # content-addressed: every writer writes the same bytes
    for key in INPUT_FOLDERS:
        folder = step.parameters.get(key)
        if folder:
            reason = folder_incomplete_reason(folder)
            if reason is not None:
                raise StepFailed(f"{step.id}: its input ({key}) is not usable: {reason}; run the study again to "
                                 "redo it")
    cache = step.parameters.get("cache_path")
    if cache and Path(cache).is_file() and (step.kind == "generate" or step.parameters.get("method") == "llm_judge"):
        from synthmix.llm.cache import ReplyCache

        reply_cache = ReplyCache(cache)
        try:
            reply_cache.check()
        finally:
            reply_cache.close()


def previous_dir(step: Step) -> Path:
    """Where a step being redone keeps its previous outputs until the new run is complete."""
    folder = Path(step.output_dir)
    return study_dir_of(step) / PREVIOUS_DIR / folder.parent.name / folder.name


def _set_aside(step: Step) -> Path | None:
    """Clear the step's folder for a new run: a folder holding outputs is moved aside (``previous_dir``),
    one holding none (a run that failed before writing any) is removed. Returns where outputs were kept."""
    folder = Path(step.output_dir)
    if not folder.exists():
        return None
    keep = previous_dir(step)
    holds_outputs = any((folder / name).is_file() for name in step.outputs)
    if holds_outputs and keep.exists() and (folder / MARKER).is_file():
        shutil.rmtree(keep)  # outputs that were complete once supersede older ones kept from before
    if holds_outputs and not keep.exists():
        keep.parent.mkdir(parents=True, exist_ok=True)
        os.rename(folder, keep)  # one rename: works even when a file inside cannot be changed
        return keep
    shutil.rmtree(folder)  # a failed attempt (or one whose older outputs are kept already)
    return keep if keep.exists() else None


def _storage_line_of(exc, where: str) -> str | None:
    """One line for a storage failure inside a kernel (``[Errno 28] No space left ...: 'path'``; ``where``
    when it names no path), or None."""
    if exc.ename in ("StorageError", "CacheCorrupt"):
        return exc.evalue
    match = re.match(r"\[Errno (\d+)\][^']*(?:'(.*)')?", exc.evalue or "")
    if match and int(match.group(1)) in STORAGE_ERRNOS:
        code, path = int(match.group(1)), match.group(2)
        return f"{path or where}: {STORAGE_ERRNOS[code]}"
    if "database or disk is full" in (exc.evalue or ""):
        return f"{where}: {STORAGE_ERRNOS[errno.ENOSPC]}"
    return None


def _run_notebook(step: Step, show_progress: bool, position: int, out=sys.stdout) -> StepResult:
    import papermill

    from synthmix.core.progress import ENV, ProgressWatcher

    folder = Path(step.output_dir)
    kept = _set_aside(step)  # stale: a previous run stopped before completion, or its outputs changed
    folder.mkdir(parents=True)
    kept_words = f"; its previous outputs are kept in {kept}" if kept else ""
    executed, html = rendered_paths(step)
    study_dir = study_dir_of(step)
    code_before = module_hashes()  # the code as it is when the step starts
    code_file = folder / CODE_RECORD_FILE
    parameters = relative_parameters(step)
    threads = int(getattr(step, "threads", 1) or 1)
    progress_file = folder / PROGRESS_FILE
    scratch = folder / SCRATCH_DIR  # what the kernel and its children write to "the temp folder" stays per run
    scratch.mkdir()
    tempfile.gettempdir()  # settle this process's own temp folder before the kernel's is put in the environment
    environment = ({name: str(threads) for name in THREAD_VARIABLES}
                   | {name: str(scratch) for name in ("TMPDIR", "TEMP", "TMP")} | {CODE_RECORD_ENV: str(code_file)})
    began = time.monotonic()
    try:
        with _kernel_environment(environment), \
                (ProgressWatcher(progress_file, f"  {step.kind} {step.condition}", position=position)
                 if show_progress else _kernel_environment({ENV: ""})):
            papermill.execute_notebook(
                str(notebooks_dir() / step.notebook), str(executed), parameters=parameters,
                cwd=str(study_dir), kernel_name="python3", progress_bar=False, log_output=False,
                # CRITICAL: no start-up chatter, and not the "KeyboardInterrupt caught" that every kernel logs
                # when jupyter_client interrupts it on shutdown (cell errors reach the executed notebook)
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
            )
    except papermill.PapermillExecutionError as exc:
        with suppress(OSError, ValueError):  # the failed notebook is kept for reading; portable if it can be
            make_portable(executed, step)
        line = _storage_line_of(exc, str(folder))
        if line is not None:
            raise StepFailed(f"{step.id}: {line}{kept_words}") from None
        raise StepFailed(f"{step.id} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}{kept_words}\n"
                         f"  see the executed notebook: {executed}") from None
    except OSError as exc:  # papermill could not save the notebook (no space, read-only, ...)
        line = storage_problem(exc, where=str(folder))
        if line is None:
            raise
        raise StepFailed(f"{step.id}: {line}{kept_words}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    try:
        make_portable(executed, step)
        render_html(executed, html, static_dir=study_dir / "_static")
        missing = [name for name in step.outputs if not (folder / name).is_file()]
        if missing:
            raise StepFailed(f"{step.id}: the notebook finished but did not write {', '.join(missing)} ({executed})")
        seconds = round(time.monotonic() - began, 1)
        code = code_record(step, code_before, _loaded_modules(code_file))
        io.write_json(folder / MARKER, {
            "step": step.id, "kind": step.kind, "condition": step.condition, "parameters": parameters,
            "params_sha256": text_sha256(step.params_text) if step.params_text else None,
            "experiments": list(step.experiments), "seconds": seconds, "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            "threads": threads, "outputs": output_checksums(step), "code": code})
    except OSError as exc:
        line = storage_problem(exc, where=str(folder))
        if line is None:
            raise
        raise StepFailed(f"{step.id}: {line}{kept_words}") from None
    _say_cache_mismatches(step, out)
    if kept is not None:  # the new run is complete: the previous outputs can go
        try:
            shutil.rmtree(kept)
        except OSError as exc:
            print(f"  {step.kind} {step.condition}: complete, but its previous outputs in {kept} could not be "
                  f"removed: {storage_problem(exc) or exc}", file=out, flush=True)
    return StepResult(step.id, "ran", seconds)


def _say_cache_mismatches(step: Step, out) -> None:
    """One line when a step's LLM cache held replies that failed their checksum (each was called again)."""
    folder = Path(step.output_dir)
    for name, path in (("generation_report.json", ("stats", "cache_checksum_mismatches")),
                       ("filter_report.json", ("cache_checksum_mismatches",))):
        try:
            value = io.read_json(folder / name)
            for key in path:
                value = value[key]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(value, int) and value > 0:
            print(f"  {step.kind} {step.condition}: {value} cached repl{'y' if value == 1 else 'ies'} failed "
                  f"{'its' if value == 1 else 'their'} checksum and {'was' if value == 1 else 'were'} requested again "
                  f"(never used as data): {step.parameters.get('cache_path')}", file=out, flush=True)


def _loaded_modules(code_file: Path) -> list[str] | None:
    """The synthmix modules the kernel said it loaded (None when the notebook did not say)."""
    try:
        names = io.read_json(code_file)
        code_file.unlink()
    except (OSError, ValueError):
        return None
    return names if isinstance(names, list) and all(isinstance(n, str) for n in names) else None
