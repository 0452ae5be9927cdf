"""Host functions of import module `conductor`, registered through `_capi.HostImports`.

One handler per function finds the calling instance's state by its store context, checks the
capability, and calls a plain Python function. No exception ever crosses into wasmtime: it would
land in wasmtime-py's process-wide exception slot and surface in another thread's call. Expected
failures become error codes and the instance's last error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import wasmtime

from conductor.errors import Interrupted
from conductor.plugins import _capi
from conductor.plugins.capabilities import Capability
from conductor.plugins.host import _state, http, system, websocket
from conductor.plugins.host import exec as exec_module
from conductor.plugins.host import log as log_module
from conductor.plugins.host.codes import Code

__all__ = ["HOST_FUNCTIONS", "Code", "HostFunction", "HostLinker"]

_logger = logging.getLogger("conductor.host")
_I32, _I64 = _capi.I32, _capi.I64


@dataclass(frozen=True)
class HostFunction:
    name: str
    params: tuple[str, ...]
    results: tuple[str, ...]
    implementation: Callable[..., int]
    capability: Capability | None = None

    def functype(self) -> wasmtime.FuncType:
        return _capi.functype(self.params, self.results)


_NET = Capability.NETWORK
HOST_FUNCTIONS: tuple[HostFunction, ...] = (
    HostFunction("log", (_I32, _I32, _I32), (_I32,), log_module.log),
    HostFunction("config_get", (_I32, _I32), (_I64,), log_module.config_get),
    HostFunction("error_message", (), (_I64,), log_module.error_message),
    HostFunction("http_request", (_I32, _I32), (_I64,), http.http_request, _NET),
    HostFunction("ws_connect", (_I32, _I32), (_I64,), websocket.ws_connect, _NET),
    HostFunction("ws_send", (_I32, _I32, _I32, _I32), (_I32,), websocket.ws_send, _NET),
    HostFunction("ws_recv", (_I32, _I32), (_I64,), websocket.ws_recv, _NET),
    HostFunction("ws_close", (_I32,), (_I32,), websocket.ws_close, _NET),
    HostFunction("exec", (_I32, _I32), (_I64,), exec_module.exec_command, Capability.SUBPROCESS),
    HostFunction("system", (_I32, _I32), (_I64,), system.system, Capability.SYSTEM_CONTROL),
)
_FAST = frozenset({"log"})  # no capability, and its own error handling: skip the generic path


class HostLinker:
    """Defines every host function on a linker; instances register their state by context."""

    def __init__(self) -> None:
        self.states: dict[int, _state.InstanceState] = {}
        self._imports = _capi.HostImports()

    def signatures(self) -> dict[str, wasmtime.FuncType]:
        return {function.name: function.functype() for function in HOST_FUNCTIONS}

    def define_all(self, linker: wasmtime.Linker, module: str) -> None:
        for function in HOST_FUNCTIONS:
            handler = self._fast(function) if function.name in _FAST else self._handler(function)
            self._imports.define(
                linker, module, function.name, function.params, function.results, handler, Code.IO
            )

    def _fast(self, function: HostFunction) -> _capi.HostHandler:
        """The hot path (`log`): no capability, and the implementation handles its own faults."""
        states = self.states
        implementation = function.implementation

        def fast(context: int, *args: int) -> int:
            state = states.get(context)
            return Code.INVALID if state is None else implementation(state, *args)

        return fast

    def _handler(self, function: HostFunction) -> _capi.HostHandler:
        states = self.states
        name = function.name
        implementation = function.implementation
        capability = function.capability
        # A packed answer at an address of 2**31 or more would not fit the i64 (or an i32 result
        # its type): FAULT rather than a wrapped value the guest would misread.
        ceiling = 2**63 if function.results == (_I64,) else 2**31

        def handler(context: int, *args: int) -> int:
            state = states.get(context)
            if state is None:  # a start function, before the instance is registered
                return Code.INVALID
            try:
                if capability is not None and capability not in state.plugin.granted:
                    state.last_error = f"{name}: the {capability.value} capability is not granted"
                    state.plugin.log_denial(
                        name,
                        f"{capability.value} is not granted",
                        f"conductor plugin grant {state.name} {capability.value}",
                    )
                    return Code.DENIED
                result = implementation(state, *args)
                return result if result < ceiling else Code.FAULT
            except (_state.HostCallError, _state.GuestFault) as failure:
                state.last_error = state.plugin.redact(f"{name}: {failure}")
                return failure.code
            except Interrupted:  # a signal: the trampoline ends the guest call for it
                raise
            except BaseException as exc:  # never let anything reach wasmtime
                state.last_error = state.plugin.redact(
                    f"{name}: host error: {type(exc).__name__}: {exc}"
                )
                _logger.exception("host function %s failed", name)
                return Code.IO

        return handler
