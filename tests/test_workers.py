"""A plugin's worker with a real plugin: backoff after failures (by a clock the test moves),
every job settled exactly once, shutdown on the worker's own thread, and abandonment."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor.engine.workers import Job, PluginWorker, Undelivered
from conductor.plugins.limits import Limits
from conductor.plugins.runtime import CallResult, PluginHost
from tests.clock import ManualClock
from tests.plugin_helpers import load_unsigned

FAIL = b'{"fail":1,"context":{}}'
WORK = b'{"work":1,"context":{}}'


class Outcomes:
    """Collects how each job ended; a job settled twice fails the test."""

    def __init__(self) -> None:
        self.ended: dict[int, tuple[str, object]] = {}
        self.changed = threading.Condition()

    def job(self, number: int, request: bytes) -> Job:
        def settle(outcome: tuple[str, object]) -> None:
            with self.changed:
                assert number not in self.ended, f"job {number} settled twice"
                self.ended[number] = outcome
                self.changed.notify_all()

        return Job(
            request,
            0.0,
            lambda result, _latency: settle(("done", result)),
            lambda why, line: settle((why.value, line)),
        )

    def wait(self, number: int, timeout: float = 10) -> tuple[str, object]:
        with self.changed:
            assert self.changed.wait_for(lambda: number in self.ended, timeout), self.ended
            return self.ended[number]


@pytest.fixture
def flaky(host: PluginHost, tmp_path: Path) -> Iterator[tuple[PluginWorker, ManualClock]]:
    clock = ManualClock()
    worker = PluginWorker(load_unsigned(host, "flaky", tmp_path), clock=clock)
    yield worker, clock
    worker.stop()


def run(worker: PluginWorker, outcomes: Outcomes, number: int, request: bytes) -> tuple:
    assert worker.submit(outcomes.job(number, request))
    return outcomes.wait(number)


def test_a_failing_plugin_backs_off_and_a_success_resets_it(
    flaky: tuple[PluginWorker, ManualClock], caplog: pytest.LogCaptureFixture
) -> None:
    worker, clock = flaky
    outcomes = Outcomes()
    kind, result = run(worker, outcomes, 1, FAIL)
    assert kind == "done" and isinstance(result, CallResult) and "trapped" in (result.error or "")
    assert run(worker, outcomes, 2, FAIL)[0] == "done"  # the first failure is retried at once
    kind, line = run(worker, outcomes, 3, WORK)  # now it waits 100 ms: skipped, and said so
    assert kind == "skipped" and line == (
        "flaky: skipped: failed 2 time(s) in a row, next try in 100 ms"
    )
    assert "flaky failed 2 times in a row; next try in 0.1 s" in caplog.text
    clock.advance(0.1)
    assert run(worker, outcomes, 4, FAIL)[0] == "done"
    assert run(worker, outcomes, 5, WORK)[0] == "skipped"  # 200 ms now
    clock.advance(0.2)
    kind, result = run(worker, outcomes, 6, WORK)
    assert kind == "done" and isinstance(result, CallResult) and result.ok
    assert "flaky works again after 3 failure(s) in a row (2 event(s) skipped so far)" in (
        caplog.text
    )
    assert run(worker, outcomes, 7, FAIL)[0] == "done"
    assert run(worker, outcomes, 8, WORK)[0] == "done"  # reset: no wait after one failure
    assert worker.counts == {
        "calls": 6,
        "failed": 4,
        "dropped": 0,
        "skipped": 2,
        "abandoned": 0,
    }


def test_stop_finishes_the_queue_and_calls_shutdown_on_the_worker(
    host: PluginHost, tmp_path: Path
) -> None:
    worker = PluginWorker(load_unsigned(host, "good", tmp_path))
    outcomes = Outcomes()
    for number in range(10):
        assert worker.submit(outcomes.job(number, WORK))
    result = worker.stop()
    assert result is not None and result.error is None and result.code == 0
    assert all(outcomes.ended[n][0] == "done" for n in range(10))
    assert not worker.submit(outcomes.job(10, WORK))  # closed: settled as abandoned
    assert outcomes.wait(10) == ("abandoned", "good: abandoned: stopping")


def test_abandoning_a_stuck_worker_settles_each_job_once(host: PluginHost, tmp_path: Path) -> None:
    stuck = load_unsigned(host, "infinite_loop", tmp_path, Limits(max_fuel=10**15, timeout_ms=400))
    worker = PluginWorker(stuck)
    outcomes = Outcomes()
    for number in range(4):
        assert worker.submit(outcomes.job(number, WORK))
    worker.close()
    assert not worker.join(0.05)
    assert worker.pending() == "infinite_loop (1 running, 3 queued)"
    assert worker.abandon() == 4
    assert {outcomes.wait(n)[0] for n in range(4)} == {Undelivered.ABANDONED.value}
    assert worker.join(5)  # the running call ends at its own deadline; its result is ignored
    assert worker.shutdown_result is None  # abandoned: never shut down
    assert outcomes.ended[0] == ("abandoned", "infinite_loop: abandoned at shutdown")
