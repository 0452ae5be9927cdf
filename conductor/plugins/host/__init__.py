"""Host functions of import module `conductor`, registered through the C API's unchecked form.

One trampoline per function reads raw i32/i64 values, finds the calling instance's state by its
store context, and calls a plain Python function. No exception ever crosses into wasmtime: it
would land in wasmtime-py's process-wide exception slot and surface in another thread's call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import wasmtime

from conductor.plugins import _capi
from conductor.plugins.host import log as log_module
from conductor.plugins.host._state import InstanceState
from conductor.plugins.host.codes import Code

_logger = logging.getLogger("conductor.host")


@dataclass(frozen=True)
class HostFunction:
    name: str
    params: tuple[str, ...]
    results: tuple[str, ...]
    implementation: Callable[..., int]

    def functype(self) -> wasmtime.FuncType:
        """A fresh FuncType: wasmtime ties a type to the first engine it is used with."""
        kinds = {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64}
        return wasmtime.FuncType(
            [kinds[p]() for p in self.params], [kinds[r]() for r in self.results]
        )


HOST_FUNCTIONS: tuple[HostFunction, ...] = (
    HostFunction("log", log_module.PARAMS, log_module.RESULTS, log_module.log),
)


class HostLinker:
    """Defines every host function on a linker; instances register their state by context."""

    def __init__(self) -> None:
        self.states: dict[int, InstanceState] = {}
        self._callbacks: list[Any] = []  # the C side holds raw pointers: keep them alive

    def signatures(self) -> dict[str, wasmtime.FuncType]:
        return {function.name: function.functype() for function in HOST_FUNCTIONS}

    def define_all(self, linker: wasmtime.Linker, module: str) -> None:
        for function in HOST_FUNCTIONS:
            callback = self._trampoline(function)
            self._callbacks.append(callback)
            _capi.define_unchecked(linker, module, function.name, function.functype(), callback)

    def _trampoline(self, function: HostFunction) -> Any:
        readers = function.params
        implementation = function.implementation
        states = self.states
        result_kind = function.results[0] if function.results else None

        def trampoline(_env: Any, caller: Any, values: Any, _count: int) -> int:
            state = None
            try:
                state = states.get(_capi.caller_context(caller))
                args = [
                    values[i].i64 if kind == "i64" else values[i].i32
                    for i, kind in enumerate(readers)
                ]
                result = implementation(state, *args) if state is not None else Code.INVALID
            except BaseException as exc:  # never let anything reach wasmtime
                result = Code.IO
                if state is not None:
                    state.last_error = f"{function.name}: host error: {type(exc).__name__}: {exc}"
                _logger.exception("host function %s failed", function.name)
            if result_kind == "i64":
                values[0].i64 = int(result)
            elif result_kind == "i32":
                values[0].i32 = int(result)
            return 0

        return _capi.UncheckedCallback(trampoline)
