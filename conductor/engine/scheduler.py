"""Runs callbacks later on one timer thread, so a Delay never stalls event handling."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

_log = logging.getLogger("conductor.engine")


class Scheduler:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="conductor-scheduler", daemon=True)
        self._thread.start()

    def call_later(self, delay_ms: float, callback: Callable[[], None]) -> None:
        with self._wake:
            heapq.heappush(
                self._heap, (time.monotonic() + delay_ms / 1000.0, next(self._counter), callback)
            )
            self._wake.notify()

    def pending(self) -> int:
        with self._wake:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._wake.wait(timeout)
                if self._stopped:
                    return
                _, _, callback = heapq.heappop(self._heap)
            try:
                callback()
            except Exception:
                _log.exception("scheduled action failed")

    def stop(self, drain: bool) -> None:
        """Stop; with `drain`, first run what is due within the next few seconds."""
        deadline = time.monotonic() + 5
        while drain and self.pending() and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=1)
