"""SIGTERM and SIGINT (Ctrl-C) stop ``synthmix run`` with its kernel and its llama.cpp server within a few
seconds: exit 143/130 with a one-line message, no process of the run left, nothing in the temp folder,
and the interrupted step not marked complete (so the next run redoes it)."""

from __future__ import annotations

import signal
import time

import pytest

from reliability.harness import Run, params_copy, step_folders


@pytest.mark.parametrize(("signum", "to_group", "exit_code", "workers"), [
    (signal.SIGTERM, False, 143, "1"),  # `kill PID`, or an outer time limit
    (signal.SIGINT, True, 130, "1"),    # Ctrl-C in a terminal: the driver's whole process group
    (signal.SIGINT, True, 130, "2"),    # ... with a process pool: workers, their kernels and servers
], ids=["SIGTERM", "SIGINT", "SIGINT-workers"])
def test_signal_stops_driver_kernel_and_server(tmp_path, signum, to_group, exit_code, workers):
    params = params_copy(tmp_path)
    # no LLM cache: the kernel starts a real server
    run = Run(tmp_path, params, "--only", "generate", "--workers", workers)
    run.wait_until(lambda: run.servers() and run.kernels(), what="the kernel's llama.cpp server to answer")
    time.sleep(1.0)  # a call in flight
    began = time.monotonic()
    run.signal(signum, group=to_group)
    code = run.wait(timeout=30)
    stopped_in = time.monotonic() - began
    left, _ = run.leftovers(within_s=5)
    assert left == [], f"processes left behind after {signum.name}: {left}"
    assert code == exit_code, run.stdout + run.stderr
    assert stopped_in < 10, f"{signum.name}: the driver took {stopped_in:.1f} s to stop"
    message = run.stderr.strip().splitlines()
    assert len(message) == 1 and signum.name in message[0], run.stderr
    assert run.temp_files() == []
    assert not any((folder / "_complete.json").exists() for folder in step_folders(tmp_path / "results", "01_generate"))
