"""What a step runs on: a snapshot of the study's resolved parameters, taken when the run is planned.

A step's kernel reads its params from ``<study>/_params/params-<sha>.yaml``, written from the
``StudyParams`` the driver validated, never from the params file itself: an edit to that file while
a study runs cannot reach a step planned before it, and the marker of every step records the sha256
of the snapshot it ran on. Paths in the snapshot (the dataset and the rubric) are written relative to
the snapshot's folder, so they resolve exactly as the params file's relative paths did, and no
absolute path of this machine is written.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import yaml

from synthmix.params import StudyParams, resolve_relative

SNAPSHOT_DIR = "_params"  # inside the study folder (no step marker in it, so the analysis never reads it)


def _path_value(text: str | None, params_path: Path, snapshot_dir: Path) -> str | None:
    """A path of the params file (relative to it) rewritten relative to the snapshot folder; ``embedded:``,
    ``hf:`` and empty values unchanged; the ``semeval:`` prefix kept."""
    if not text or text.startswith(("embedded:", "hf:")):
        return text
    prefix, path = ("semeval:", text.split(":", 1)[1]) if text.startswith("semeval:") else ("", text)
    return prefix + os.path.relpath(resolve_relative(path, params_path), snapshot_dir)


def snapshot_text(params: StudyParams, params_path: str | Path, snapshot_dir: str | Path) -> str:
    """The YAML of a params snapshot stored in ``snapshot_dir``: every key resolved (defaults filled in),
    the dataset source and rubric relative to ``snapshot_dir``."""
    params_path, snapshot_dir = Path(params_path).resolve(), Path(snapshot_dir).resolve()
    data = params.model_dump(mode="json")
    data["dataset"]["source"] = _path_value(params.dataset.source, params_path, snapshot_dir)
    data["dataset"]["rubric"] = _path_value(params.dataset.rubric, params_path, snapshot_dir)
    header = (f"# The parameters this study's steps ran on: a snapshot of {params_path.name} taken when the run was\n"
              "# planned (written by synthmix; editing the params file later does not change it). Paths are relative\n"
              "# to this file.\n")
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def snapshot_path(study_dir: str | Path, text: str) -> Path:
    """Where a snapshot of ``text`` lives: ``<study>/_params/params-<sha256[:16]>.yaml`` (content-addressed,
    so runs planned from the same parameters share one file)."""
    return Path(study_dir) / SNAPSHOT_DIR / f"params-{text_sha256(text)[:16]}.yaml"


def text_sha256(text: str) -> str:
    """sha256 (hex) of a snapshot's text: what a step's marker records as ``params_sha256``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
