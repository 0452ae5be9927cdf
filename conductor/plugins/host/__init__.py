"""Host functions of import module `conductor`, registered through the C API's unchecked form.

One trampoline per function reads raw values, finds the calling instance's state by its store
context, checks the capability, and calls a plain Python function. No exception ever crosses into
wasmtime: it would land in wasmtime-py's process-wide exception slot and surface in another
thread's call. Expected failures become error codes and the instance's last error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import wasmtime

from conductor.plugins import _capi
from conductor.plugins.capabilities import Capability
from conductor.plugins.host import exec as exec_module
from conductor.plugins.host import http, system, websocket
from conductor.plugins.host import log as log_module
from conductor.plugins.host._state import GuestFault, HostCallError, InstanceState
from conductor.plugins.host.codes import Code

_logger = logging.getLogger("conductor.host")
I32, I64 = "i32", "i64"


@dataclass(frozen=True)
class HostFunction:
    name: str
    params: tuple[str, ...]
    results: tuple[str, ...]
    implementation: Callable[..., int]
    capability: Capability | None = None

    def functype(self) -> wasmtime.FuncType:
        """A fresh FuncType: wasmtime ties a type to the first engine it is used with."""
        kinds = {I32: wasmtime.ValType.i32, I64: wasmtime.ValType.i64}
        return wasmtime.FuncType(
            [kinds[p]() for p in self.params], [kinds[r]() for r in self.results]
        )


NET = Capability.NETWORK
HOST_FUNCTIONS: tuple[HostFunction, ...] = (
    HostFunction("log", (I32, I32, I32), (I32,), log_module.log),
    HostFunction("config_get", (I32, I32), (I64,), log_module.config_get),
    HostFunction("error_message", (), (I64,), log_module.error_message),
    HostFunction("http_request", (I32, I32), (I64,), http.http_request, NET),
    HostFunction("ws_connect", (I32, I32), (I64,), websocket.ws_connect, NET),
    HostFunction("ws_send", (I32, I32, I32, I32), (I32,), websocket.ws_send, NET),
    HostFunction("ws_recv", (I32, I32), (I64,), websocket.ws_recv, NET),
    HostFunction("ws_close", (I32,), (I32,), websocket.ws_close, NET),
    HostFunction("exec", (I32, I32), (I64,), exec_module.exec_command, Capability.SUBPROCESS),
    HostFunction("system", (I32, I32), (I64,), system.system, Capability.SYSTEM_CONTROL),
)
_FAST = frozenset({"log"})  # no capability, and its own error handling: skip the generic path


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
        states = self.states
        name = function.name
        implementation = function.implementation
        capability = function.capability
        kinds = function.params
        wide_result = function.results == (I64,)
        has_result = bool(function.results)

        if name in _FAST:

            def fast(_env: Any, caller: Any, values: Any, _count: int) -> int:
                try:
                    state = states[_capi.caller_context(caller)]
                    values[0].i32 = implementation(
                        state, values[0].i32, values[1].i32, values[2].i32
                    )
                except BaseException:  # never let anything reach wasmtime
                    _logger.exception("host function %s failed", name)
                    values[0].i32 = Code.IO
                return 0

            return _capi.UncheckedCallback(fast)

        def trampoline(_env: Any, caller: Any, values: Any, _count: int) -> int:
            result: int = Code.IO
            state = None
            try:
                state = states.get(_capi.caller_context(caller))
                if state is None:
                    result = Code.INVALID
                elif capability is not None and capability not in state.plugin.granted:
                    state.last_error = f"{name}: the {capability.value} capability is not granted"
                    state.plugin.log_denial(
                        name,
                        f"{capability.value} is not granted",
                        f"conductor plugin grant {state.name} {capability.value}",
                    )
                    result = Code.DENIED
                else:
                    args = [
                        values[i].i64 if kind == I64 else values[i].i32
                        for i, kind in enumerate(kinds)
                    ]
                    result = implementation(state, *args)
            except (HostCallError, GuestFault) as failure:
                result = failure.code
                if state is not None:
                    state.last_error = state.plugin.redact(f"{name}: {failure}")
            except BaseException as exc:  # never let anything reach wasmtime
                result = Code.IO
                if state is not None:
                    state.last_error = state.plugin.redact(
                        f"{name}: host error: {type(exc).__name__}: {exc}"
                    )
                _logger.exception("host function %s failed", name)
            if wide_result:
                # An i64 of 2**63 or more would wrap or vanish: answers are always below 2**63.
                values[0].i64 = result if -(2**63) <= result < 2**63 else Code.FAULT
            elif has_result:
                values[0].i32 = result if -(2**31) <= result < 2**31 else Code.FAULT
            return 0

        return _capi.UncheckedCallback(trampoline)
