"""What produced a result: code version, the synthmix modules loaded, package versions, platform, timing.

Every notebook ends with ``record_provenance`` so that a rendered run says what made it. Under
the driver (``SYNTHMIX_CODE_RECORD`` set by the runner) it also writes the names of the synthmix
modules the kernel loaded, so the step's marker can fingerprint exactly the code that ran
(see ``synthmix.run.code_versions``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ("synthmix", "torch", "transformers", "datasets", "openai", "papermill", "pandas", "scipy",
            "seaborn", "llama_cpp_python")
#: Where the runner asks the kernel to list the synthmix modules it loaded (a JSON list of names).
CODE_RECORD_ENV = "SYNTHMIX_CODE_RECORD"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def code_version() -> str:
    """The git commit of the synthmix checkout (with '+dirty' for uncommitted changes), or 'unknown'."""
    root = PACKAGE_DIR.parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit + ("+dirty" if dirty else "")) if commit else "unknown"


def module_file(name: str, package_dir: Path = PACKAGE_DIR) -> Path:
    """The source file of a synthmix module by its dotted name (``synthmix.steps.train``)."""
    parts = name.split(".")[1:]
    folder = package_dir.joinpath(*parts)
    return folder / "__init__.py" if folder.is_dir() else folder.with_suffix(".py")


def module_hash(path: Path) -> str:
    """sha256 (16 hex digits) of a source file's bytes; 'missing' when it no longer exists."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return "missing"


def loaded_modules() -> list[str]:
    """The synthmix modules this process has imported, sorted (what a notebook actually ran)."""
    return sorted(name for name, module in list(sys.modules.items())
                  if (name == "synthmix" or name.startswith("synthmix.")) and getattr(module, "__file__", None))


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
    """A provenance record: code version, the synthmix modules loaded (with their hashes), Python,
    platform, package versions, elapsed time and extras. Under the driver, also lists those modules
    where the runner asked (``SYNTHMIX_CODE_RECORD``)."""
    modules = loaded_modules()
    record = {
        "code_version": code_version(),
        "synthmix_modules": {name: module_hash(module_file(name)) for name in modules},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        **extra,
    }
    if started is not None:
        record["elapsed_s"] = round(time.time() - started, 1)
    target = os.environ.get(CODE_RECORD_ENV)
    if target:
        Path(target).write_text(json.dumps(modules))
    return record
