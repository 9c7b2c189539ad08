"""Crash recovery: the driver killed with SIGKILL inside every kind of step (a live llama.cpp server in
generation), each time leaving no process and no temp file behind, and a final rerun ends with a
summary.csv identical (metric columns) to an uninterrupted run's."""

from __future__ import annotations

import re
import signal
import time

import pandas as pd

from reliability.harness import Run, copy_run, metric_columns, params_copy

#: (step kind, seconds to let the step work after its kernel is up); generation waits for its server.
KILL_POINTS = (("generate", 1.0), ("filter", 0.5), ("train_teacher", 6.0), ("distill", 3.0), ("analyze", 2.0))
KINDS = [kind for kind, _ in KILL_POINTS]
STARTED = re.compile(r"^(?:\[\d+/\d+\]|\s*start)\s+(\w+)\s", re.MULTILINE)


def running_kind(run: Run) -> str | None:
    """The kind of the step the driver last said it started."""
    started = STARTED.findall(run.stdout)
    return started[-1] if started else None


def test_killed_in_every_step_kind_reruns_to_identical_summary(finished_smoke, tmp_path):
    # the base-teacher cache is kept (it holds a deterministic fine-tune); the LLM cache and every step are not
    root = copy_run(finished_smoke, tmp_path / "killed", without=("results/smoke", "results/llm_cache.sqlite",
                                                                  "results/index.html"))
    params = params_copy(root)
    kills = []
    for kind, settle_s in KILL_POINTS:
        run = Run(root, params)
        if kind == "generate":
            run.wait_until(lambda: run.servers(), what="the generation step's llama.cpp server")
        else:  # a short step may be over before it is seen: then the kill lands in a later one
            run.wait_until(lambda: running_kind(run) in KINDS[KINDS.index(kind):] and run.kernels(),
                           what=f"a {kind} step's kernel")
        time.sleep(settle_s)
        killed_in = running_kind(run)
        run.signal(signal.SIGKILL)
        run.wait(timeout=30)
        left, gone_in = run.leftovers(within_s=10)
        assert left == [], f"killed in {kind}: processes left behind: {left}"
        assert run.temp_files() == [], f"killed in {kind}: temp files left behind"
        kills.append((killed_in, round(gone_in, 1)))
    final = Run(root, params)
    assert final.wait() == 0, final.stdout + final.stderr
    assert final.leftovers(within_s=5)[0] == []
    rerun = pd.read_csv(root / "results" / "smoke" / "summary.csv")
    reference = pd.read_csv(finished_smoke / "results" / "smoke" / "summary.csv")
    pd.testing.assert_frame_equal(metric_columns(rerun), metric_columns(reference), check_exact=True)
    print(f"kills (step kind, seconds until the run's last process was gone): {kills}; rerun identical")
