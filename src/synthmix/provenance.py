"""What produced a result: code version, package versions, platform and timing.

Every notebook ends with ``record_provenance`` so that a rendered run says what made it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import subprocess
import time
from pathlib import Path

PACKAGES = ("synthmix", "torch", "transformers", "datasets", "openai", "papermill", "pandas", "scipy",
            "seaborn", "llama_cpp_python")


def code_version() -> str:
    """The git commit of the synthmix checkout (with '+dirty' for uncommitted changes), or 'unknown'."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit + ("+dirty" if dirty else "")) if commit else "unknown"


def source_fingerprint() -> str:
    """sha256 of the synthmix package's Python sources (each file's name and bytes), not of git.

    A step's completion marker keeps it, so a result can tell when the code that made it has changed.
    """
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def notebook_fingerprint(path: str | Path) -> str:
    """sha256 of a notebook's cells (type and source): what runs, not its outputs or metadata."""
    cells = json.loads(Path(path).read_text(encoding="utf-8")).get("cells", [])
    code = [[cell.get("cell_type", ""), "".join(cell.get("source", ""))] for cell in cells]
    return hashlib.sha256(json.dumps(code).encode()).hexdigest()


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a result depends on."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def record_provenance(started: float | None = None, **extra) -> dict:
    """A provenance record: code version, Python, platform, package versions, elapsed time and extras."""
    record = {
        "code_version": code_version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        **extra,
    }
    if started is not None:
        record["elapsed_s"] = round(time.time() - started, 1)
    return record
