"""The reliability suite's harness: a copy of the smoke params, and a driver that can be
signalled, with every process it started (kernels, workers, llama.cpp servers) found afterwards by
an environment marker they all inherit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
MARKER_VARIABLE = "SYNTHMIX_RELIABILITY_RUN"
#: Words in the names of summary.csv columns that measure time or speed (they differ between identical runs).
TIMING_WORDS = ("second", "latency", "speedup")


def params_copy(root: Path, name: str = "smoke.yaml", **generation) -> Path:
    """The smoke params copied into ``root`` (generation keys overridden by ``generation``)."""
    import yaml

    data = yaml.safe_load((REPO / "params" / "smoke.yaml").read_text())
    data["generation"].update(generation)
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class Run:
    """One ``synthmix run`` in a subprocess (its own session, so a group signal reaches only it)."""

    def __init__(self, root: Path, params: Path, *extra: str, env: dict | None = None):
        self.root, self.marker = root, uuid.uuid4().hex
        self.tmp = root / f"tmp-{self.marker[:8]}"
        self.tmp.mkdir()
        self.stdout_path, self.stderr_path = self.tmp.with_suffix(".out"), self.tmp.with_suffix(".err")
        command = [sys.executable, "-m", "synthmix", "run", str(params), "--results", str(root / "results"),
                   "--no-progress", *extra]
        environment = {**os.environ, "TMPDIR": str(self.tmp), MARKER_VARIABLE: self.marker, **(env or {})}
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            self.process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=err, env=environment,
                                            start_new_session=True)

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait(self, timeout: float = 600) -> int:
        """Wait for the driver to exit; its exit status."""
        return self.process.wait(timeout=timeout)

    def processes(self) -> list[psutil.Process]:
        """Every living process of this run but the driver itself (found by the environment marker)."""
        found = []
        for process in psutil.process_iter(["pid", "status"]):
            if process.pid == self.process.pid or process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            try:
                if process.environ().get(MARKER_VARIABLE) == self.marker:
                    found.append(process)
            except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
        return found

    def servers(self) -> list[psutil.Process]:
        """The run's llama.cpp server processes."""
        return [p for p in self.processes() if "llama_cpp.server" in " ".join(_cmdline(p))]

    def kernels(self) -> list[psutil.Process]:
        """The run's ipykernel processes."""
        return [p for p in self.processes() if "ipykernel" in " ".join(_cmdline(p))]

    def wait_until(self, condition, timeout: float = 300, what: str = "") -> None:
        """Poll ``condition()`` until true; fail (with the run's output) if the run ends or time runs out first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.process.poll() is not None:
                pytest.fail(f"the run ended (code {self.process.returncode}) before {what}:\n{self.stdout}\n{self.stderr}")
            time.sleep(0.2)
        pytest.fail(f"timed out waiting for {what}:\n{self.stdout}\n{self.stderr}")

    def signal(self, signum: int, group: bool = False) -> None:
        """Send ``signum`` to the driver (``group``: to its whole process group, as Ctrl-C in a terminal does)."""
        if group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)

    def leftovers(self, within_s: float = 10.0) -> tuple[list[str], float]:
        """After the driver ended: the run's processes still alive ``within_s`` later (command lines), and
        the seconds it took for the last one to go."""
        began = time.monotonic()
        while time.monotonic() - began < within_s:
            alive = self.processes()
            if not alive:
                return [], time.monotonic() - began
            time.sleep(0.2)
        left = [" ".join(_cmdline(p))[:160] for p in self.processes()]
        for process in self.processes():  # do not leave them to other tests
            process.kill()
        return left, time.monotonic() - began

    def temp_files(self) -> list[str]:
        """synthmix files the run left in its temp folder."""
        return sorted(p.name for p in self.tmp.iterdir() if p.name.startswith("synthmix"))


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []


def metric_columns(summary: pd.DataFrame) -> pd.DataFrame:
    """The columns of summary.csv that are results, not timings."""
    keep = [c for c in summary.columns
            if not (any(word in c.lower() for word in TIMING_WORDS) or c.endswith(("_s", "_ms")))]
    return summary[keep]


def step_folders(results: Path, kind_folder: str) -> list[Path]:
    """The step folders of one kind (e.g. '01_generate') of the smoke study under ``results``."""
    return sorted(p for p in (results / "smoke" / kind_folder).glob("*") if p.is_dir())


def copy_run(finished: Path, target: Path, without: tuple[str, ...] = ()) -> Path:
    """A copy of the finished run in ``target``, leaving out ``without`` (paths relative to the root)."""
    shutil.copytree(finished, target, ignore=shutil.ignore_patterns("tmp-*"))
    for relative in without:
        path = target / relative
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    return target
