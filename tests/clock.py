"""A clock tests move by hand, for the engine's injectable clocks: time as a value."""

from __future__ import annotations


class ManualClock:
    """Monotonic seconds that advance only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
