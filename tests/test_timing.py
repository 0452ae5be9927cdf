"""Time as a value: the backoff rule and the scheduler, driven by a clock the test moves."""

from __future__ import annotations

from conductor._timing import Backoff
from conductor.engine.scheduler import Scheduler
from tests.clock import ManualClock


def test_backoff_retries_once_at_once_then_doubles_to_its_cap_and_resets() -> None:
    clock = ManualClock()
    backoff = Backoff(0.1, 30.0, clock)
    assert backoff.ready()
    waits = [backoff.failed() for _ in range(12)]
    assert waits[:5] == [0.0, 0.1, 0.2, 0.4, 0.8]
    assert waits[-1] == 30.0 and max(waits) == 30.0
    assert not backoff.ready() and backoff.remaining_s() == 30.0
    clock.advance(29.9)
    assert not backoff.ready()
    clock.advance(0.1)
    assert backoff.ready()
    backoff.succeeded()
    assert backoff.failed() == 0.0 and backoff.ready()


def test_backoff_survives_endless_failures() -> None:
    backoff = Backoff(0.1, 30.0, ManualClock())
    for _ in range(5000):
        wait = backoff.failed()
    assert wait == 30.0


def test_scheduler_runs_what_its_clock_says_is_due_in_order() -> None:
    clock = ManualClock()
    scheduler = Scheduler(clock)
    ran: list[str] = []
    scheduler.call_later(300, lambda: ran.append("late"))
    scheduler.call_later(100, lambda: ran.append("early"))
    scheduler.call_later(100, lambda: ran.append("early, second"))
    assert scheduler.run_due() == 0 and scheduler.pending() == 3
    clock.advance(0.1)
    assert scheduler.run_due() == 2 and ran == ["early", "early, second"]
    assert scheduler.pending(before=clock() + 0.1) == 0
    assert scheduler.pending(before=clock() + 0.2) == 1
    clock.advance(0.2)
    assert scheduler.run_due() == 1 and ran[-1] == "late"


def test_a_failing_callback_does_not_stop_the_others() -> None:
    clock = ManualClock()
    scheduler = Scheduler(clock)
    ran: list[int] = []
    scheduler.call_later(0, lambda: 1 / 0)
    scheduler.call_later(0, lambda: ran.append(1))
    assert scheduler.run_due() == 2 and ran == [1]


def test_stopping_abandons_what_has_not_run_and_says_how_many() -> None:
    clock = ManualClock()
    scheduler = Scheduler(clock)
    scheduler.start()
    ran: list[int] = []
    for delay in (1000, 2000):
        scheduler.call_later(delay, lambda: ran.append(1))
    assert scheduler.stop() == 2
    assert ran == [] and scheduler.pending() == 0
