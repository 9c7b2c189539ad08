"""Executed notebooks made portable (no machine paths) and rendered to HTML.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from synthmix.core import io
from synthmix.run.graph import Step

# jsonschema, which nbformat, papermill and nbconvert import, builds the IRI grammar of the optional
# rfc3987-syntax package at import when it is installed (jupyterlab's dependencies install it): 2.6 s
# in every process that runs or renders a notebook. Notebook schemas use no IRI format, so the processes
# that import this module (the driver and its workers, not the kernels) go without it.
sys.modules.setdefault("rfc3987_syntax", None)


# ------------------------------------------------------------------------ relative paths
def study_dir_of(step: Step) -> Path:
    """The study folder a step writes under (``<study>/<NN_kind>/<condition-hash>``)."""
    return Path(step.output_dir).parent.parent


def machine_paths(step: Step) -> list[tuple[str, str]]:
    """Absolute folders of this machine that kernel output may print, each with what replaces it in
    a rendered notebook: the step's own folder and the study folder (relative forms), the
    checkout, the Python environment (e.g. in library warnings) and the home folder."""
    import sysconfig

    study_dir = study_dir_of(step)
    pairs = [(Path(step.output_dir), os.path.relpath(step.output_dir, study_dir)), (study_dir, "."),
             (study_dir.parent, ".."),
             (Path(__file__).resolve().parents[3], "<checkout>"), (Path(sys.prefix), "<sys.prefix>"),
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
