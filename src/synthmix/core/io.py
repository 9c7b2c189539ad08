"""Files as the interface between steps: atomic writes and content hashes.

A file is written beside its destination and renamed into place, so a reader never sees a
half-written file, and a step killed half-way leaves nothing a rerun would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()  # what open() would give a new file (mkstemp alone gives 0600)


@contextmanager
def atomic_path(destination: str | Path):
    """Yield a temporary path beside ``destination``; on success rename it into place."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent)
    os.close(handle)
    os.chmod(temporary, FILE_MODE)
    try:
        yield Path(temporary)
        os.replace(temporary, destination)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_text(destination: str | Path, text: str) -> Path:
    """Write text atomically."""
    with atomic_path(destination) as temporary:
        temporary.write_text(text)
    return Path(destination)


def write_json(destination: str | Path, data) -> Path:
    """Write JSON (indented, keys sorted) atomically."""
    return write_text(destination, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path):
    """Read a JSON file."""
    return json.loads(Path(path).read_text())


def write_table(destination: str | Path, frame) -> Path:
    """Write a pandas DataFrame atomically as parquet (or CSV when the name ends in .csv)."""
    destination = Path(destination)
    with atomic_path(destination) as temporary:
        if destination.suffix == ".csv":
            frame.to_csv(temporary, index=False)
        else:
            frame.to_parquet(temporary, index=False)
    return destination


def read_table(path: str | Path):
    """Read a table written by ``write_table``."""
    import pandas as pd

    path = Path(path)
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


def stable_hash(value, length: int = 12) -> str:
    """A short hex digest of a JSON-serialisable value (key order does not matter)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def file_hash(path: str | Path, length: int = 12) -> str:
    """A short hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:length]


def normal_modes(folder: str | Path) -> None:
    """Give a folder written through ``tempfile`` (0700/0600) the modes ``open``/``mkdir`` would give."""
    folder = Path(folder)
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, (FILE_MODE | 0o111) if path.is_dir() else FILE_MODE)
