"""Process lifetime: nothing a study starts outlives it.

A study is a tree of processes: the driver (``synthmix run``), optional worker processes, the
papermill kernels (ipykernel polls its parent and exits when the parent is gone), and the
llama.cpp servers the generation kernels start. Three helpers keep that tree together:

- ``stop_on_signals()``: in the driver, SIGINT and SIGTERM stop every descendant (terminate,
  then kill after a grace period) and raise ``Interrupted``; the CLI exits 130 or 143.
- ``die_with_parent()``: in a worker process (a process-pool initializer), the worker dies when
  its parent does (Linux parent-death signal plus a watchdog thread) and stops its own kernels
  first; SIGTERM does the same; SIGINT is left to the driver.
- ``python -m synthmix.core.lifetime --parent PID MODULE ARGS...``: runs ``python -m MODULE ARGS...``
  in a process that exits as soon as process PID is no longer its parent (how the managed
  llama.cpp server follows the kernel that started it, even when that kernel is killed).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import psutil  # imported up front: a signal handler must not be the one to import it

PR_SET_PDEATHSIG = 1
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(KeyboardInterrupt):
    """The driver got SIGINT or SIGTERM; its descendants are already stopped."""

    def __init__(self, signum: int):
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(self.name)

    @property
    def exit_code(self) -> int:
        """The shell convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


def set_parent_death_signal(signum: int = signal.SIGTERM) -> bool:
    """Ask Linux to send ``signum`` to this process when the thread that started it exits.

    Returns False where that is not available (not Linux); the watchdog covers those cases.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def descendants(pid: int | None = None) -> list:
    """Every living descendant (``psutil.Process``) of process ``pid`` (default: this process)."""
    try:
        return psutil.Process(pid or os.getpid()).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def stop_processes(processes: list, grace_s: float = 3.0) -> int:
    """Terminate ``processes``, kill those still alive after ``grace_s``; return how many were stopped."""
    for process in processes:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(processes, timeout=grace_s)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace_s)
    return len(processes)


#: Helpers of ``multiprocessing`` that clean up after this process and end with it on their own.
SPARED = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def stop_descendants(grace_s: float = 3.0) -> int:
    """Stop every descendant of this process (kernels, workers, servers; not ``SPARED`` helpers);
    return how many there were."""
    def spared(process) -> bool:
        try:
            return any(helper in part for part in process.cmdline() for helper in SPARED)
        except psutil.Error:
            return True  # gone already

    return stop_processes([p for p in descendants() if not spared(p)], grace_s)


def watch_parent(on_orphan, parent_pid: int | None = None, interval_s: float = 0.5) -> threading.Thread:
    """Start a daemon thread that calls ``on_orphan()`` once ``parent_pid`` is no longer this process's parent."""
    parent = parent_pid or os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        on_orphan()

    thread = threading.Thread(target=watch, name="synthmix-parent-watchdog", daemon=True)
    thread.start()
    return thread


_stopping = threading.Lock()


def _stop_everything_and_exit(code: int) -> None:
    if not _stopping.acquire(blocking=False):  # the watchdog and a signal both fired: one stops, one exits
        return
    try:
        stop_descendants(grace_s=2.0)
    finally:
        os._exit(code)


def die_with_parent() -> None:
    """Make this worker process follow its parent: it stops its descendants and exits when the
    parent dies or when it gets SIGTERM. SIGINT is ignored (the driver stops its workers).

    Meant as ``ProcessPoolExecutor(initializer=die_with_parent)``.
    """
    parent = os.getppid()
    set_parent_death_signal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: _stop_everything_and_exit(EXIT_CODES[signal.SIGTERM]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.getppid() != parent:  # the parent died before the death signal was armed
        _stop_everything_and_exit(1)
    watch_parent(lambda: _stop_everything_and_exit(1), parent)
    from multiprocessing import util

    # a worker can also end on its own when the parent's pipe closes first: its children go with it
    util.Finalize(None, stop_descendants, kwargs={"grace_s": 2.0}, exitpriority=100)


@contextmanager
def stop_on_signals(grace_s: float = 3.0, hard_exit_s: float = 15.0) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM stop every descendant and raise ``Interrupted``.

    The first signal terminates the descendants (kill after ``grace_s``) and raises in the main
    thread; if unwinding takes more than ``hard_exit_s``, the process exits anyway. A second signal
    exits at once. Previous handlers are restored on leaving the block.
    """
    received: list[int] = []
    timers: list[threading.Timer] = []

    def handle(signum, _frame):
        code = EXIT_CODES.get(signum, 128 + signum)
        if received:  # a second Ctrl-C: no more waiting
            stop_processes(descendants(), grace_s=0.5)
            os._exit(code)
        received.append(signum)
        timers.append(threading.Timer(hard_exit_s, lambda: os._exit(code)))
        timers[0].daemon = True
        timers[0].start()
        stop_descendants(grace_s)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for timer in timers:  # unwound in time
            timer.cancel()


def run_module_watched(argv: list[str]) -> None:
    """``--parent PID [--death-signal] MODULE ARGS...``: run ``python -m MODULE ARGS...`` in this
    process and exit as soon as PID stops being its parent.

    ``--death-signal`` also arms the Linux parent-death signal (instant, but tied to the parent's
    thread that started this process: use it only when that is the parent's main thread).
    """
    import runpy

    if len(argv) < 3 or argv[0] != "--parent":
        raise SystemExit("usage: python -m synthmix.core.lifetime --parent PID [--death-signal] MODULE [ARGS...]")
    parent, rest = int(argv[1]), argv[2:]
    if rest and rest[0] == "--death-signal":
        set_parent_death_signal(signal.SIGKILL)
        rest = rest[1:]
    if not rest:
        raise SystemExit("python -m synthmix.core.lifetime: no module to run")
    if os.getppid() != parent:  # the parent died before the watch began
        os._exit(1)
    watch_parent(lambda: os._exit(1), parent, interval_s=0.25)
    sys.argv = list(rest)
    runpy.run_module(rest[0], run_name="__main__", alter_sys=True)


def watched_command(module: str, *arguments: str) -> list[str]:
    """The command line that runs ``python -m module arguments...`` as a child that dies with this process."""
    flags = ["--death-signal"] if threading.current_thread() is threading.main_thread() else []
    return [sys.executable, "-m", "synthmix.core.lifetime", "--parent", str(os.getpid()), *flags, module, *arguments]


if __name__ == "__main__":
    run_module_watched(sys.argv[1:])
