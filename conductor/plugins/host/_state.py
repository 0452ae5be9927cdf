"""Host-side state of one plugin instance, as host functions see it.

Host functions find it by the caller's store context. It lives exactly as long as the instance:
its WebSockets are closed and its last error forgotten when the instance is discarded. Guest
memory is reached only through the instance's `Guest`, which checks every range.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conductor.plugins import _capi
from conductor.plugins.context import PluginContext
from conductor.plugins.host.codes import Code
from conductor.plugins.sandbox import OutputCapture

MAX_HOST_ARGUMENT = 1024 * 1024
MAX_ANSWER = 4 * 1024 * 1024 + 64 * 1024  # a 4 MiB body plus its JSON envelope
DEADLINE_GUARD_S = 0.020
# A guest's alloc may itself make a host call whose answer needs alloc again: each level costs
# Python frames, and past the interpreter's recursion limit the host could no longer answer.
MAX_NESTED_ANSWERS = 8


class GuestFault(Exception):
    """A `(ptr, len)` from the guest lies outside its memory, or is over the limit."""

    def __init__(self, message: str, code: Code = Code.FAULT) -> None:
        super().__init__(message)
        self.code = code


class HostCallError(Exception):
    """An expected failure of a host function: becomes an error code and the last error."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class InstanceState:
    plugin: PluginContext
    guest: _capi.Guest
    capture: OutputCapture
    last_error: str = ""
    discard_reason: str = ""
    nested_answers: int = 0  # answers being written, one inside another's alloc
    resources: dict[int, Any] = field(default_factory=dict)  # WebSocket handles
    closers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.plugin.name

    @property
    def deadline(self) -> float:
        """time.monotonic() at which the current call's budget ends (the guest's, one value)."""
        return self.guest.deadline

    # -- guest memory ----------------------------------------------------------------------

    def read(self, pointer: int, length: int, limit: int = MAX_HOST_ARGUMENT) -> bytes:
        """Copy `length` bytes at `pointer` out of guest memory, bounds-checked."""
        length &= 0xFFFFFFFF
        if length > limit:
            raise GuestFault(
                f"argument of {length} bytes is over the {limit}-byte limit", Code.TOO_BIG
            )
        try:
            return self.guest.read(pointer, length)
        except _capi.OutOfBounds as fault:
            raise GuestFault(str(fault)) from None

    def read_json(
        self, pointer: int, length: int, limit: int = MAX_HOST_ARGUMENT
    ) -> dict[str, Any]:
        data = self.read(pointer, length, limit)
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise HostCallError(
                Code.INVALID, f"argument is not UTF-8 JSON: {str(exc)[:80]}"
            ) from None
        if not isinstance(document, dict):
            raise HostCallError(Code.INVALID, "argument must be a JSON object")
        return document

    def answer(self, data: bytes) -> int:
        """Write `data` into a buffer from the guest's own `alloc`; return `(ptr << 32) | len`."""
        if not data:
            return 0
        if len(data) > MAX_ANSWER:
            raise HostCallError(
                Code.TOO_BIG, f"answer of {len(data)} bytes is over the {MAX_ANSWER}-byte limit"
            )
        if self.nested_answers >= MAX_NESTED_ANSWERS:
            raise HostCallError(
                Code.FAULT, f"host calls nested {MAX_NESTED_ANSWERS} deep inside alloc"
            )
        self.nested_answers += 1
        try:
            pointer = self.guest.alloc_and_write(data, "answer")
        except _capi.CallFailure as failure:
            # The guest trapped inside alloc: it is broken, so the instance goes after this call.
            self.discard_reason = f"trapped in alloc during a host call: {failure}"
            raise HostCallError(Code.FAULT, self.discard_reason) from None
        except _capi.AllocFailure as failure:
            raise HostCallError(Code.NO_MEMORY, str(failure)) from None
        except _capi.OutOfBounds as fault:
            raise HostCallError(Code.FAULT, str(fault)) from None
        finally:
            self.nested_answers -= 1
        return (pointer << 32) | len(data)

    def answer_json(self, document: Any) -> int:
        return self.answer(json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode())

    # -- budget ----------------------------------------------------------------------------

    def budget(self, own_timeout_ms: float | None = None) -> float:
        """Seconds a blocking step may take: its own timeout, capped by the call's deadline
        minus a guard. Raises TIMEOUT when nothing is left."""
        remaining = self.deadline - time.monotonic() - DEADLINE_GUARD_S
        if own_timeout_ms is not None:
            remaining = min(remaining, own_timeout_ms / 1000.0)
        if remaining <= 0:
            raise HostCallError(Code.TIMEOUT, "the call's deadline leaves no time for this step")
        return remaining

    def close(self) -> None:
        """Release what the instance holds (WebSockets); called when it is discarded."""
        for closer in self.closers:
            try:
                closer()
            except Exception as exc:  # closing is best effort; the instance is gone either way
                self.plugin.logger.debug("%s: closing a resource failed: %s", self.name, exc)
        self.closers.clear()
        self.resources.clear()
