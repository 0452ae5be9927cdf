"""Time as a value: the clocks the engine takes as parameters (so tests pass their own instead of
sleeping), and the one backoff rule for retrying a failing plugin or a vanished port."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]  # seconds on a monotonic clock
WallClock = Callable[[], int]  # milliseconds since the Unix epoch


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Backoff:
    """When to try again after consecutive failures: the first failure is retried at once (a
    one-off fault costs nothing), then the wait doubles from `first_s` up to `max_s`; a success
    resets it."""

    def __init__(self, first_s: float, max_s: float, clock: Clock = time.monotonic) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self.clock = clock
        self.failures = 0
        self.retry_at = 0.0

    def ready(self) -> bool:
        return self.clock() >= self.retry_at

    def remaining_s(self) -> float:
        return max(0.0, self.retry_at - self.clock())

    def failed(self) -> float:
        """Count a failure; the wait before the next attempt, in seconds."""
        self.failures += 1
        doublings = min(self.failures - 2, 64)  # capped: 2 ** 1100 no longer fits a float
        wait = 0.0 if self.failures == 1 else min(self.max_s, self.first_s * 2.0**doublings)
        self.retry_at = self.clock() + wait
        return wait

    def succeeded(self) -> None:
        self.failures = 0
        self.retry_at = 0.0
