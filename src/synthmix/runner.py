"""Execute steps: papermill runs each step's notebook into its output folder.

A step is complete when its marker ``_complete.json`` is in place and every declared output still
has the size and sha256 the marker recorded; the marker is written last, atomically, after the
notebook succeeded and was rendered to HTML. A folder without a valid marker (a step killed
half-way, or an output changed since) is cleared and redone. The marker also records the thread
count the kernel ran with and a fingerprint of the notebook and of the ``synthmix`` sources, so
``stale_reason`` can tell when a result no longer matches the code.

A step runs under an exclusive lock (``flock`` on a hidden file beside its folder): a second run
that reaches a step another run is executing waits for it, then finds it complete. The kernel runs
in the study folder with path parameters relative to it, so rendered notebooks and result files
carry no absolute path of the machine. ``execute_step`` is a top-level function of one picklable
``Step``, so an executor on another machine can call it the same way.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from contextlib import contextmanager, suppress
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from synthmix import io
from synthmix.pipeline import Step, notebooks_dir

MARKER = "_complete.json"
PROGRESS_FILE = ".progress.json"  # inside the step's folder: per run, never in the shared temp folder
SCRATCH_DIR = ".tmp"  # the kernel's temp folder (TMPDIR), inside the step's folder, removed when the step ends
#: The step's thread count reaches its kernel through these (torch, OpenMP, MKL and llama.cpp read them).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "SYNTHMIX_THREADS")
#: Parameters holding paths: passed to the kernel (and kept in the marker) relative to the study folder.
PATH_PARAMETERS = ("params_file", "output_dir", "pool_dir", "filtered_dir", "teacher_dir", "cache_path",
                   "base_cache_dir", "study_dir")


@dataclass
class StepResult:
    """What happened to one step: 'ran', 'skipped' (already complete) or 'failed'."""

    step_id: str
    status: str
    seconds: float = 0.0
    message: str = ""


class StepFailed(RuntimeError):
    """A step's notebook raised; the message points at the executed notebook with the error."""


# ------------------------------------------------------------------ completion and integrity
def _read_marker(step: Step) -> dict | None:
    try:
        marker = io.read_json(Path(step.output_dir) / MARKER)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def output_checksums(step: Step) -> dict[str, dict]:
    """Size and sha256 of each declared output of a step (what its marker records)."""
    folder = Path(step.output_dir)
    return {name: {"size": (folder / name).stat().st_size, "sha256": io.file_hash(folder / name, length=64)}
            for name in step.outputs}


def _matches(path: Path, recorded) -> bool:
    """Whether a file has the recorded size (checked first, cheaply) and sha256."""
    if not isinstance(recorded, dict):
        return False
    try:
        if path.stat().st_size != recorded.get("size"):
            return False
    except OSError:
        return False
    return io.file_hash(path, length=64) == recorded.get("sha256")


def incomplete_reason(step: Step) -> str | None:
    """None when the step is complete; else why not ('not run', or which outputs changed since completion)."""
    folder = Path(step.output_dir)
    if not (folder / MARKER).is_file():
        return "not run"
    marker = _read_marker(step)
    if marker is None:
        return f"completion marker {MARKER} is unreadable"
    recorded = marker.get("outputs")
    if not isinstance(recorded, dict):
        return f"completion marker {MARKER} records no output checksums (written by an older synthmix)"
    changed = [name for name in step.outputs if not _matches(folder / name, recorded.get(name))]
    if changed:
        return f"outputs changed since completion: {', '.join(changed)}"
    return None


def is_complete(step: Step) -> bool:
    """True when the step's marker is in place and every output matches its recorded size and sha256."""
    return incomplete_reason(step) is None


def code_fingerprint(step: Step) -> dict[str, str]:
    """Content hashes of the step's notebook and of the synthmix sources (what the marker records)."""
    from synthmix.provenance import notebook_fingerprint, source_fingerprint

    return {"notebook": notebook_fingerprint(notebooks_dir() / step.notebook), "synthmix": source_fingerprint()}


def stale_reason(step: Step) -> str | None:
    """Why a complete step may not match the code now (its notebook or src/synthmix changed since it
    ran); None when both are unchanged, or when the step is not complete (it will run anyway)."""
    if not is_complete(step):
        return None
    recorded = (_read_marker(step) or {}).get("code")
    if not isinstance(recorded, dict):
        return "no code version recorded"
    current = code_fingerprint(step)
    changed = [f"notebook {step.notebook}" if key == "notebook" else "src/synthmix"
               for key in ("notebook", "synthmix") if recorded.get(key) != current[key]]
    return f"changed since it ran: {', '.join(changed)}" if changed else None


def stale_steps(steps: list[Step]) -> dict[str, str]:
    """Step id → why, for every complete step that is stale or depends on a step that will run
    (a stale one or one still to do), so its inputs would change under it. ``steps`` in dependency order."""
    stale: dict[str, str] = {}
    will_run: set[str] = set()
    names = {s.id: f"{s.kind} {s.condition}" for s in steps}
    for step in steps:
        if not is_complete(step):
            will_run.add(step.id)
            continue
        reason = stale_reason(step)
        rerun_inputs = [d for d in step.depends_on if d in will_run]
        if reason is None and rerun_inputs:
            reason = f"its input {names[rerun_inputs[0]]} will run again"
        if reason is not None:
            stale[step.id] = reason
            will_run.add(step.id)
    return stale


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


# ------------------------------------------------------------------------ relative paths
def study_dir_of(step: Step) -> Path:
    """The study folder a step writes under (``<study>/<NN_kind>/<condition-hash>``)."""
    return Path(step.output_dir).parent.parent


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


def machine_paths(step: Step) -> list[tuple[str, str]]:
    """Absolute folders of this machine that kernel output may print, each with what replaces it in
    a rendered notebook: the step's own folder and the study folder (relative forms), the
    checkout, the Python environment (e.g. in library warnings) and the home folder."""
    import sysconfig

    study_dir = study_dir_of(step)
    pairs = [(Path(step.output_dir), os.path.relpath(step.output_dir, study_dir)), (study_dir, "."),
             (study_dir.parent, ".."),
             (Path(__file__).resolve().parents[2], "<checkout>"), (Path(sys.prefix), "<sys.prefix>"),
             (Path(sysconfig.get_paths()["purelib"]), "<site-packages>"), (Path.home(), "~")]
    unique = {str(path.resolve()): token for path, token in pairs} | {str(path): token for path, token in pairs}
    return sorted(unique.items(), key=lambda pair: -len(pair[0]))  # longest first


def _scrub(value, replacements: list[tuple[re.Pattern, str]]):
    if isinstance(value, str):
        for pattern, token in replacements:
            value = pattern.sub(token, value)
        return value
    if isinstance(value, list):
        return [_scrub(item, replacements) for item in value]
    if isinstance(value, dict):
        return {key: _scrub(item, replacements) for key, item in value.items()}
    return value


def make_portable(executed: Path, step: Step) -> None:
    """Rewrite an executed notebook so it holds no absolute path of this machine: papermill's
    recorded notebook paths become relative to the study folder, and any machine folder printed in
    an output (a library warning's file name, say) is replaced as ``machine_paths`` says."""
    import nbformat

    if not executed.is_file():
        return
    notebook = nbformat.read(executed, as_version=4)
    recorded = notebook.metadata.get("papermill", {})
    recorded["input_path"] = f"notebooks/{step.notebook}"
    recorded["output_path"] = os.path.relpath(executed, study_dir_of(step))
    replacements = [(re.compile(re.escape(path) + r"(?![\w.-])"), token.replace("\\", "\\\\"))
                    for path, token in machine_paths(step) if len(path) > 1]
    for cell in notebook.cells:
        if cell.get("outputs"):
            cell["outputs"] = [nbformat.from_dict(_scrub(output, replacements)) for output in cell["outputs"]]
    io.write_text(executed, nbformat.writes(notebook))


# ------------------------------------------------------------------------------ rendering
def rendered_paths(step: Step) -> tuple[Path, Path]:
    """Where the executed notebook and its HTML rendering go."""
    folder = Path(step.output_dir)
    return folder / step.notebook, folder / step.notebook.replace(".ipynb", ".html")


def render_html(notebook_path: Path, html_path: Path, static_dir: Path | None = None) -> None:
    """Render an executed notebook to an HTML page (atomically).

    With ``static_dir``, the large style sheets that every page would repeat (~280 KB each) are
    written there once, named by their hash, and linked relatively, so the page still opens
    from disk without a server.
    """
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nbformat.read(notebook_path, as_version=4))
    if static_dir is not None:
        body = share_styles(body, html_path.parent, static_dir)
    io.write_text(html_path, body)


def share_styles(html: str, page_dir: Path, static_dir: Path, min_chars: int = 10_000) -> str:
    """Move each inline ``<style>`` block of ``min_chars`` or more into ``static_dir/<hash>.css``
    and link it from the page by a relative path."""

    def move(match: re.Match) -> str:
        css = match.group(1)
        if len(css) < min_chars:
            return match.group(0)
        target = Path(static_dir) / f"nb-{io.stable_hash(css)}.css"
        if not target.is_file():
            io.write_text(target, css)
        return f'<link rel="stylesheet" href="{os.path.relpath(target, page_dir)}">'

    return re.sub(r"<style[^>]*>(.*?)</style>", move, html, flags=re.DOTALL)


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

    from synthmix.progress import ENV, ProgressWatcher

    folder = Path(step.output_dir)
    if folder.exists():  # stale: a previous run stopped before completion, or its outputs changed
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    executed, html = rendered_paths(step)
    study_dir = study_dir_of(step)
    code = code_fingerprint(step)  # the code as it is when the step starts
    parameters = relative_parameters(step)
    threads = int(getattr(step, "threads", 1) or 1)
    progress_file = folder / PROGRESS_FILE
    scratch = folder / SCRATCH_DIR  # what the kernel and its children write to "the temp folder" stays per run
    scratch.mkdir()
    tempfile.gettempdir()  # settle this process's own temp folder before the kernel's is put in the environment
    environment = {name: str(threads) for name in THREAD_VARIABLES} | {name: str(scratch) for name in
                                                                         ("TMPDIR", "TEMP", "TMP")}
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
    io.write_json(folder / MARKER, {
        "step": step.id, "kind": step.kind, "condition": step.condition, "parameters": parameters,
        "experiments": list(step.experiments), "seconds": seconds, "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "threads": threads, "outputs": output_checksums(step), "code": code})
    return StepResult(step.id, "ran", seconds)
