"""The one error every desktop operation raises, with the kind of failure a caller maps to its
own codes (the `system` host function to UNSUPPORTED, TIMEOUT, IO, INVALID)."""

from __future__ import annotations

from enum import Enum

from conductor.errors import ConductorError


class Failure(Enum):
    UNSUPPORTED = "unsupported"  # no tool for this here (the message names those tried)
    TIMEOUT = "timeout"  # the operation's time budget ran out
    IO = "io"  # tools ran and failed (the message says what each said)
    INVALID = "invalid"  # the request itself is wrong (unknown key, bad percent, refused name)


class DesktopError(ConductorError):
    """A desktop operation failed; the message is one line naming the operation."""

    def __init__(self, failure: Failure, message: str) -> None:
        super().__init__(message)
        self.failure = failure
