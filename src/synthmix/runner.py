"""Execute steps: papermill runs each step's notebook into its output folder.

A step is complete when its marker ``_complete.json`` is in place together with every declared
output; the marker is written last, atomically, after the notebook succeeded and was rendered
to HTML. A folder without the marker is stale (a step killed half-way) and is cleared and
redone. ``execute_step`` is a top-level function of one picklable ``Step``, so an executor on
another machine can call it the same way.
"""

from __future__ import annotations

import shutil
from contextlib import nullcontext
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from synthmix import io
from synthmix.pipeline import Step, notebooks_dir

MARKER = "_complete.json"


@dataclass
class StepResult:
    """What happened to one step: 'ran', 'skipped' (already complete) or 'failed'."""

    step_id: str
    status: str
    seconds: float = 0.0
    message: str = ""


class StepFailed(RuntimeError):
    """A step's notebook raised; the message points at the executed notebook with the error."""


def is_complete(step: Step) -> bool:
    """True when the step's marker and all its outputs are in place."""
    folder = Path(step.output_dir)
    return (folder / MARKER).is_file() and all((folder / name).is_file() for name in step.outputs)


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
    import os
    import re

    def move(match: re.Match) -> str:
        css = match.group(1)
        if len(css) < min_chars:
            return match.group(0)
        target = Path(static_dir) / f"nb-{io.stable_hash(css)}.css"
        if not target.is_file():
            io.write_text(target, css)
        return f'<link rel="stylesheet" href="{os.path.relpath(target, page_dir)}">'

    return re.sub(r"<style[^>]*>(.*?)</style>", move, html, flags=re.DOTALL)


def execute_step(step: Step, show_progress: bool = True, position: int = 0) -> StepResult:
    """Run one step's notebook with papermill unless it is complete; mark it complete last.

    With ``show_progress``, a bar (at terminal line ``position``) follows the step's own progress.
    """
    import papermill

    from synthmix.progress import ProgressWatcher

    if is_complete(step):
        return StepResult(step.id, "skipped")
    folder = Path(step.output_dir)
    if folder.exists():  # stale: a previous run stopped before completion
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    executed, html = rendered_paths(step)
    began = time.monotonic()
    progress_file = Path(tempfile.gettempdir()) / f"synthmix-progress-{step.digest}.json"
    try:
        with ProgressWatcher(progress_file, f"  {step.kind} {step.condition}", position=position) \
                if show_progress else nullcontext():
            papermill.execute_notebook(
                str(notebooks_dir() / step.notebook), str(executed), parameters=step.parameters,
                cwd=str(notebooks_dir()), kernel_name="python3", progress_bar=False, log_output=False,
                extra_arguments=["--IPKernelApp.log_level=ERROR"],  # no kernel start-up chatter in the terminal
            )
    except papermill.PapermillExecutionError as exc:
        raise StepFailed(f"{step.id} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}\n"
                         f"  see the executed notebook: {executed}") from None
    render_html(executed, html, static_dir=folder.parent.parent / "_static")
    missing = [name for name in step.outputs if not (folder / name).is_file()]
    if missing:
        raise StepFailed(f"{step.id}: the notebook finished but did not write {', '.join(missing)} ({executed})")
    seconds = round(time.monotonic() - began, 1)
    io.write_json(folder / MARKER, {"step": step.id, "kind": step.kind, "condition": step.condition,
                                    "parameters": step.parameters, "experiments": list(step.experiments), "seconds": seconds,
                                    "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
    return StepResult(step.id, "ran", seconds)


def execute_step_with_threads(step: Step, threads: int, show_progress: bool, position: int) -> StepResult:
    """``execute_step`` in a worker process whose kernels use ``threads`` CPU threads."""
    import os

    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "SYNTHMIX_THREADS"):
        os.environ[variable] = str(threads)
    return execute_step(step, show_progress=show_progress, position=position)


def run_steps(steps: list[Step], show_progress: bool = True, out=sys.stdout, workers: int = 1) -> list[StepResult]:
    """Run steps in dependency order, printing steps done of total; return what ran.

    ``workers`` > 1 runs independent steps side by side in a process pool (each kernel gets an
    equal share of the CPU threads); a step starts only when the steps it depends on are done.
    Stops at the first failure (after letting running steps finish); completed steps stay complete.
    """
    results: list[StepResult] = []
    todo = [s for s in steps if not is_complete(s)]
    finished = {s.id for s in steps} - {s.id for s in todo}
    counter = len(finished)
    if workers <= 1:
        for step in todo:
            counter += 1
            print(f"[{counter}/{len(steps)}] {step.kind} {step.condition} …", file=out, flush=True)
            result = execute_step(step, show_progress=show_progress)
            results.append(result)
            print(f"      done in {result.seconds:.1f} s → {step.output_dir}", file=out, flush=True)
        return results

    import multiprocessing
    import os
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    threads = max(1, (os.cpu_count() or 1) // workers)
    pending = list(todo)
    running: dict = {}
    failure: BaseException | None = None
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        while (pending and failure is None) or running:
            ready = [s for s in pending if all(d in finished for d in s.depends_on)] if failure is None else []
            for step in ready[: workers - len(running)]:
                pending.remove(step)
                position = min(set(range(workers)) - {slot for _, slot in running.values()})
                running[pool.submit(execute_step_with_threads, step, threads, show_progress, position)] = (step, position)
                print(f"  start {step.kind} {step.condition}", file=out, flush=True)
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                step, _ = running.pop(future)
                try:
                    result = future.result()
                except BaseException as exc:  # noqa: BLE001 - reported after running steps finish
                    failure = failure or exc
                    continue
                finished.add(step.id)
                results.append(result)
                counter += 1
                print(f"[{counter}/{len(steps)}] {step.kind} {step.condition} done in {result.seconds:.1f} s",
                      file=out, flush=True)
    if failure is not None:
        raise failure
    return results
