"""The plugin runtime: one shared engine, and per plugin a store with its own warm instance.

`PluginHost` owns what every plugin shares (engine, linker with WASI and host functions, epoch
ticker, module cache). `Plugin` owns one module and at most one live instance; a trap, exhausted
limit or broken ABI result discards the instance, and the next call starts a fresh one.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import wasmtime

from conductor.errors import PluginError
from conductor.plugins import _capi
from conductor.plugins._ticker import EpochTicker
from conductor.plugins.abi import (
    HOST_MODULE,
    Metadata,
    MetadataError,
    ModuleAbi,
    inspect_module,
    parse_metadata,
)
from conductor.plugins.cache import ModuleCache
from conductor.plugins.capabilities import Capability
from conductor.plugins.host import HostLinker
from conductor.plugins.host._state import InstanceState
from conductor.plugins.host.context import PluginContext
from conductor.plugins.limits import Limits
from conductor.plugins.sandbox import CapturedOutput, OutputCapture, wasi_config

EPOCH_TICK_MS = 5
MAX_WASM_STACK = 512 * 1024
_log = logging.getLogger("conductor.plugins")


class PluginHost:
    """Everything plugins share; create one per process and `close()` it at the end."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        config = wasmtime.Config()
        config.consume_fuel = True
        config.epoch_interruption = True
        config.max_wasm_stack = MAX_WASM_STACK
        self.engine = wasmtime.Engine(config)
        self.host_functions = HostLinker()
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()
        self.host_functions.define_all(self.linker, HOST_MODULE)
        fingerprint = (
            f"wasmtime-{importlib.metadata.version('wasmtime')};fuel;epoch;stack={MAX_WASM_STACK}"
        )
        self.cache = ModuleCache(cache_dir, fingerprint)
        self.ticker = EpochTicker(self.engine, EPOCH_TICK_MS)

    def compile(self, name: str, wasm: bytes, digest: bytes) -> tuple[wasmtime.Module, bool]:
        """Compile (or take from the cache) the exact bytes that were verified; True if cached.

        `digest` is the SHA-256 of `wasm`: the cache hands back only an entry authenticated for it.
        """
        cached = self.cache.load(self.engine, digest)
        if cached is not None:
            return cached, True
        if not wasm:
            raise PluginError(f"{name}: the file is empty, not a WebAssembly module")
        if wasm[:4] != b"\0asm":
            raise PluginError(
                f"{name}: not a WebAssembly module (no \\0asm header; is it a text .wat file?)"
            )
        try:
            module = wasmtime.Module(self.engine, wasm)
        except wasmtime.WasmtimeError as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid module"
            raise PluginError(f"{name}: not a valid WebAssembly module: {first_line}") from None
        self.cache.store(module, digest)
        return module, False

    def inspect(self, module: wasmtime.Module) -> ModuleAbi:
        return inspect_module(module, self.host_functions.signatures())

    def close(self) -> None:
        self.ticker.stop()


@dataclass(slots=True)
class CallResult:
    """The outcome of one plugin call, for the log, the live view and `--json`."""

    plugin: str
    code: int | None
    error: str | None
    fuel: int
    wall_ms: float
    output: CapturedOutput = field(default_factory=CapturedOutput)
    discarded: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.code == 0

    def to_json(self) -> dict[str, object]:
        return {
            "plugin": self.plugin,
            "ok": self.ok,
            "code": self.code,
            "error": self.error,
            "fuel": self.fuel,
            "wall_ms": round(self.wall_ms, 3),
            "instance_discarded": self.discarded,
            "output": self.output.to_json(),
        }


class _CallError(Exception):
    """Ends a call: the instance is discarded and the reason reported."""


class _Instance:
    """One live instance with the raw handles the hot path needs."""

    def __init__(
        self, store: wasmtime.Store, instance: wasmtime.Instance, state: InstanceState
    ) -> None:
        self.store = store
        self.instance = instance
        self.state = state
        exports = instance.exports(store)
        self.exports = exports
        self.context = state.context
        self.memory = _capi.memory_address(exports["memory"])
        self.alloc = _capi.func_address(exports["alloc"])
        self.execute = _capi.func_address(exports["execute"])
        dealloc = exports.get("dealloc")
        self.dealloc = _capi.func_address(dealloc) if isinstance(dealloc, wasmtime.Func) else 0
        self.caller = _capi.RawCaller(self.context)
        self.known_memory_size = 0
        state.memory, state.alloc = self.memory, self.alloc

    def func(self, name: str) -> int:
        export = self.exports.get(name)
        return _capi.func_address(export) if isinstance(export, wasmtime.Func) else 0


class Plugin:
    """A loaded plugin: its module, limits and grants, and at most one warm instance.

    Not thread-safe: the engine's per-plugin worker is the only caller, which also keeps the store
    on one thread as wasmtime-py requires.
    """

    def __init__(
        self,
        host: PluginHost,
        name: str,
        module: wasmtime.Module,
        abi: ModuleAbi,
        limits: Limits,
        context: PluginContext | None = None,
    ) -> None:
        self.host = host
        self.name = name
        self.module = module
        self.abi = abi
        self.limits = limits
        self.context = context or PluginContext(name)
        self.context.logger = logging.getLogger(f"conductor.plugin.{name}")
        self.metadata: Metadata | None = None
        self._instance: _Instance | None = None
        self._ticks = host.ticker.ticks_for(limits.timeout_ms)
        self._timeout_s = limits.timeout_ms / 1000.0

    @property
    def granted(self) -> frozenset[Capability]:
        return self.context.granted

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Metadata:
        """Instantiate and run `_initialize` and `init`; raise PluginError naming the cause."""
        instance = self._new_instance()
        try:
            self.metadata = self._run_init(instance)
        except _CallError as exc:
            self._drop(instance)
            raise PluginError(f"{self.name}: init failed: {exc}") from None
        self._instance = instance
        return self.metadata

    def grant(self, capabilities: frozenset[Capability]) -> None:
        """Set the granted capabilities. Host functions read them on every call; only Filesystem
        changes the WASI sandbox, which is fixed at instantiation, so only it restarts the instance."""
        sandbox_changes = (Capability.FILESYSTEM in capabilities) != (
            Capability.FILESYSTEM in self.context.granted
        )
        self.context.granted = capabilities
        if sandbox_changes:
            self.discard()
            self.start()

    def discard(self) -> None:
        if self._instance is not None:
            self._drop(self._instance)
            self._instance = None

    def shutdown(self) -> CallResult:
        """Call `shutdown` (if exported) on the live instance and unload it."""
        instance = self._instance
        started = time.perf_counter()
        if instance is None:
            return CallResult(self.name, 0, None, 0, 0.0)
        func = instance.func("shutdown")
        error, code = None, 0
        if func:
            try:
                self._arm(instance)
                instance.caller.call(func, 1 if self.abi.shutdown_returns_code else 0)
                if self.abi.shutdown_returns_code:
                    code = instance.caller.values[0].i32
            except _capi.CallFailure as failure:
                error = f"shutdown failed: {self._describe(failure, instance)}"
        fuel = self._fuel_used(instance)
        output = instance.state.capture.take()
        self.discard()
        return CallResult(
            self.name, code, error, fuel, (time.perf_counter() - started) * 1000, output, True
        )

    # -- calls -----------------------------------------------------------------------------

    def execute(self, request: bytes) -> CallResult:
        """Run `execute` once with `request` (UTF-8 JSON); never raises for plugin misbehaviour."""
        started = time.perf_counter()
        instance = self._instance
        if instance is None:
            try:
                self.start()
            except PluginError as exc:
                return CallResult(
                    self.name, None, exc.diagnostics(), 0, (time.perf_counter() - started) * 1000
                )
            instance = self._instance
            assert instance is not None
        try:
            code = self._call_execute(instance, request)
            error = None
            if instance.state.discard_reason:
                raise _CallError(instance.state.discard_reason)
        except _CallError as exc:
            code, error = None, f"{self.name}: {exc}"
        fuel = self._fuel_used(instance)
        output = instance.state.capture.take()
        if error is not None:
            self.discard()
            _log.warning("%s (instance discarded)", error)
        elapsed = (time.perf_counter() - started) * 1000
        return CallResult(self.name, code, error, fuel, elapsed, output, error is not None)

    def _call_execute(self, instance: _Instance, request: bytes) -> int:
        size = len(request)
        if size > self.limits.max_json_bytes:
            raise _CallError(
                f"request of {size} bytes is over the {self.limits.max_json_bytes}-byte limit"
            )
        caller, context, memory = instance.caller, instance.context, instance.memory
        _capi.context_set_fuel(context, self.limits.max_fuel)
        _capi.context_set_epoch_deadline(context, self._ticks)
        instance.state.deadline = time.monotonic() + self._timeout_s
        try:
            pointer = caller.call_i32(instance.alloc, 1, size) & 0xFFFFFFFF
            if pointer == 0 and size:
                raise _CallError(f"alloc returned 0 for a {size}-byte request (allocation failure)")
            # Memory never shrinks, so a size seen before is a safe lower bound for the check.
            if pointer + size > instance.known_memory_size:
                instance.known_memory_size = _capi.memory_data_size(context, memory)
                if pointer + size > instance.known_memory_size:
                    raise _CallError(
                        f"alloc returned {pointer}, outside memory for a {size}-byte request"
                    )
            ctypes.memmove(_capi.memory_data(context, memory) + pointer, request, size)
            code = caller.call_i32(instance.execute, 2, pointer, size)
            if instance.dealloc:
                caller.call_i32(instance.dealloc, 2, pointer, size)
        except _capi.CallFailure as failure:
            raise _CallError(self._describe(failure, instance)) from None
        return code

    # -- internals -------------------------------------------------------------------------

    def _arm(self, instance: _Instance) -> None:
        """Refill fuel and arm the wall-clock deadline: every call starts with the full budget."""
        _capi.context_set_fuel(instance.context, self.limits.max_fuel)
        _capi.context_set_epoch_deadline(instance.context, self._ticks)
        instance.state.deadline = time.monotonic() + self._timeout_s

    def _fuel_used(self, instance: _Instance) -> int:
        return self.limits.max_fuel - instance.caller.fuel_left()

    def _new_instance(self) -> _Instance:
        capture = OutputCapture(
            self.limits.max_output_bytes, self.context.redact if self.context.secrets else None
        )
        store = wasmtime.Store(self.host.engine)
        store.set_limits(
            memory_size=self.limits.max_memory_bytes, table_elements=self.limits.max_table_elements
        )
        data_dir = self.context.data_dir if Capability.FILESYSTEM in self.granted else None
        store.set_wasi(wasi_config(capture, data_dir))
        context = _capi.context_address(store)
        state = InstanceState(self.context, context, capture)
        self.host.host_functions.states[context] = state
        store.set_fuel(self.limits.max_fuel)
        store.set_epoch_deadline(self._ticks)
        try:
            instance = self.host.linker.instantiate(store, self.module)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
            del self.host.host_functions.states[context]
            raise PluginError(
                f"{self.name}: cannot instantiate: {self._describe_instantiation(exc)}"
            ) from None
        return _Instance(store, instance, state)

    def _describe_instantiation(self, exc: Exception) -> str:
        text = str(exc)
        lowered = text.lower()
        if "memory" in lowered and (
            "limit" in lowered or "minimum" in lowered or "grow" in lowered
        ):
            return f"memory limit {self.limits.describe_memory()} exceeded by the module's initial memory"
        if "table" in lowered and ("limit" in lowered or "minimum" in lowered or "grow" in lowered):
            return f"table limit of {self.limits.max_table_elements} elements exceeded by the module's initial table"
        if isinstance(exc, wasmtime.Trap):
            return self._describe_trap(exc.trap_code, exc.message)
        return text.strip().splitlines()[0] if text.strip() else "unknown error"

    def _run_init(self, instance: _Instance) -> Metadata:
        default = Metadata(name=self.name)
        try:
            self._arm(instance)
            if self.abi.has_initialize:
                instance.caller.call(instance.func("_initialize"), 0)
            init = instance.func("init")
            if not init:
                return default
            self._arm(instance)
            instance.caller.call(init, 1 if self.abi.init_returns_metadata else 0)
        except _capi.CallFailure as failure:
            raise _CallError(self._describe(failure, instance)) from None
        finally:
            instance.state.capture.take()
        if not self.abi.init_returns_metadata:
            return default
        packed = instance.caller.values[0].i64 & 0xFFFFFFFFFFFFFFFF
        pointer, length = packed >> 32, packed & 0xFFFFFFFF
        if length == 0:
            return default
        if length > self.limits.max_json_bytes:
            raise _CallError(
                f"metadata of {length} bytes is over the {self.limits.max_json_bytes}-byte limit"
            )
        if pointer + length > _capi.memory_data_size(instance.context, instance.memory):
            raise _CallError(f"init returned metadata at ({pointer}, {length}), outside memory")
        data = ctypes.string_at(
            _capi.memory_data(instance.context, instance.memory) + pointer, length
        )
        try:
            return parse_metadata(data, self.name)
        except MetadataError as exc:
            raise _CallError(str(exc)) from None

    def _describe(self, failure: _capi.CallFailure, instance: _Instance) -> str:
        reason = self._describe_trap(failure.trap_code, str(failure))
        size = _capi.memory_data_size(instance.context, instance.memory)
        if failure.trap_code not in (
            wasmtime.TrapCode.OUT_OF_FUEL,
            wasmtime.TrapCode.INTERRUPT,
        ) and (size + 65536 > self.limits.max_memory_bytes):
            reason += (
                f" (memory limit {self.limits.describe_memory()} exceeded: memory.grow was refused)"
            )
        return reason

    def _describe_trap(self, code: wasmtime.TrapCode | None, message: str) -> str:
        if code is wasmtime.TrapCode.OUT_OF_FUEL:
            return f"out of fuel after {self.limits.max_fuel} instructions"
        if code is wasmtime.TrapCode.INTERRUPT:
            return f"timed out: wall-clock limit of {self.limits.timeout_ms} ms exceeded"
        if code is wasmtime.TrapCode.STACK_OVERFLOW:
            return "call stack exhausted (unbounded recursion?)"
        lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
        cause = lines[-1] if lines else "unknown trap"
        return f"trapped: {cause.removeprefix('wasm trap: ')}"

    def _drop(self, instance: _Instance) -> None:
        self.host.host_functions.states.pop(instance.context, None)
        instance.state.close()
