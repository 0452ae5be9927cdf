"""Worker threads with bounded queues: one per plugin, and those that run native actions. Work
on one worker stays in order; a slow or failing worker delays only its own queue.

Every job ends in exactly one way, reported to its owner: done (with its result) or undelivered
— dropped (a live queue was full), skipped (the plugin is backing off after failing) or abandoned
(shutdown ran out of time). A plugin whose calls fail (trap, limit) is re-instantiated with
backoff; while it waits, its events are skipped and counted rather than queued, so it never
holds up the input. A plugin's worker is the only thread that touches its store after loading,
`shutdown` included.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from conductor._timing import Backoff, Clock
from conductor.plugins.loader import LoadedPlugin
from conductor.plugins.runtime import CallResult

_log = logging.getLogger("conductor.engine")
QUEUE_CAPACITY = 1024  # half a second of events at 2,000/s: rides out a stalled moment upstream
RETRY_FIRST_S, RETRY_MAX_S = 0.1, 30.0  # backoff of a failing plugin (SPEC §10)
SUBMIT_POLL_S = 0.05  # a waiting submit re-checks its stop event this often


class Undelivered(StrEnum):
    DROPPED = "dropped"  # live input, queue full
    SKIPPED = "skipped"  # the plugin is backing off after failures
    ABANDONED = "abandoned"  # shutdown ran out of time, or stopped a waiting replay


@dataclass(slots=True, eq=False)
class Job:
    """A plugin call."""

    request: bytes
    arrived_ms: float  # monotonic arrival of the MIDI event
    done: Callable[[CallResult, float], None]  # (result, latency to start in ms)
    undelivered: Callable[[Undelivered, str], None]  # (why, a line saying so)
    settled: bool = False


@dataclass(slots=True, eq=False)
class Task:
    """Native work: `perform` runs on the worker, then `report` gets its outcome and the
    latency to start in ms (unless shutdown abandoned the task meanwhile)."""

    perform: Callable[[], Any]
    report: Callable[[Any, float], None]
    undelivered: Callable[[Undelivered, str], None]
    arrived_ms: float
    settled: bool = False


class _Settles(Protocol):
    """What a worker needs of any job: whether it is settled, and how to say it never ran."""

    settled: bool

    @property
    def undelivered(self) -> Callable[[Undelivered, str], None]: ...


J = TypeVar("J", bound=_Settles)


class Worker(abc.ABC, Generic[J]):
    """One thread serving one bounded queue, in order."""

    kind = "worker"  # names the thread

    def __init__(self, name: str, capacity: int = QUEUE_CAPACITY, clock: Clock = time.monotonic):
        self.name = name
        self.clock = clock
        self.capacity = capacity
        self.counts = {"calls": 0, "failed": 0, **{kind.value: 0 for kind in Undelivered}}
        self._jobs: deque[J] = deque()
        self._lock = threading.Condition()
        self._running: J | None = None
        self._in_shutdown = False
        self._closing = False
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name=f"{self.kind}-{name}", daemon=True)
        self._thread.start()

    # -- the engine's side -------------------------------------------------------------------

    def submit(self, job: J, stop: threading.Event | None = None) -> bool:
        """Queue a job. Without `stop` (live input) a full queue drops it; with `stop` (a replay,
        which can wait) it waits for room until `stop` is set. False when not queued: the job
        has then been settled as undelivered."""
        with self._lock:
            while True:
                if self._closing:
                    why, line = Undelivered.ABANDONED, "abandoned: stopping"
                    break
                if len(self._jobs) < self.capacity:
                    self._jobs.append(job)
                    self._lock.notify_all()
                    return True
                if stop is None:
                    why, line = Undelivered.DROPPED, f"queue full ({self.capacity}), dropped"
                    break
                if stop.is_set():  # a waiting replay gives up when the engine stops
                    why, line = Undelivered.ABANDONED, "abandoned: stopping"
                    break
                self._lock.wait(SUBMIT_POLL_S)
        self._undeliver(job, why, line)
        return False

    def resume(self, jobs: list[J]) -> None:
        """Queue jobs that continue an event already taken in (what a condition decided). They
        go past the capacity and never wait, so a worker continuing an event never waits for
        its own queue; from this worker's own thread they go ahead of what is queued, in order,
        so they keep their place before later events' jobs."""
        with self._lock:
            if not self._closing:
                if threading.current_thread() is self._thread:
                    self._jobs.extendleft(reversed(jobs))
                else:
                    self._jobs.extend(jobs)
                self._lock.notify_all()
                return
        for job in jobs:
            self._undeliver(job, Undelivered.ABANDONED, "abandoned: stopping")

    def pending(self) -> str | None:
        """What this worker still has to do, for the shutdown message; None when idle."""
        with self._lock:
            if self._in_shutdown:
                return f"{self.name} (in its shutdown call)"
            running = self._running is not None
            if not running and not self._jobs:
                return None
            return f"{self.name} ({int(running)} running, {len(self._jobs)} queued)"

    def close(self) -> None:
        """Take no more jobs; the thread finishes the queue, then its own shutdown."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()

    def join(self, timeout: float | None) -> bool:
        """Wait for the thread to finish (queue done, shutdown called); True if it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def abandon(self) -> int:
        """Give up on this worker (the shutdown budget is spent): settle its queued and running
        jobs as abandoned and leave its thread, a daemon, to the process exit. How many jobs."""
        with self._lock:
            self._abandoned = self._closing = True
            jobs = [*([self._running] if self._running else []), *self._jobs]
            self._jobs.clear()
            self._lock.notify_all()
        for job in jobs:
            self._undeliver(job, Undelivered.ABANDONED, "abandoned at shutdown")
        return len(jobs)

    # -- the worker thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._jobs and not self._closing:
                    self._lock.wait()
                if self._abandoned:
                    return
                if not self._jobs:
                    self._in_shutdown = True
                    break
                job = self._running = self._jobs.popleft()
                self._lock.notify_all()  # room for a submit that waits
            self._serve(job)
            with self._lock:
                self._running = None
        self._finish()
        with self._lock:
            self._in_shutdown = False

    @abc.abstractmethod
    def _serve(self, job: J) -> None:
        """Do one job and report it (once `_claim` allows)."""

    def _finish(self) -> None:
        """What the thread does after its last job."""

    def _latency_ms(self, arrived_ms: float) -> float:
        return self.clock() * 1000.0 - arrived_ms

    def _claim(self, job: J) -> bool:
        """True once per job: whoever settles it first (the thread, or `abandon`) reports it."""
        with self._lock:
            if job.settled:
                return False
            job.settled = True
            return True

    def _undeliver(self, job: J, why: Undelivered, line: str) -> None:
        with self._lock:
            if job.settled:
                return
            job.settled = True
            self.counts[why] += 1
            count = self.counts[why]
        if why is not Undelivered.ABANDONED and (count == 1 or count % 100 == 0):
            _log.warning("%s: %s; %d event(s) %s so far", self.name, line, count, why.value)
        try:
            job.undelivered(why, f"{self.name}: {line}")
        except Exception:
            _log.exception("%s: result handler failed", self.name)


class PluginWorker(Worker[Job]):
    """Calls one loaded plugin, with backoff after failures."""

    kind = "plugin"

    def __init__(
        self, loaded: LoadedPlugin, capacity: int = QUEUE_CAPACITY, clock: Clock = time.monotonic
    ) -> None:
        self.loaded = loaded
        self.backoff = Backoff(RETRY_FIRST_S, RETRY_MAX_S, clock)
        self.shutdown_result: CallResult | None = None
        super().__init__(loaded.plugin.name, capacity, clock)

    def stop(self) -> CallResult | None:
        """Finish the queue and shut the plugin down (a plugin retired by a reload)."""
        self.close()
        self.join(None)
        return self.shutdown_result

    def _finish(self) -> None:
        self.shutdown_result = self.loaded.plugin.shutdown()

    def _serve(self, job: Job) -> None:
        if not self.backoff.ready():
            self._undeliver(
                job,
                Undelivered.SKIPPED,
                f"skipped: failed {self.backoff.failures} time(s) in a row, "
                f"next try in {self.backoff.remaining_s() * 1000:.0f} ms",
            )
            return
        latency_ms = self._latency_ms(job.arrived_ms)
        result = self.loaded.plugin.execute(job.request)
        self.counts["calls"] += 1
        if result.error is not None:  # a fault (trap, limit, broken ABI), not a plugin's code
            self.counts["failed"] += 1
            wait = self.backoff.failed()
            if wait:
                _log.warning(
                    "%s failed %d times in a row; next try in %.1f s, its events meanwhile are "
                    "skipped (%s)",
                    self.name,
                    self.backoff.failures,
                    wait,
                    result.error,
                )
        elif self.backoff.failures:
            _log.warning(
                "%s works again after %d failure(s) in a row (%d event(s) skipped so far)",
                self.name,
                self.backoff.failures,
                self.counts[Undelivered.SKIPPED],
            )
            self.backoff.succeeded()
        if self._claim(job):
            try:
                job.done(result, latency_ms)
            except Exception:  # a reporting bug must not stop the plugin's worker
                _log.exception("%s: result handler failed", self.name)


class ActionWorker(Worker[Task]):
    """Runs native actions (keystrokes, shell commands, condition checks) in order."""

    kind = "actions"

    def stop(self) -> None:
        self.close()
        self.join(None)

    def _serve(self, task: Task) -> None:
        latency_ms = self._latency_ms(task.arrived_ms)
        self.counts["calls"] += 1
        try:
            outcome = task.perform()
        except Exception:  # a bug in one action must not stop the others queued here
            _log.exception("%s: action failed", self.name)
            self.counts["failed"] += 1
            if self._claim(task):
                task.undelivered(Undelivered.ABANDONED, f"{self.name}: failed unexpectedly")
            return
        if isinstance(outcome, CallResult) and not outcome.ok:
            self.counts["failed"] += 1
        if self._claim(task):
            try:
                task.report(outcome, latency_ms)
            except Exception:
                _log.exception("%s: result handler failed", self.name)
