"""Direct calls into wasmtime's C API for the hot path.

`Func.__call__` re-reads the function type on every call (~21 µs); these prototypes call
`wasmtime_func_call_unchecked` with prebuilt raw value arrays (~1 µs) and read memory without
wrapper objects. Everything here takes plain integers (addresses), nothing else.
"""

from __future__ import annotations

import ctypes
from ctypes import c_size_t, c_uint64, c_void_p
from typing import Any

import wasmtime
from wasmtime import _bindings as bindings
from wasmtime import _ffi as ffi


def _prototype(name: str, restype: Any, *argtypes: Any) -> Any:
    address = ctypes.cast(getattr(bindings.dll, name), c_void_p).value
    return ctypes.CFUNCTYPE(restype, *argtypes)(address)


func_call_unchecked = _prototype(
    "wasmtime_func_call_unchecked", c_void_p, c_void_p, c_void_p, c_void_p, c_size_t, c_void_p
)
context_set_fuel = _prototype("wasmtime_context_set_fuel", c_void_p, c_void_p, c_uint64)
context_get_fuel = _prototype("wasmtime_context_get_fuel", c_void_p, c_void_p, c_void_p)
context_set_epoch_deadline = _prototype(
    "wasmtime_context_set_epoch_deadline", None, c_void_p, c_uint64
)
memory_data = _prototype("wasmtime_memory_data", c_void_p, c_void_p, c_void_p)
memory_data_size = _prototype("wasmtime_memory_data_size", c_size_t, c_void_p, c_void_p)
caller_context = _prototype("wasmtime_caller_context", c_void_p, c_void_p)

RawValues = ffi.wasmtime_val_raw_t
UncheckedCallback = ffi.wasmtime_func_unchecked_callback_t


def context_address(store: wasmtime.Store) -> int:
    return ctypes.cast(store._context(), c_void_p).value or 0


def func_address(func: wasmtime.Func) -> int:
    return ctypes.addressof(func._func)


def memory_address(memory: wasmtime.Memory) -> int:
    return ctypes.addressof(memory._memory)


class CallFailure(Exception):
    """A guest call ended in a trap or a wasmtime error; `trap_code` is set for traps."""

    def __init__(self, message: str, trap_code: wasmtime.TrapCode | None) -> None:
        super().__init__(message)
        self.trap_code = trap_code


class RawCaller:
    """Calls guest functions of one store through prebuilt argument arrays.

    One per instance; not thread-safe, like the store it belongs to.
    """

    def __init__(self, context: int) -> None:
        self.context = context
        self.values = (RawValues * 4)()
        self.values_address = ctypes.addressof(self.values)
        # An int32 view of the same bytes: slot k's i32 is at index 4k (16-byte raw values).
        self.i32 = (ctypes.c_int32 * 16).from_buffer(self.values)
        self.trap = c_void_p()
        self.trap_address = ctypes.addressof(self.trap)
        self._fuel = c_uint64()
        self._fuel_address = ctypes.addressof(self._fuel)

    def fuel_left(self) -> int:
        context_get_fuel(self.context, self._fuel_address)
        return self._fuel.value

    def call(self, func: int, nvalues: int) -> None:
        """Call `func` with `self.values` holding arguments; results come back in place."""
        error = func_call_unchecked(
            self.context, func, self.values_address, nvalues, self.trap_address
        )
        if error or self.trap.value:
            raise self._failure(error)

    def call_i32(self, func: int, nvalues: int, first: int = 0, second: int = 0) -> int:
        """Call with up to two i32 arguments and return the first i32 result (hot path)."""
        i32 = self.i32
        i32[0] = first
        i32[4] = second
        error = func_call_unchecked(
            self.context, func, self.values_address, nvalues, self.trap_address
        )
        if error or self.trap.value:
            raise self._failure(error)
        return i32[0]

    def _failure(self, error: int | None) -> CallFailure:
        if self.trap.value:
            trap = wasmtime.Trap._from_ptr(
                ctypes.cast(self.trap.value, ctypes.POINTER(ffi.wasm_trap_t))
            )
            self.trap.value = None
            return CallFailure(trap.message, trap.trap_code)
        wrapped = wasmtime.WasmtimeError._from_ptr(
            ctypes.cast(error, ctypes.POINTER(ffi.wasmtime_error_t))
        )
        return CallFailure(str(wrapped), None)


def error_from_pointer(error: Any) -> str:
    """Message of a `wasmtime_error_t*` returned by a C API call (takes ownership)."""
    return str(
        wasmtime.WasmtimeError._from_ptr(ctypes.cast(error, ctypes.POINTER(ffi.wasmtime_error_t)))
    )


def define_unchecked(
    linker: wasmtime.Linker, module: str, name: str, functype: wasmtime.FuncType, callback: Any
) -> None:
    """Define a host function on the linker through the C API's unchecked form (~1 µs a call)."""
    module_bytes, name_bytes = module.encode(), name.encode()
    no_finalizer = ctypes.cast(0, ctypes.CFUNCTYPE(None, c_void_p))
    error = bindings.wasmtime_linker_define_func_unchecked(
        linker.ptr(),
        ctypes.create_string_buffer(module_bytes),
        len(module_bytes),
        ctypes.create_string_buffer(name_bytes),
        len(name_bytes),
        functype.ptr(),
        callback,
        None,
        no_finalizer,
    )
    if error:
        raise RuntimeError(error_from_pointer(error))
