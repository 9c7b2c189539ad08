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
"""

from __future__ import annotations

import fcntl
import os
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
from synthmix.run.markers import incomplete_reason, is_complete, output_checksums
from synthmix.run.rendering import make_portable, render_html, rendered_paths, study_dir_of

PROGRESS_FILE = ".progress.json"  # inside the step's folder: per run, never in the shared temp folder
CODE_RECORD_FILE = ".code_modules.json"  # inside the step's folder: the synthmix modules its kernel loaded
SCRATCH_DIR = ".tmp"  # the kernel's temp folder (TMPDIR), inside the step's folder, removed when the step ends
#: The step's thread count reaches its kernel through these (torch, OpenMP, MKL and llama.cpp read them).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "SYNTHMIX_THREADS")
#: Parameters holding paths: passed to the kernel (and kept in the marker) relative to the study folder.
PATH_PARAMETERS = ("params_file", "output_dir", "pool_dir", "filtered_dir", "teacher_dir", "cache_path",
                   "base_cache_dir", "study_dir", "pool_size_like_dir")


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
    with step_lock(step, out=out):
        reason = incomplete_reason(step)
        if reason is None:  # another run completed it while this one waited
            return StepResult(step.id, "skipped", message="completed by another run")
        if reason != "not run":
            print(f"  {step.kind} {step.condition}: {reason}; redoing", file=out, flush=True)
        return _run_notebook(step, show_progress, position)


def _run_notebook(step: Step, show_progress: bool, position: int) -> StepResult:
    import papermill

    from synthmix.core.progress import ENV, ProgressWatcher

    folder = Path(step.output_dir)
    if folder.exists():  # stale: a previous run stopped before completion, or its outputs changed
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
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
        raise StepFailed(f"{step.id} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}\n"
                         f"  see the executed notebook: {executed}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    make_portable(executed, step)
    render_html(executed, html, static_dir=study_dir / "_static")
    missing = [name for name in step.outputs if not (folder / name).is_file()]
    if missing:
        raise StepFailed(f"{step.id}: the notebook finished but did not write {', '.join(missing)} ({executed})")
    seconds = round(time.monotonic() - began, 1)
    code = code_record(step, code_before, _loaded_modules(code_file))
    io.write_json(folder / MARKER, {
        "step": step.id, "kind": step.kind, "condition": step.condition, "parameters": parameters,
        "experiments": list(step.experiments), "seconds": seconds, "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "threads": threads, "outputs": output_checksums(step), "code": code})
    return StepResult(step.id, "ran", seconds)


def _loaded_modules(code_file: Path) -> list[str] | None:
    """The synthmix modules the kernel said it loaded (None when the notebook did not say)."""
    try:
        names = io.read_json(code_file)
        code_file.unlink()
    except (OSError, ValueError):
        return None
    return names if isinstance(names, list) and all(isinstance(n, str) for n in names) else None
