"""Error codes every host function returns (SPEC §8); negative, so they never collide with
a packed `(ptr << 32) | len` answer. Defined here only: the C header and the Rust SDK repeat
them for plugin authors, and tests/test_host_codes.py holds them to this table."""

from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    OK = 0
    DENIED = -1
    INVALID = -2
    TIMEOUT = -3
    IO = -4
    TOO_BIG = -5
    NO_MEMORY = -6
    NOT_FOUND = -7
    FAULT = -8
    UNSUPPORTED = -9
    CLOSED = -10
