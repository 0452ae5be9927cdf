"""Judging conditions by a clock and desktop answers the test gives: time ranges (crossing
midnight, both ends included), days, modes, And/Or/Not stopping at the first deciding answer,
and questions the desktop cannot answer counting as false with one warning per run."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest

from conductor.desktop import DesktopError, DesktopFailure, Unknown
from conductor.engine import conditions as cnd

MONDAY_0830 = datetime(2024, 1, 1, 8, 30)  # 2024-01-01 was a Monday


def judged(condition: cnd.Condition, now: datetime = MONDAY_0830, mode: str = "Default") -> bool:
    def ask(question: cnd.Condition) -> bool:
        raise AssertionError(f"the desktop was asked {question}")

    return cnd.holds(condition, mode, now, ask)


def at(hour: int, minute: int) -> datetime:
    return MONDAY_0830.replace(hour=hour, minute=minute)


def test_time_ranges_include_both_ends_and_cross_midnight() -> None:
    office = cnd.TimeRange(9 * 60, 17 * 60)
    assert [judged(office, at(h, m)) for h, m in ((8, 59), (9, 0), (17, 0), (17, 1))] == [
        False,
        True,
        True,
        False,
    ]
    night = cnd.TimeRange(22 * 60, 6 * 60)
    assert [judged(night, at(h, m)) for h, m in ((21, 59), (22, 0), (0, 0), (6, 0), (6, 1))] == [
        False,
        True,
        True,
        True,
        False,
    ]
    assert judged(cnd.TimeRange(8 * 60 + 30, 8 * 60 + 30), at(8, 30))


def test_days_of_week_count_from_monday() -> None:
    assert judged(cnd.DayOfWeek((1,)), MONDAY_0830)
    assert not judged(cnd.DayOfWeek((2, 3, 4, 5, 6, 7)), MONDAY_0830)
    assert judged(cnd.DayOfWeek((7,)), datetime(2024, 1, 7, 12, 0))  # a Sunday
    assert not judged(cnd.DayOfWeek(()), MONDAY_0830)


def test_modes_and_logic() -> None:
    assert judged(cnd.ModeIs("Live"), mode="Live")
    assert not judged(cnd.ModeIs("Live"), mode="live")  # exact, as the reference
    assert judged(cnd.And(()))  # as the reference: all() of nothing
    assert not judged(cnd.Or(()))
    assert judged(cnd.Not(cnd.Never()))
    assert judged(cnd.Or((cnd.Never(), cnd.And((cnd.Always(), cnd.ModeIs("Default"))))))


def test_and_or_stop_at_the_first_deciding_answer() -> None:
    asked: list[str] = []

    def ask(question: cnd.Condition) -> bool:
        assert isinstance(question, (cnd.AppRunning, cnd.AppFrontmost))
        asked.append(question.app_name)
        return question.app_name == "yes"

    running = cnd.AppRunning
    assert not cnd.holds(cnd.And((running("no"), running("never-asked"))), "M", MONDAY_0830, ask)
    assert cnd.holds(cnd.Or((running("yes"), running("never-asked"))), "M", MONDAY_0830, ask)
    assert cnd.holds(cnd.And((cnd.Always(), cnd.AppFrontmost("yes"))), "M", MONDAY_0830, ask)
    assert asked == ["no", "yes", "yes"]


def test_what_the_desktop_cannot_answer_is_false_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(name: str) -> bool:
        raise DesktopError(
            DesktopFailure.UNSUPPORTED, "app_running: no backend tool available here"
        )

    judge = cnd.Judge(
        local_now=lambda: MONDAY_0830,
        running=broken,
        frontmost=lambda name: Unknown("the frontmost application cannot be known under Wayland"),
    )
    with caplog.at_level(logging.WARNING, "conductor.engine"):
        for _ in range(3):
            assert not judge.holds(cnd.AppFrontmost("Safari"), "Default")
            assert judge.holds(cnd.Not(cnd.AppFrontmost("Safari")), "Default")
            assert not judge.holds(cnd.AppRunning("Safari"), "Default")
    assert [record.getMessage() for record in caplog.records] == [
        "AppFrontmost: the frontmost application cannot be known under Wayland; such "
        "conditions count as false (said once per run)",
        "AppRunning: app_running: no backend tool available here; such conditions count as "
        "false (said once per run)",
    ]


def test_the_judge_asks_the_desktop_and_reads_its_clock() -> None:
    judge = cnd.Judge(
        local_now=lambda: at(23, 0),
        running=lambda name: name == "Logic Pro",
        frontmost=lambda name: name == "Safari",
    )
    night_in_logic = cnd.And((cnd.TimeRange(22 * 60, 6 * 60), cnd.AppRunning("Logic Pro")))
    assert judge.holds(night_in_logic, "Default")
    assert not judge.holds(cnd.AppFrontmost("Logic Pro"), "Default")
