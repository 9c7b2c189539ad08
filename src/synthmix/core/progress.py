"""Progress inside a long step, for the driver's progress bar.

A step reports ``done`` of ``total`` through ``report_progress``; when the driver runs the step
it sets ``SYNTHMIX_PROGRESS_FILE`` (a hidden file inside the step's own folder, so two runs never
share one) and draws a bar from that file. Run interactively (no variable set), reporting does
nothing, so the rendered notebook stays free of progress noise.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

ENV = "SYNTHMIX_PROGRESS_FILE"


def report_progress(done: int, total: int, what: str = "") -> None:
    """Record that ``done`` of ``total`` units of the current step are finished."""
    target = os.environ.get(ENV)
    if not target:
        return
    temporary = f"{target}.part"
    Path(temporary).write_text(json.dumps({"done": done, "total": total, "what": what}))
    os.replace(temporary, target)


class ProgressWatcher:
    """Polls a progress file in a thread and mirrors it on a tqdm bar (used by the driver)."""

    def __init__(self, path: str | Path, description: str, interval_s: float = 0.5, position: int = 0):
        self.path = Path(path)
        self.position = position
        self.description = description
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._bar = None
        self._previous: str | None = None

    def _run(self) -> None:
        from tqdm import tqdm

        while not self._stop.wait(self.interval_s):
            try:
                state = json.loads(self.path.read_text())
            except (OSError, ValueError):
                continue
            if self._bar is None:
                self._bar = tqdm(total=state["total"], desc=self.description, leave=False, unit="it",
                                 position=self.position)
            self._bar.total = state["total"]
            self._bar.n = state["done"]
            self._bar.set_postfix_str(state.get("what", ""), refresh=False)
            self._bar.refresh()

    def __enter__(self) -> "ProgressWatcher":
        self._previous = os.environ.get(ENV)
        os.environ[ENV] = str(self.path)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self._previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = self._previous
        if self._bar is not None:
            self._bar.close()
        self.path.unlink(missing_ok=True)
        Path(f"{self.path}.part").unlink(missing_ok=True)
