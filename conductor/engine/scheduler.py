"""Runs callbacks later on one timer thread, so a Delay never stalls event handling.

Time comes from an injectable clock: `run_due()` runs what the clock says is due, so tests drive
a scheduler with a clock of their own and never sleep; `start()` adds the thread that calls it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

from conductor._timing import Clock

_log = logging.getLogger("conductor.engine")


class Scheduler:
    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._running = 0  # callbacks running now: still work to wait for at shutdown

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="conductor-scheduler", daemon=True)
        self._thread.start()

    def call_later(self, delay_ms: float, callback: Callable[[], None]) -> None:
        with self._wake:
            heapq.heappush(
                self._heap, (self.clock() + delay_ms / 1000.0, next(self._counter), callback)
            )
            self._wake.notify()

    def pending(self, before: float | None = None) -> int:
        """How many callbacks wait (only those due before `before`, on the clock, if given)."""
        with self._wake:
            if before is None:
                return len(self._heap) + self._running
            return sum(1 for due, _, _ in self._heap if due <= before) + self._running

    def run_due(self) -> int:
        """Run every callback whose time has come (outside the lock); how many ran."""
        ran = 0
        while True:
            with self._wake:
                if self._stopped or not self._heap or self._heap[0][0] > self.clock():
                    return ran
                _, _, callback = heapq.heappop(self._heap)
                self._running += 1
            try:
                callback()
            except Exception:
                _log.exception("scheduled action failed")
            finally:
                with self._wake:
                    self._running -= 1
            ran += 1

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._heap or self._heap[0][0] > self.clock()):
                    timeout = self._heap[0][0] - self.clock() if self._heap else None
                    self._wake.wait(timeout)
                if self._stopped:
                    return
            self.run_due()

    def stop(self) -> int:
        """Stop; callbacks not yet run are abandoned. Returns how many were."""
        with self._wake:
            abandoned = len(self._heap)
            self._heap.clear()
            self._stopped = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=1)
        return abandoned
