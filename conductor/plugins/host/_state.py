"""Host-side state of one plugin instance, as host functions see it.

Host functions reach it from the caller's store context; it lives exactly as long as the
instance, and nothing in it is shared between instances.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass, field

from conductor.plugins import _capi
from conductor.plugins.capabilities import Capability
from conductor.plugins.sandbox import OutputCapture

MAX_HOST_ARGUMENT = 1024 * 1024


class GuestFault(Exception):
    """A `(ptr, len)` from the guest lies outside its memory."""


@dataclass
class InstanceState:
    plugin: str
    context: int
    capture: OutputCapture
    granted: frozenset[Capability]
    logger: logging.Logger
    memory: int = 0
    alloc: int = 0
    last_error: str = ""
    discard_reason: str = ""
    reentrant: _capi.RawCaller = field(init=False)

    def __post_init__(self) -> None:
        self.reentrant = _capi.RawCaller(self.context)

    def read(self, pointer: int, length: int, limit: int = MAX_HOST_ARGUMENT) -> bytes:
        """Copy `length` bytes at `pointer` out of guest memory, bounds-checked."""
        pointer &= 0xFFFFFFFF
        length &= 0xFFFFFFFF
        if length > limit:
            raise GuestFault(f"argument of {length} bytes is over the {limit}-byte limit")
        size = _capi.memory_data_size(self.context, self.memory)
        if pointer + length > size:
            raise GuestFault(f"({pointer}, {length}) is outside the {size}-byte memory")
        if length == 0:
            return b""
        return ctypes.string_at(_capi.memory_data(self.context, self.memory) + pointer, length)
