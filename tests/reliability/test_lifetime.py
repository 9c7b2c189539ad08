"""synthmix.lifetime on its own (seconds): a watched child and a pool worker die with their parent,
whichever thread started them, and take their own children with them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from reliability.harness import REPO

WATCHED_PARENT = textwrap.dedent("""
    import subprocess, sys, threading, time
    from synthmix.core.lifetime import watched_command
    command = watched_command("http.server", "0", "--bind", "127.0.0.1")
    children = []
    start = lambda: children.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    if sys.argv[1] == "thread":
        worker = threading.Thread(target=start); worker.start(); worker.join()
    else:
        start()
    print(children[0].pid, flush=True)
    time.sleep(120)
""")

POOL_PARENT = textwrap.dedent("""
    import subprocess, time
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context
    from synthmix.core.lifetime import die_with_parent

    def start_grandchild():
        import os
        child = subprocess.Popen(["sleep", "120"])
        return os.getpid(), child.pid

    if __name__ == "__main__":
        pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=die_with_parent)
        worker, grandchild = pool.submit(start_grandchild).result()
        print(worker, grandchild, flush=True)
        time.sleep(120)
""")


def gone_within(pids: list[int], seconds: float) -> bool:
    """True when none of ``pids`` is a living (non-zombie) process within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        time.sleep(0.1)
    for pid in pids:  # leave nothing to other tests
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return False


def start_parent(script: str, *args: str, tmp_path) -> tuple[subprocess.Popen, list[int]]:
    path = tmp_path / "parent.py"
    path.write_text(script)
    parent = subprocess.Popen([sys.executable, str(path), *args], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)  # (a killed pool's resource tracker complains)
    return parent, [int(pid) for pid in parent.stdout.readline().split()]


@pytest.mark.parametrize("started_from", ["main", "thread"])
def test_watched_child_dies_with_its_killed_parent(tmp_path, started_from):
    parent, (child,) = start_parent(WATCHED_PARENT, started_from, tmp_path=tmp_path)
    assert psutil.Process(child).is_running()
    parent.kill()
    parent.wait()
    assert gone_within([child], 3.0), f"the watched child (started from the {started_from} thread) outlived its parent"


def test_pool_worker_and_its_children_die_with_the_driver(tmp_path):
    parent, (worker, grandchild) = start_parent(POOL_PARENT, tmp_path=tmp_path)
    parent.kill()
    parent.wait()
    assert gone_within([worker, grandchild], 5.0), "a pool worker or its child outlived the killed driver"
