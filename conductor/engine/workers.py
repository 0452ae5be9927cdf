"""One worker thread and bounded queue per plugin: calls to a plugin stay in order, a slow
plugin delays only its own queue, and an overflowing queue drops with a counted warning.

The worker is the only thread that touches its plugin's store after loading.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from conductor.plugins.loader import LoadedPlugin
from conductor.plugins.runtime import CallResult

_log = logging.getLogger("conductor.engine")
QUEUE_CAPACITY = 256


@dataclass(slots=True)
class Job:
    request: bytes
    arrived_ms: float  # monotonic arrival of the MIDI event
    done: Callable[[CallResult, float], None] | None = None  # (result, latency to start in ms)


_STOP = object()


class PluginWorker:
    def __init__(self, loaded: LoadedPlugin, capacity: int = QUEUE_CAPACITY) -> None:
        self.loaded = loaded
        self.name = loaded.plugin.name
        self.dropped = 0
        self._queue: queue.Queue[Job | object] = queue.Queue(maxsize=capacity)
        self._thread = threading.Thread(target=self._run, name=f"plugin-{self.name}", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> bool:
        """Queue a call; False (and a logged, counted drop) when the queue is full."""
        try:
            self._queue.put_nowait(job)
            return True
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                _log.warning(
                    "%s: queue full (%d waiting), dropped %d event(s) so far",
                    self.name,
                    self._queue.maxsize,
                    self.dropped,
                )
            return False

    def _run(self) -> None:
        plugin = self.loaded.plugin
        while True:
            job = self._queue.get()
            if job is _STOP:
                break
            assert isinstance(job, Job)
            latency_ms = time.monotonic() * 1000.0 - job.arrived_ms
            result = plugin.execute(job.request)
            if job.done is not None:
                try:
                    job.done(result, latency_ms)
                except Exception:  # a reporting bug must not stop the plugin's worker
                    _log.exception("%s: result handler failed", self.name)

    def stop(self) -> CallResult:
        """Drain the queue, then shut the plugin down on its own thread's behalf."""
        self._queue.put(_STOP)
        self._thread.join()
        return self.loaded.plugin.shutdown()
