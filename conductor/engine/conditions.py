"""The conditions of a `Conditional` action (the reference's): what they are, how a config spells
them, and how they are judged when the action runs.

A condition is written as a bare string (`"Always"`), as a table with `type`
(`{ type = "TimeRange", start = "22:00", end = "06:00" }`) or as `{ TimeRange = { … } }`.
Judging is pure apart from two questions put to the desktop (is an application running, is it in
front); the wall clock and those answers are injected, so every rule is tested without waiting.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from conductor import desktop
from conductor.engine._fields import Fields, describe, tagged
from conductor.errors import ConfigError

_log = logging.getLogger("conductor.engine")
PROBE_TIMEOUT_S = 2.0  # for one question to the desktop (xprop answers in tens of ms)


@dataclass(frozen=True)
class Always:
    pass


@dataclass(frozen=True)
class Never:
    pass


@dataclass(frozen=True)
class TimeRange:
    """From `start` to `end` minutes after midnight, both included; crosses midnight when
    `end` is earlier than `start` (22:00-06:00)."""

    start: int
    end: int


@dataclass(frozen=True)
class DayOfWeek:
    days: tuple[int, ...]  # 1 Monday … 7 Sunday


@dataclass(frozen=True)
class AppRunning:
    app_name: str


@dataclass(frozen=True)
class AppFrontmost:
    app_name: str


@dataclass(frozen=True)
class ModeIs:
    mode: str


@dataclass(frozen=True)
class And:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    condition: Condition


Condition = (
    Always | Never | TimeRange | DayOfWeek | AppRunning | AppFrontmost | ModeIs | And | Or | Not
)
CONDITION_KINDS = (
    "Always",
    "Never",
    "TimeRange",
    "DayOfWeek",
    "AppRunning",
    "AppFrontmost",
    "ModeIs",
    "And",
    "Or",
    "Not",
)
_CLOCK_TIME = re.compile(r"(\d{1,2}):(\d{2})")


# -- reading ------------------------------------------------------------------------------


def parse_condition(value: Any, path: str, source: str) -> Condition:
    """A condition in any of its spellings; anything else is a ConfigError naming the key path."""
    if isinstance(value, str):
        if value in ("Always", "Never"):
            return Always() if value == "Always" else Never()
        if value in CONDITION_KINDS:
            raise ConfigError(
                f'{source}: {path}: {value!r} needs its fields: write {{ type = "{value}", … }}'
            )
        raise ConfigError(f"{source}: {path}: {value!r} is not one of {', '.join(CONDITION_KINDS)}")
    kind, f = tagged(value, path, source, CONDITION_KINDS)
    result: Condition
    if kind == "Always":
        result = Always()
    elif kind == "Never":
        result = Never()
    elif kind == "TimeRange":
        result = TimeRange(_clock_time(f, "start"), _clock_time(f, "end"))
    elif kind == "DayOfWeek":
        days = f.array("days")
        for index, day in enumerate(days):
            if type(day) is not int or not 1 <= day <= 7:
                raise f.error(
                    f"days[{index}]", f"{describe(day)} is not a day (1 Monday … 7 Sunday)"
                )
        if not days:
            f.warn("days", "no days given: the condition is never true")
        result = DayOfWeek(tuple(days))
    elif kind in ("AppRunning", "AppFrontmost"):
        name = f.required_string("app_name")
        if not name.strip():
            raise f.error("app_name", "names no application")
        result = AppRunning(name) if kind == "AppRunning" else AppFrontmost(name)
    elif kind == "ModeIs":
        result = ModeIs(f.required_string("mode"))
    elif kind in ("And", "Or"):
        if not f.has("conditions"):
            raise f.error("conditions", "is required (a list of conditions)")
        items = f.array("conditions")
        parts = tuple(
            parse_condition(item, f"{f.key_path('conditions')}[{i}]", source)
            for i, item in enumerate(items)
        )
        if not parts:
            always = "true" if kind == "And" else "false"
            f.warn("conditions", f"an empty {kind} is always {always}")
        result = And(parts) if kind == "And" else Or(parts)
    else:
        if not f.has("condition"):
            raise f.error("condition", "is required")
        result = Not(parse_condition(f.raw("condition"), f.key_path("condition"), source))
    f.done()
    return result


def _clock_time(f: Fields, key: str) -> int:
    text = f.required_string(key)
    match = _CLOCK_TIME.fullmatch(text.strip())
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise f.error(key, f"{text!r} is not a time of day as HH:MM (00:00-23:59)")
    return int(match.group(1)) * 60 + int(match.group(2))


def modes_named(condition: Condition) -> list[str]:
    """The modes `ModeIs` conditions inside `condition` ask about."""
    if isinstance(condition, ModeIs):
        return [condition.mode]
    if isinstance(condition, (And, Or)):
        return [mode for part in condition.conditions for mode in modes_named(part)]
    if isinstance(condition, Not):
        return modes_named(condition.condition)
    return []


def asks_the_desktop(condition: Condition) -> bool:
    """Whether judging `condition` may ask the desktop (which takes time); the others are
    judged in microseconds."""
    if isinstance(condition, (AppRunning, AppFrontmost)):
        return True
    if isinstance(condition, (And, Or)):
        return any(asks_the_desktop(part) for part in condition.conditions)
    if isinstance(condition, Not):
        return asks_the_desktop(condition.condition)
    return False


# -- judging ------------------------------------------------------------------------------


def holds(condition: Condition, mode: str, now: datetime, ask: Callable[[Condition], bool]) -> bool:
    """Whether `condition` holds in `mode` at local time `now`; `ask` answers the questions only
    the desktop can (AppRunning, AppFrontmost). And/Or stop at the first answer that decides."""
    if isinstance(condition, Always):
        return True
    if isinstance(condition, Never):
        return False
    if isinstance(condition, TimeRange):
        minute = now.hour * 60 + now.minute
        if condition.start <= condition.end:
            return condition.start <= minute <= condition.end
        return minute >= condition.start or minute <= condition.end
    if isinstance(condition, DayOfWeek):
        return now.isoweekday() in condition.days
    if isinstance(condition, ModeIs):
        return mode == condition.mode
    if isinstance(condition, And):
        return all(holds(part, mode, now, ask) for part in condition.conditions)
    if isinstance(condition, Or):
        return any(holds(part, mode, now, ask) for part in condition.conditions)
    if isinstance(condition, Not):
        return not holds(condition.condition, mode, now, ask)
    return ask(condition)


class Judge:
    """Judges conditions for one run against the real desktop and the local clock (both
    replaceable). A question the desktop cannot answer (the frontmost window under Wayland, a
    missing tool) counts as false, with one warning per reason per run."""

    def __init__(
        self,
        local_now: Callable[[], datetime] = datetime.now,
        running: Callable[[str], bool] | None = None,
        frontmost: Callable[[str], bool | desktop.Unknown] | None = None,
    ) -> None:
        self.local_now = local_now
        self.running = running or (lambda name: desktop.app_running(name, timeout=PROBE_TIMEOUT_S))
        self.frontmost = frontmost or (
            lambda name: desktop.app_frontmost(name, timeout=PROBE_TIMEOUT_S)
        )
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def holds(self, condition: Condition, mode: str) -> bool:
        return holds(condition, mode, self.local_now(), self._ask)

    def _ask(self, condition: Condition) -> bool:
        try:
            if isinstance(condition, AppRunning):
                return self.running(condition.app_name)
            assert isinstance(condition, AppFrontmost)
            answer = self.frontmost(condition.app_name)
        except desktop.DesktopError as failed:
            self._warn_once(f"{type(condition).__name__}: {failed.diagnostics()}")
            return False
        if isinstance(answer, desktop.Unknown):
            self._warn_once(f"AppFrontmost: {answer.reason}")
            return False
        return answer

    def _warn_once(self, reason: str) -> None:
        with self._lock:
            if reason in self._warned:
                return
            self._warned.add(reason)
        _log.warning("%s; such conditions count as false (said once per run)", reason)
