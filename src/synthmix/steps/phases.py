"""Where a step's time goes: wall seconds per named phase, recorded in the step's report."""

from __future__ import annotations

import time
from contextlib import contextmanager


class PhaseTimer:
    """Wall seconds per phase, exclusive: a phase entered inside another pauses the outer one.

    ``with timer("evaluation"): ...`` adds the block's time to ``timer.seconds["evaluation"]``;
    a ``with timer("loading")`` inside a ``with timer("human_fine_tune")`` counts the loading once,
    under loading only, so the phases add up to the time spent inside any of them.
    """

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._stack: list[list] = []  # [phase, started]

    @contextmanager
    def __call__(self, phase: str):
        now = time.perf_counter()
        if self._stack:
            outer = self._stack[-1]
            self.seconds[outer[0]] = self.seconds.get(outer[0], 0.0) + now - outer[1]
        self._stack.append([phase, now])
        try:
            yield
        finally:
            now = time.perf_counter()
            name, started = self._stack.pop()
            self.seconds[name] = self.seconds.get(name, 0.0) + now - started
            if self._stack:
                self._stack[-1][1] = now

    def as_dict(self, digits: int = 3) -> dict[str, float]:
        """The seconds per phase, rounded (for a JSON report)."""
        return {name: round(seconds, digits) for name, seconds in self.seconds.items()}

