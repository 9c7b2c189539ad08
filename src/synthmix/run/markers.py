"""Completion markers: a step is complete when its marker is in place and every output still matches it.
"""

from __future__ import annotations

from pathlib import Path

from synthmix.core import io
from synthmix.core.layout import MARKER
from synthmix.run.graph import Step


# ------------------------------------------------------------------ completion and integrity
def read_marker(step: Step) -> dict | None:
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
    marker = read_marker(step)
    if marker is None:
        return f"completion marker {MARKER} is unreadable"
    recorded = marker.get("outputs")
    if not isinstance(recorded, dict):
        return f"completion marker {MARKER} records no output checksums (written by an older synthmix)"
    unrecorded = [name for name in step.outputs if name not in recorded]
    if unrecorded:  # a step kind that declares more outputs now than when this step ran
        return f"outputs not made when it ran (written by an older synthmix): {', '.join(unrecorded)}"
    changed = [name for name in step.outputs if not _matches(folder / name, recorded.get(name))]
    if changed:
        return f"outputs changed since completion: {', '.join(changed)}"
    return None


def is_complete(step: Step) -> bool:
    """True when the step's marker is in place and every output matches its recorded size and sha256."""
    return incomplete_reason(step) is None


def folder_incomplete_reason(folder: str | Path) -> str | None:
    """None when a step folder (of any kind) has its marker and every output the marker records still
    matches; else why not. What a step checks of its input folders before it touches its own."""
    folder = Path(folder)
    try:
        marker = io.read_json(folder / MARKER)
    except (OSError, ValueError):
        return f"{folder}: not complete (no readable {MARKER})"
    recorded = marker.get("outputs") if isinstance(marker, dict) else None
    if not isinstance(recorded, dict):
        return f"{folder}: its {MARKER} records no output checksums"
    changed = [name for name, entry in recorded.items() if not _matches(folder / name, entry)]
    return f"{folder}: outputs changed since completion: {', '.join(changed)}" if changed else None

