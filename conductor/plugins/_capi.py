"""The one boundary to wasmtime's C API: calls into a guest, its fuel, deadline and memory, and
host functions registered on a linker.

wasmtime-py's `Func.__call__` re-reads the function type on every call (~21 µs) and its
`Linker.define_func` costs 15 to 24 µs per host call; the C API's unchecked forms cost about 1 µs.
Nothing outside this module imports ctypes or touches wasmtime's private `_ffi`/`_bindings`: the
runtime and the host functions see guest addresses as integers, memory as bytes, exported
functions as opaque handles, and host functions as plain callables.
"""

from __future__ import annotations

import ctypes
import logging
import math
import time
import weakref
from collections.abc import Callable
from ctypes import c_char_p, c_int32, c_int64, c_size_t, c_ubyte, c_uint64, c_void_p
from dataclasses import dataclass
from types import FrameType
from typing import Any

import wasmtime
from wasmtime import _bindings as bindings
from wasmtime import _ffi as ffi

from conductor.errors import Interrupted

I32, I64 = "i32", "i64"
_VALUE_TYPES = {I32: wasmtime.ValType.i32, I64: wasmtime.ValType.i64}
_U32 = 0xFFFFFFFF
_log = logging.getLogger("conductor.host")


def _prototype(name: str, restype: Any, *argtypes: Any) -> Any:
    address = ctypes.cast(getattr(bindings.dll, name), c_void_p).value
    if not address:
        raise ImportError(f"wasmtime's C library has no {name}")
    return ctypes.CFUNCTYPE(restype, *argtypes)(address)


# Host callbacks see the raw value array as int32s: slot k's i32 is at [4k] (16-byte slots), and
# an i64 result is written as its two halves at [0] and [1].
_HostCallback = ctypes.CFUNCTYPE(c_size_t, c_void_p, c_void_p, ctypes.POINTER(c_int32), c_size_t)
# A store's epoch deadline callback: (context, data, epochs to run on, how) -> error or NULL.
_DeadlineCallback = ctypes.CFUNCTYPE(
    c_size_t, c_void_p, c_void_p, ctypes.POINTER(c_uint64), ctypes.POINTER(ctypes.c_uint8)
)
_CONTINUE = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE

# The per-call functions go through our own handles on the library with no argtypes: ctypes then
# skips converting arguments (~120 ns of ~290 ns a call), so every argument must be a prebuilt
# ctypes object of the exact C type (a bare int would be passed as a 32-bit C int).
_library = ctypes.CDLL(bindings.dll._name)


def _unconverted(name: str, restype: Any) -> Any:
    function = getattr(_library, name)
    function.restype = restype
    return function


_call_unchecked = _unconverted("wasmtime_func_call_unchecked", c_void_p)
_set_fuel = _unconverted("wasmtime_context_set_fuel", c_void_p)
_get_fuel = _unconverted("wasmtime_context_get_fuel", c_void_p)
_set_epoch_deadline = _unconverted("wasmtime_context_set_epoch_deadline", None)
_COUNTS = tuple(c_size_t(count) for count in range(3))  # nvalues arguments, prebuilt
_memory_data = _prototype("wasmtime_memory_data", c_void_p, c_void_p, c_void_p)
_memory_data_size = _prototype("wasmtime_memory_data_size", c_size_t, c_void_p, c_void_p)
_caller_context = _prototype("wasmtime_caller_context", c_void_p, c_void_p)
_error_new = _prototype("wasmtime_error_new", c_void_p, c_char_p)
_trap_new = _prototype("wasmtime_trap_new", c_void_p, c_char_p, c_size_t)
_set_deadline_callback = _prototype(
    "wasmtime_store_epoch_deadline_callback", None, c_void_p, _DeadlineCallback, c_void_p, c_void_p
)
_define_unchecked = _prototype(
    "wasmtime_linker_define_func_unchecked",
    c_void_p,
    c_void_p,
    c_char_p,
    c_size_t,
    c_char_p,
    c_size_t,
    c_void_p,
    _HostCallback,
    c_void_p,
    c_void_p,
)


class CallFailure(Exception):
    """A guest call ended in a trap or a wasmtime error; `trap_code` is set for traps."""

    def __init__(self, message: str, trap_code: wasmtime.TrapCode | None) -> None:
        super().__init__(message)
        self.trap_code = trap_code


class CallInterrupted(CallFailure):
    """A polled guest call that ended once `stop()` said so (stopped by its poll, or by a host
    function that Interrupted cut short). A CallFailure to the guest's own side (a host function
    whose nested `alloc` it stops reports a fault), but the runtime reports it as an interrupt."""


class OutOfBounds(Exception):
    """A `(pointer, length)` from the guest, or a buffer its `alloc` returned, is outside memory."""


class AllocFailure(Exception):
    """The guest's `alloc` returned 0 for a non-empty buffer."""


def _error_message(error: int) -> str:
    """Message of a `wasmtime_error_t*` returned by a C API call (takes ownership)."""
    pointer = ctypes.cast(error, ctypes.POINTER(ffi.wasmtime_error_t))
    return str(wasmtime.WasmtimeError._from_ptr(pointer))


class _Values:
    """A prebuilt argument-and-result array for `wasmtime_func_call_unchecked`, and a trap slot."""

    __slots__ = ("address", "i32", "i64", "trap", "trap_address")

    def __init__(self) -> None:
        self.i64 = (c_int64 * 8)()  # four 16-byte raw values
        self.address = c_void_p(ctypes.addressof(self.i64))
        self.i32 = (c_int32 * 16).from_buffer(self.i64)  # slot k's i32 is at [4k]
        self.trap = c_void_p()
        self.trap_address = c_void_p(ctypes.addressof(self.trap))

    def failure(self, error: int | None) -> CallFailure:
        if self.trap.value:
            pointer = ctypes.cast(self.trap.value, ctypes.POINTER(ffi.wasm_trap_t))
            self.trap.value = None
            trap = wasmtime.Trap._from_ptr(pointer)
            return CallFailure(trap.message, trap.trap_code)
        assert error is not None
        return CallFailure(_error_message(error), None)


Function = c_void_p  # an exported function's handle for `Guest.call`; false when absent


@dataclass(frozen=True)
class Poll:
    """How a guest's calls are polled: every `every` epochs, not only at the end of their budget,
    wasmtime calls back into Python on the calling thread, and the call stops (CallInterrupted)
    as soon as `stop()` says so.

    When that thread is the main one, Python runs pending signal handlers there, and an exception
    one raises cannot unwind through wasmtime: it is printed and lost (a Ctrl-C, with the default
    handler). So only a guest whose owner handles the signals itself, with handlers that raise
    only `outside_guest` or `in_host_call`, may be polled.
    """

    every: int
    tick_s: float  # how long an epoch lasts
    stop: Callable[[], bool]


# Each polled guest by its store's context, which is the `data` its deadline callback gets.
_polled: weakref.WeakValueDictionary[int, Guest] = weakref.WeakValueDictionary()


def _on_deadline(_context: int | None, key: int | None, delta: Any, kind: Any) -> int:
    """Every polled store's epoch deadline callback: run on `delta[0]` epochs more, or stop."""
    try:
        epochs = _polled[key or 0]._deadline_reached()
    except BaseException:  # nothing may reach wasmtime; stopping the call is the safe way out
        epochs = 0
    if not epochs:
        return _error_new(b"stopped at its epoch deadline") or 0
    delta[0] = epochs
    kind[0] = _CONTINUE
    return 0


_ON_DEADLINE = _DeadlineCallback(_on_deadline)  # lives as long as the module: stores point to it


def _innermost(frame: FrameType | None) -> FrameType | None:
    """The innermost of this module's frames from `frame` outwards, if any."""
    here = globals()
    while frame is not None and frame.f_globals is not here:
        frame = frame.f_back
    return frame


def outside_guest(frame: FrameType | None) -> bool:
    """Whether a signal handler running at `frame` found its thread outside any guest call."""
    return _innermost(frame) is None


def in_host_call(frame: FrameType | None) -> bool:
    """Whether a signal handler running at `frame` found its thread in a host function, inside a
    guest call: an exception raised there ends the guest call (the trampoline turns Interrupted
    into a trap). Anywhere else inside a guest call — a deadline poll, a wasmtime-py callback
    (WASI output), the trampoline's own entry before its `try` — it would reach wasmtime, which
    prints and drops it."""
    innermost = _innermost(frame)
    return (
        innermost is not None
        and innermost is not frame
        and innermost.f_code.co_name == "trampoline"
    )


class Guest:
    """One instance as the C API sees it: its exports called with prebuilt arguments, its fuel and
    deadline armed for each call, its memory read and written with every range checked.

    Owns the store: `close()` frees it, after which nothing here may be used. Not thread-safe,
    like the store. Guest memory is addressed with u32 pointers; the engine must be configured
    with `memory_may_move` off (`engine_config`), so the memory's base never changes and only
    its size is re-read, when a range reaches past the size seen last (memory never shrinks).
    """

    def __init__(
        self,
        store: wasmtime.Store,
        instance: wasmtime.Instance,
        fuel: int,
        ticks: int,
        poll: Poll | None = None,
    ) -> None:
        """`fuel` and `ticks` (epochs) are the budget `arm` gives every call; with `poll`, the
        epochs go in steps of `poll.every` (see `Poll`) until `deadline`."""
        self._store: wasmtime.Store | None = store
        self._exports = instance.exports(store)  # keeps the export objects whose addresses we use
        self.context: int = ctypes.cast(store._context(), c_void_p).value or 0
        self._context = c_void_p(self.context)
        memory = self._exports.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            raise ValueError("the instance exports no memory named 'memory'")
        self._memory = ctypes.addressof(memory._memory)
        self._base: int = _memory_data(self.context, self._memory) or 0
        self._size = 0
        self._view = memoryview(bytearray())
        self._budget = fuel
        self.spent = 0  # fuel the last `run` spent
        self._fuel_budget = c_uint64(fuel)
        self._poll = poll
        # The epochs to a call's first deadline, and those left after it (wasmtime stops a call at
        # its deadline unless `_deadline_reached` moves it on).
        # A polled call's epoch deadline comes every `poll.every` epochs, and `deadline` (the
        # clock, not a count of those steps: time in host functions counts too) ends it.
        self._ticks = c_uint64(min(ticks, poll.every) if poll else ticks)
        self.deadline = 0.0  # time.monotonic() at which the current call's budget ends
        self._timed_out = False  # `_deadline_reached` stopped the call at its budget's end
        self._fuel = c_uint64()
        self._fuel_address = c_void_p(ctypes.addressof(self._fuel))
        self._calls = _Values()
        self._nested = _Values()  # for alloc, which host functions call while execute runs
        self._alloc = self.function("alloc")
        if poll is not None:
            _polled[self.context] = self
            _set_deadline_callback(store.ptr(), _ON_DEADLINE, self.context, None)

    def function(self, name: str) -> Function:
        """The handle of exported function `name` for `call`; false when there is none."""
        export = self._exports.get(name)
        return c_void_p(ctypes.addressof(export._func) if isinstance(export, wasmtime.Func) else 0)

    # -- calls -----------------------------------------------------------------------------

    def arm(self) -> None:
        """Refill fuel to the budget and set the deadline the budget's ticks from now."""
        _set_fuel(self._context, self._fuel_budget)
        _set_epoch_deadline(self._context, self._ticks)

    def fuel_used(self) -> int:
        """Fuel spent since the last `arm`."""
        _get_fuel(self._context, self._fuel_address)
        return self._budget - self._fuel.value

    def call(self, func: Function, nvalues: int, first: int = 0, second: int = 0) -> int:
        """Call `func` with up to two i32 arguments and return its i32 result (meaningless when
        it has none); `nvalues` is the larger of its parameter and result counts."""
        values = self._calls
        i32 = values.i32
        i32[0] = first
        i32[4] = second
        error = _call_unchecked(
            self._context, func, values.address, _COUNTS[nvalues], values.trap_address
        )
        if error or values.trap:
            raise self._failure(values, error)
        return i32[0]

    def run(self, func: Function, pointer: int, data: bytes, armed: bool = False) -> int:
        """One request, start to end in one step (the hot path): arm (unless `armed` says the
        caller just did, to alloc the buffer within the same budget), copy `data` into guest
        memory at `pointer`, call `func(pointer, len(data)) -> i32` and return its result. The
        fuel spent since arming is left in `spent`, also when the call fails."""
        context = self._context
        if not armed:
            _set_fuel(context, self._fuel_budget)
            _set_epoch_deadline(context, self._ticks)
        size = len(data)
        end = pointer + size
        if end > self._size and not self._covers(end):
            raise OutOfBounds(f"({pointer}, {size}) is outside the {self._size}-byte memory")
        self._view[pointer:end] = data
        values = self._calls
        i32 = values.i32
        i32[0] = pointer
        i32[4] = size
        error = _call_unchecked(context, func, values.address, _COUNTS[2], values.trap_address)
        _get_fuel(context, self._fuel_address)
        self.spent = self._budget - self._fuel.value
        if error or values.trap:
            raise self._failure(values, error)
        return i32[0]

    def call_i64(self, func: Function) -> int:
        """Call a `() -> i64` function and return its result."""
        values = self._calls
        error = _call_unchecked(
            self._context, func, values.address, _COUNTS[1], values.trap_address
        )
        if error or values.trap:
            raise self._failure(values, error)
        return values.i64[0]

    def _deadline_reached(self) -> int:
        """A polled call is at its epoch deadline: the epochs to its next one, or 0 to stop it
        (`stop()` says so, or `deadline` has passed)."""
        poll = self._poll
        assert poll is not None
        if poll.stop():
            return 0
        left_s = self.deadline - time.monotonic()
        if left_s <= 0:
            self._timed_out = True
            return 0
        return min(poll.every, math.ceil(left_s / poll.tick_s))

    def _failure(self, values: _Values, error: int | None) -> CallFailure:
        """What ended a failed call: for a polled one an interrupt, or the end of its budget
        (reported as wasmtime reports a deadline without a callback); else its trap or error."""
        failure = values.failure(error)
        timed_out, self._timed_out = self._timed_out, False
        if self._poll is not None and self._poll.stop():
            return CallInterrupted(str(failure), None)
        if timed_out:
            return CallFailure(str(failure), wasmtime.TrapCode.INTERRUPT)
        return failure

    # -- memory ----------------------------------------------------------------------------

    def memory_size(self) -> int:
        return _memory_data_size(self.context, self._memory) if self.context else 0

    def _covers(self, end: int) -> bool:
        """True when `[0, end)` is inside memory; re-reads the size, which may have grown."""
        if not self.context:
            raise ValueError("guest already closed")
        size: int = _memory_data_size(self.context, self._memory)
        if size != self._size:
            self._size = size
            self._view = memoryview((c_ubyte * size).from_address(self._base)).cast("B")
        return end <= size

    def read(self, pointer: int, length: int) -> bytes:
        """Copy `length` bytes at `pointer` out of guest memory."""
        pointer &= _U32
        length &= _U32
        end = pointer + length
        if end > self._size and not self._covers(end):
            raise OutOfBounds(f"({pointer}, {length}) is outside the {self._size}-byte memory")
        return self._view[pointer:end].tobytes()

    def write(self, pointer: int, data: bytes) -> None:
        """Copy `data` into guest memory at `pointer`."""
        pointer &= _U32
        end = pointer + len(data)
        if end > self._size and not self._covers(end):
            raise OutOfBounds(f"({pointer}, {len(data)}) is outside the {self._size}-byte memory")
        self._view[pointer:end] = data

    def alloc(self, size: int, what: str) -> int:
        """A buffer of `size` bytes from the guest's own `alloc`, checked: not 0 (AllocFailure)
        and inside memory (OutOfBounds). `what` names the buffer in those errors. A trap in
        `alloc` raises CallFailure."""
        values = self._nested
        values.i32[0] = size
        error = _call_unchecked(
            self._context, self._alloc, values.address, _COUNTS[1], values.trap_address
        )
        if error or values.trap:
            raise self._failure(values, error)
        pointer = values.i32[0] & _U32
        if pointer == 0 and size:
            raise AllocFailure(f"alloc returned 0 for a {size}-byte {what} (allocation failure)")
        end = pointer + size
        if end > self._size and not self._covers(end):
            raise OutOfBounds(f"alloc returned {pointer}, outside memory for a {size}-byte {what}")
        return pointer

    def alloc_and_write(self, data: bytes, what: str) -> int:
        """`data` copied into a fresh buffer from the guest's `alloc`; returns its address."""
        pointer = self.alloc(len(data), what)
        self.write(pointer, data)
        return pointer

    def close(self) -> None:
        """Free the store and everything in it; idempotent."""
        store, self._store = self._store, None
        if store is None:
            return
        self.context = 0
        self._context = c_void_p(0)
        self._size = 0
        self._view = memoryview(bytearray())
        store.close()


def engine_config(max_wasm_stack: int) -> wasmtime.Config:
    """The engine settings `Guest` relies on: fuel, epoch interruption and memories whose base
    never moves (growth past the reservation fails instead of relocating)."""
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    config.max_wasm_stack = max_wasm_stack
    config.memory_may_move = False
    return config


def functype(params: tuple[str, ...], results: tuple[str, ...]) -> wasmtime.FuncType:
    """A fresh FuncType from kind names ("i32", "i64"): wasmtime ties a type to its first engine."""
    return wasmtime.FuncType(
        [_VALUE_TYPES[kind]() for kind in params], [_VALUE_TYPES[kind]() for kind in results]
    )


HostHandler = Callable[..., int]


class HostImports:
    """Host functions defined through the C API's unchecked form (~1 µs a call).

    Keeps every callback alive for as long as this object lives: the C side holds raw pointers
    to them, so it must outlive every store instantiated from the linkers it defined them on.
    """

    def __init__(self) -> None:
        self._callbacks: list[Any] = []

    def define(
        self,
        linker: wasmtime.Linker,
        module: str,
        name: str,
        params: tuple[str, ...],
        results: tuple[str, ...],
        handler: HostHandler,
        failure: int,
    ) -> None:
        """Define `module.name` on `linker`: a call runs `handler(context, *args)` with the
        calling store's context and its i32 arguments, and returns the int the handler returns.
        If the handler raises, or returns a value the result type cannot hold, the guest gets
        `failure`: no exception ever reaches wasmtime (it would surface in another thread)."""
        if any(kind != I32 for kind in params) or results not in ((), (I32,), (I64,)):
            raise ValueError(f"{module}.{name}: only i32 parameters and one i32/i64 result")
        slots = tuple(range(0, 4 * len(params), 4))
        wide = results == (I64,)
        low, high = (-(2**63), 2**63) if wide else (-(2**31), 2**31)
        has_result = bool(results)
        where = f"{module}.{name}"

        def trampoline(_env: Any, caller: Any, values: Any, _count: int) -> int:
            try:
                result = handler(_caller_context(caller), *[values[slot] for slot in slots])
                if not low <= result < high:
                    result = failure
            except Interrupted:  # a signal: the guest call ends here, as a trap
                return _trap_new(b"interrupted", 11) or 0
            except BaseException:  # the last line of defence: handlers catch their own
                try:
                    _log.exception("host function %s failed", where)
                except Interrupted:  # nothing may reach wasmtime, a signal meanwhile neither
                    return _trap_new(b"interrupted", 11) or 0
                result = failure
            if has_result:
                values[0] = result & _U32  # c_int32 stores keep the low 32 bits
                if wide:
                    values[1] = result >> 32
            return 0

        callback = _HostCallback(trampoline)
        self._callbacks.append(callback)
        module_bytes, name_bytes = module.encode(), name.encode()
        signature = functype(params, results)  # held until the call returns: it owns the pointer
        error = _define_unchecked(
            linker.ptr(),
            module_bytes,
            len(module_bytes),
            name_bytes,
            len(name_bytes),
            signature.ptr(),
            callback,
            None,
            None,
        )
        if error:
            raise RuntimeError(f"cannot define {where}: {_error_message(error)}")
