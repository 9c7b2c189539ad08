"""Code versions per step: the notebook and the synthmix modules a step ran, and whether they changed since.

A step's marker records the sha256 of its notebook's cells and of every synthmix module its
kernel actually loaded (listed by ``record_provenance``; all modules when a notebook does not
say), with the modules of the processes it starts (a llama.cpp server: ``STARTED_BY``).
``stale_reason`` compares them with the files now, so a change to ``analysis/figures.py`` leaves
generation and training complete and marks only the analysis stale, and the message names the
module that changed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from synthmix.core.layout import notebooks_dir
from synthmix.core.provenance import PACKAGE_DIR, module_file, module_hash
from synthmix.run.graph import Step
from synthmix.run.markers import is_complete, read_marker


def all_modules(package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Every module of the synthmix package by dotted name (the fallback when a kernel lists none)."""
    names = []
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        names.append(".".join(("synthmix", *parts)))
    return names


def module_hashes(names: list[str] | None = None) -> dict[str, str]:
    """Module name → hash of its source file now (``names`` default: every module of the package)."""
    return {name: module_hash(module_file(name)) for name in (names if names is not None else all_modules())}


def notebook_fingerprint(path: str | Path) -> str:
    """sha256 (16 hex digits) of a notebook's cells (type and source): what runs, not its outputs or metadata."""
    cells = json.loads(Path(path).read_text(encoding="utf-8")).get("cells", [])
    code = [[cell.get("cell_type", ""), "".join(cell.get("source", ""))] for cell in cells]
    return hashlib.sha256(json.dumps(code).encode()).hexdigest()[:16]


#: Modules a step runs outside its kernel, in processes the kernel starts, by the module that starts them: a
#: managed llama.cpp server's replies (so the pool) follow ``llm.llama_serve``'s rule for reusing its cache.
STARTED_BY = {"synthmix.llm.server": ("synthmix.llm.llama_serve",)}


def with_started_processes(loaded: list[str]) -> list[str]:
    """``loaded`` and the modules the processes its modules start run (``STARTED_BY``)."""
    return sorted(set(loaded) | {started for name in loaded for started in STARTED_BY.get(name, ())})


def code_record(step: Step, before: dict[str, str], loaded: list[str] | None) -> dict:
    """What a step's marker records of its code: the notebook's fingerprint and, per module the kernel
    loaded (and per module a process it started ran, ``STARTED_BY``), its hash as it was when the step
    started (``before``); every module when ``loaded`` is None."""
    names = with_started_processes(loaded) if loaded else sorted(before)
    return {"notebook": notebook_fingerprint(notebooks_dir() / step.notebook),
            "modules": {name: before.get(name) or module_hash(module_file(name)) for name in names}}


def changed_code(step: Step, recorded: dict) -> list[str]:
    """What of a step's recorded code differs from the files now: the notebook and each module by name."""
    changed = []
    if recorded.get("notebook") != notebook_fingerprint(notebooks_dir() / step.notebook):
        changed.append(f"notebook {step.notebook}")
    for name, digest in sorted(recorded.get("modules", {}).items()):
        now = module_hash(module_file(name))
        if now != digest:
            changed.append(f"{name} (removed)" if now == "missing" else name)
    return changed


def stale_reason(step: Step) -> str | None:
    """Why a complete step may not match the code now (its notebook or a module it loaded changed since
    it ran); None when nothing changed, or when the step is not complete (it will run anyway)."""
    if not is_complete(step):
        return None
    recorded = (read_marker(step) or {}).get("code")
    if not isinstance(recorded, dict) or not isinstance(recorded.get("modules"), dict):
        return "no per-module code version recorded (written by an older synthmix)"
    changed = changed_code(step, recorded)
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
