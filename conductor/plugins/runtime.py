"""The plugin runtime: one shared engine, and per plugin a store with its own warm instance.

`PluginHost` owns what every plugin shares (engine, linker with WASI and host functions, epoch
ticker, module cache). `Plugin` owns one module and at most one live instance (its store); a
trap, exhausted limit or broken ABI result discards the instance, and the next call starts a
fresh one. Both are closed explicitly (`close()` or `with`); closing the host closes its plugins.
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import wasmtime

from conductor._owned import Owned
from conductor.errors import ClosedError, Interrupted, MetadataError, PluginError
from conductor.plugins import _capi
from conductor.plugins._ticker import EpochTicker
from conductor.plugins.abi import (
    HOST_MODULE,
    Metadata,
    ModuleAbi,
    inspect_module,
    parse_metadata,
)
from conductor.plugins.cache import ModuleCache
from conductor.plugins.capabilities import Capability
from conductor.plugins.context import PluginContext
from conductor.plugins.host import HostLinker
from conductor.plugins.host._state import InstanceState
from conductor.plugins.limits import Limits
from conductor.plugins.sandbox import CapturedOutput, OutputCapture, wasi_config

EPOCH_TICK_MS = 5
INTERRUPT_POLL_MS = 50  # how soon an interruptible host's call on the main thread sees interrupt()
MAX_WASM_STACK = 512 * 1024
MIN_REQUEST_BUFFER = 256  # a kept request buffer grows in powers of two from here
_log = logging.getLogger("conductor.plugins")
# One clock for a call's wall time and its deadline, which host functions compare with
# time.monotonic(): one read per call instead of two.
_clock = time.monotonic
_MAIN_THREAD = threading.main_thread().ident


class PluginHost(Owned):
    """Everything plugins share: engine, linker, epoch ticker and module cache.

    Create one per process and close it at the end (`close()` or `with`); closing it closes every
    plugin made on it (see `Plugin.close`). A call still running then keeps its store until it
    returns, but no longer has a wall-clock deadline (fuel still bounds it).

    An `interruptible` host's calls poll (`_capi.Poll`) so that `interrupt()` can stop the one
    the main thread is making: only for an owner that handles SIGINT and SIGTERM itself, with
    handlers that call `interrupt()` and never raise inside a guest call (`interruptible()` in
    conductor.plugins.interrupts installs such handlers for a block).
    """

    def __init__(self, cache_dir: Path | None = None, *, interruptible: bool = False) -> None:
        self.engine = wasmtime.Engine(_capi.engine_config(MAX_WASM_STACK))
        self.host_functions = HostLinker()
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()
        self.host_functions.define_all(self.linker, HOST_MODULE)
        fingerprint = (
            f"wasmtime-{importlib.metadata.version('wasmtime')};fuel;epoch;fixed-memory;"
            f"stack={MAX_WASM_STACK}"
        )
        self.cache = ModuleCache(cache_dir, fingerprint)
        self.ticker = EpochTicker(self.engine, EPOCH_TICK_MS)
        self.interrupted: int | None = None  # the signal `interrupt` was called for
        self.poll = (
            _capi.Poll(INTERRUPT_POLL_MS // EPOCH_TICK_MS, EPOCH_TICK_MS / 1000, self._stops_call)
            if interruptible
            else None
        )
        self._plugins: weakref.WeakSet[Plugin] = weakref.WeakSet()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("plugin host already closed")

    def compile(self, name: str, wasm: bytes, digest: bytes) -> tuple[wasmtime.Module, bool]:
        """Compile (or take from the cache) the exact bytes that were verified; True if cached.

        `digest` is the SHA-256 of `wasm`: the cache hands back only an entry authenticated for it.
        """
        self._check_open()
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

    def interrupt(self, signum: int) -> None:
        """Stop the call the main thread is making, within INTERRUPT_POLL_MS, and any it makes
        later: each raises Interrupted. For a handler of `signum`: Python runs those on the main
        thread only, between bytecodes, so while that thread is inside a guest call nothing else
        can stop it before its deadline. Calls on other threads (the engine's workers) go on
        under their own limits. Needs an interruptible host."""
        if self.interrupted is None:
            self.interrupted = signum

    def _stops_call(self) -> bool:
        return self.interrupted is not None and threading.get_ident() == _MAIN_THREAD

    def inspect(self, module: wasmtime.Module) -> ModuleAbi:
        return inspect_module(module, self.host_functions.signatures())

    def _adopt(self, plugin: Plugin) -> None:
        self._check_open()
        self._plugins.add(plugin)

    def _forget(self, plugin: Plugin) -> None:
        self._plugins.discard(plugin)

    def close(self) -> None:
        """Close every plugin still open, stop the epoch ticker, free the linker and engine.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        for plugin in list(self._plugins):
            plugin.close()
        self.ticker.stop()
        self.linker.close()
        self.engine.close()


@dataclass(slots=True)
class CallResult:
    """The outcome of one plugin call (or of a native action, which has no fuel), for the log,
    the live view and `--json`."""

    plugin: str  # the plugin's name, or the native action's label
    code: int | None
    error: str | None
    fuel: int | None  # instructions the plugin used; None for a native action
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
    """One live instance: its guest (store, memory, exports), its host-side state and, for a
    plugin that exports `dealloc`, the request buffer the host keeps across calls (SPEC §4).

    Its store is freed by `close()`, or when the last reference to the instance goes: a plugin
    holds one, and so does a call while it runs.
    """

    __slots__ = (
        "__weakref__",
        "_finalizer",
        "buffer",
        "capacity",
        "dealloc",
        "execute",
        "exports",
        "guest",
        "state",
        "store",
    )

    def __init__(
        self,
        guest: _capi.Guest,
        state: InstanceState,
        store: wasmtime.Store,
        instance: wasmtime.Instance,
        registry: dict[int, InstanceState],
    ) -> None:
        self.guest = guest
        self.state = state
        # wasmtime's own objects, for callers that want an export the slow, checked way.
        self.store = store
        self.exports = instance.exports(store)
        self.execute = guest.function("execute")
        self.dealloc = guest.function("dealloc")
        # The kept request buffer: its address and size, -1 while there is none (so even an
        # empty request gets one), which is always the case without `dealloc`.
        self.buffer = 0
        self.capacity = -1
        registry[guest.context] = state
        self._finalizer = weakref.finalize(self, _release, guest, state, registry)
        self._finalizer.atexit = False  # at exit a worker may still be inside the store

    def close(self) -> None:
        self._finalizer()


def _release(guest: _capi.Guest, state: InstanceState, registry: dict[int, InstanceState]) -> None:
    """Unregister the instance from the host functions, close its WebSockets, free its store."""
    registry.pop(guest.context, None)
    state.close()
    guest.close()


class Plugin(Owned):
    """A loaded plugin: its module, limits and grants, and at most one warm instance.

    Not thread-safe: the engine's per-plugin worker is the only caller, which also keeps the store
    on one thread as wasmtime-py requires. `close()` (or `with`) frees the instance's store;
    `shutdown()` first lets the plugin run its own `shutdown` export.
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
        self._closed = False
        self._max_request = limits.max_json_bytes
        self._ticks = host.ticker.ticks_for(limits.timeout_ms)
        self._timeout_s = limits.timeout_ms / 1000.0
        host._adopt(self)

    @property
    def granted(self) -> frozenset[Capability]:
        return self.context.granted

    @property
    def closed(self) -> bool:
        return self._closed

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Metadata:
        """Instantiate and run `_initialize` and `init`; raise PluginError naming the cause."""
        if self._closed:
            raise ClosedError(f"{self.name}: plugin already closed")
        instance = self._new_instance()
        try:
            self.metadata = self._run_init(instance)
        except _CallError as exc:
            instance.close()
            raise PluginError(f"{self.name}: init failed: {exc}") from None
        except Interrupted:
            instance.close()
            raise
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
        """Drop the live instance (its store is freed); the next call starts a fresh one."""
        instance, self._instance = self._instance, None
        if instance is not None:
            instance.close()

    def shutdown(self) -> CallResult:
        """Hand back the kept request buffer (`dealloc`), call `shutdown` (if exported) on the
        live instance, and unload it."""
        if self._closed:
            raise ClosedError(f"{self.name}: plugin already closed")
        instance = self._instance
        started = time.perf_counter()
        if instance is None:
            return CallResult(self.name, 0, None, 0, 0.0)
        guest = instance.guest
        func = guest.function("shutdown")
        error, code = None, 0
        try:
            if instance.capacity >= 0:
                self._arm(instance)
                guest.call(instance.dealloc, 2, instance.buffer, instance.capacity)
                instance.buffer, instance.capacity = 0, -1
            if func:
                self._arm(instance)
                returns_code = bool(self.abi.shutdown_returns_code)
                result = guest.call(func, 1 if returns_code else 0)
                code = result if returns_code else 0
        except _capi.CallInterrupted:
            self.discard()
            raise self._interrupted("shutdown") from None
        except _capi.CallFailure as failure:
            error = f"shutdown failed: {self._describe(failure, instance)}"
        fuel = guest.fuel_used()
        output = instance.state.capture.take()
        self.discard()
        return CallResult(
            self.name, code, error, fuel, (time.perf_counter() - started) * 1000, output, True
        )

    def close(self) -> None:
        """Free the live instance's store without calling into the plugin; idempotent. Any later
        use raises ClosedError.

        Safe from any thread: it drops the plugin's reference to the instance, and the instance
        frees its store when the last reference goes, which is at once unless a call is still
        running on the worker's thread (an engine that gave up waiting for it): then when that
        call returns, on that thread. `discard` frees it at once and is for the calling thread.
        """
        if self._closed:
            return
        self._closed = True
        self._instance = None
        self.host._forget(self)

    # -- calls -----------------------------------------------------------------------------

    def execute(self, request: bytes) -> CallResult:
        """Run `execute` once with `request` (UTF-8 JSON); never raises for plugin misbehaviour
        (an interrupt is none: it raises Interrupted).

        The hot path: per call only what the call needs (refuel, deadline, copy, call, fuel
        read); a plugin that exports `dealloc` gets its request in the buffer kept from the
        last call unless this request is larger.
        """
        started = _clock()
        instance = self._instance
        if instance is None:
            try:
                self.start()
            except PluginError as exc:
                return CallResult(
                    self.name, None, exc.diagnostics(), 0, (_clock() - started) * 1000
                )
            instance = self._instance
            assert instance is not None
        guest, state = instance.guest, instance.state
        size = len(request)
        code: int | None = None
        error: str | None = None
        try:
            if size > self._max_request:
                raise _CallError(
                    f"request of {size} bytes is over the {self._max_request}-byte limit"
                )
            guest.deadline = started + self._timeout_s
            if size <= instance.capacity:
                code = guest.run(instance.execute, instance.buffer, request)
            else:  # arms, then allocs: alloc and execute share the call's budget
                pointer = self._new_buffer(instance, size)
                code = guest.run(instance.execute, pointer, request, armed=True)
            fuel = guest.spent
            if state.discard_reason:
                raise _CallError(state.discard_reason)
        except _capi.CallInterrupted:
            self.discard()
            raise self._interrupted("execute") from None
        except _capi.CallFailure as failure:
            code, error = None, f"{self.name}: {self._describe(failure, instance)}"
            fuel = guest.fuel_used()
        except (_CallError, _capi.AllocFailure, _capi.OutOfBounds) as exc:
            code, error = None, f"{self.name}: {exc}"
            fuel = guest.fuel_used()
        output = state.capture.take()
        if error is not None:
            self.discard()
            _log.warning("%s (instance discarded)", error)
        return CallResult(
            self.name, code, error, fuel, (_clock() - started) * 1000, output, error is not None
        )

    def _new_buffer(self, instance: _Instance, size: int) -> int:
        """Where a request goes when the kept buffer (if any) is too small: without `dealloc` a
        fresh `alloc` of its size, every call; with it, a new kept buffer (the old one handed
        back first), sized to the next power of two so slowly growing requests rarely move it.
        Arms the call's budget first: these calls are part of it."""
        guest = instance.guest
        self._arm(instance)
        if not instance.dealloc:
            return guest.alloc(size, "request")
        if instance.capacity >= 0:
            old_buffer, old_capacity = instance.buffer, instance.capacity
            instance.buffer, instance.capacity = 0, -1
            guest.call(instance.dealloc, 2, old_buffer, old_capacity)
        capacity = max(MIN_REQUEST_BUFFER, 1 << (size - 1).bit_length())
        capacity = max(size, min(capacity, self.limits.max_json_bytes))
        instance.buffer = guest.alloc(capacity, "request")
        instance.capacity = capacity
        return instance.buffer

    # -- internals -------------------------------------------------------------------------

    def _arm(self, instance: _Instance) -> None:
        """Refill fuel and arm the wall-clock deadline: every call starts with the full budget."""
        instance.guest.arm()
        instance.guest.deadline = time.monotonic() + self._timeout_s

    def _new_instance(self) -> _Instance:
        self.host._check_open()
        capture = OutputCapture(
            self.limits.max_output_bytes, self.context.redact if self.context.secrets else None
        )
        store = wasmtime.Store(self.host.engine)
        try:
            store.set_limits(
                memory_size=self.limits.max_memory_bytes,
                table_elements=self.limits.max_table_elements,
            )
            data_dir = self.context.data_dir if Capability.FILESYSTEM in self.granted else None
            store.set_wasi(wasi_config(capture, data_dir))
            store.set_fuel(self.limits.max_fuel)
            store.set_epoch_deadline(self._ticks)
            instance = self.host.linker.instantiate(store, self.module)
            guest = _capi.Guest(store, instance, self.limits.max_fuel, self._ticks, self.host.poll)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
            store.close()
            raise PluginError(
                f"{self.name}: cannot instantiate: {self._describe_instantiation(exc)}"
            ) from None
        except BaseException:
            store.close()
            raise
        state = InstanceState(self.context, guest, capture)
        return _Instance(guest, state, store, instance, self.host.host_functions.states)

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
        guest = instance.guest
        packed = 0
        try:
            self._arm(instance)
            if self.abi.has_initialize:
                guest.call(guest.function("_initialize"), 0)
            init = guest.function("init")
            if not init:
                return default
            self._arm(instance)
            if self.abi.init_returns_metadata:
                packed = guest.call_i64(init) & 0xFFFFFFFFFFFFFFFF
            else:
                guest.call(init, 0)
        except _capi.CallInterrupted:
            raise self._interrupted("init") from None
        except _capi.CallFailure as failure:
            raise _CallError(self._describe(failure, instance)) from None
        finally:
            instance.state.capture.take()
        pointer, length = packed >> 32, packed & 0xFFFFFFFF
        if length == 0:
            return default
        if length > self.limits.max_json_bytes:
            raise _CallError(
                f"metadata of {length} bytes is over the {self.limits.max_json_bytes}-byte limit"
            )
        try:
            data = guest.read(pointer, length)
        except _capi.OutOfBounds:
            raise _CallError(
                f"init returned metadata at ({pointer}, {length}), outside memory"
            ) from None
        try:
            return parse_metadata(data, self.name)
        except MetadataError as exc:
            raise _CallError(str(exc)) from None

    def _interrupted(self, call: str) -> Interrupted:
        assert self.host.interrupted is not None  # only interrupt() stops a call
        return Interrupted(self.host.interrupted, where=self.name, what=call)

    def _describe(self, failure: _capi.CallFailure, instance: _Instance) -> str:
        reason = self._describe_trap(failure.trap_code, str(failure))
        size = instance.guest.memory_size()
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
