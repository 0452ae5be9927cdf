"""Advances the engine's epoch from the monotonic clock, so wall-clock deadlines hold.

Counting one tick per wake-up drifts late (sleeps overshoot); counting ticks the clock says have
elapsed does not.
"""

from __future__ import annotations

import math
import threading
import time

import wasmtime


class EpochTicker:
    """A thread that advances `engine`'s epoch every `tick_ms`, until `stop()`."""

    def __init__(self, engine: wasmtime.Engine, tick_ms: float) -> None:
        self.engine = engine
        self.tick_s = tick_ms / 1000.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="conductor-epoch", daemon=True)
        self._thread.start()

    def ticks_for(self, timeout_ms: int) -> int:
        """Epoch ticks that cover `timeout_ms`, plus one for the tick already in progress."""
        return math.ceil(timeout_ms / 1000.0 / self.tick_s) + 1

    def _run(self) -> None:
        start = time.monotonic()
        issued = 0
        while not self._stop.wait(self.tick_s):
            due = int((time.monotonic() - start) / self.tick_s)
            while issued < due:
                self.engine.increment_epoch()
                issued += 1

    def stop(self) -> None:
        """Stop and wait for the thread (at most one tick), so the engine can be freed after.
        Idempotent."""
        self._stop.set()
        self._thread.join()
