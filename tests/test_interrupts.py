"""Interrupting the plugin call the main thread is in (`PluginHost.interrupt`): it stops at
once, not after its own 30 s wall-clock limit. Plugins built here from WAT."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest
import wasmtime

from conductor.errors import Interrupted, PluginError
from conductor.plugins.limits import Limits
from conductor.plugins.loader import LoadedPlugin, LoadOptions, load_plugin
from conductor.plugins.runtime import PluginHost
from conductor.signing import SignaturePolicy, TrustStore

LIMIT_MS = 30_000  # each loop would run this long; every exit below comes far sooner
FUEL = 100_000_000_000_000  # never the limit that ends a loop here
ENOUGH_S = 5.0  # a generous bound for "at once" on a busy 2-core machine
LOOP = "(loop $l (br $l))"


def module(init: str = "", execute: str = "") -> bytes:
    """A plugin whose `init` and `execute` run the given instructions (then return)."""
    return wasmtime.wat2wasm(f"""
    (module
      (import "conductor" "log" (func $log (param i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "spin")
      (func (export "alloc") (param i32) (result i32) (i32.const 1024))
      (func (export "init") {init})
      (func (export "execute") (param i32 i32) (result i32) {execute} (i32.const 0)))
    """)


def plugin(tmp_path: Path, name: str, wasm: bytes) -> Path:
    path = tmp_path / f"{name}.wasm"
    path.write_bytes(wasm)
    return path


def _load(host: PluginHost, path: Path, timeout_ms: int) -> LoadedPlugin:
    options = LoadOptions(
        policy=SignaturePolicy.UNSIGNED,
        trust_store=TrustStore(path.parent / "trust.toml"),
        limits=Limits(max_fuel=FUEL, timeout_ms=timeout_ms),
    )
    return load_plugin(host, path, options)


def test_interrupt_stops_the_main_threads_call_and_leaves_the_others_to_their_limits(
    tmp_path: Path,
) -> None:
    path = plugin(tmp_path, "spin_init", module(init=LOOP))
    with PluginHost(None, interruptible=True) as host:  # no cache: both threads compile
        other: list[BaseException] = []

        def load_elsewhere() -> None:
            try:
                _load(host, path, timeout_ms=1500)
            except BaseException as exc:
                other.append(exc)

        elsewhere = threading.Thread(target=load_elsewhere)
        elsewhere.start()
        threading.Timer(0.5, host.interrupt, [signal.SIGINT]).start()
        started = time.monotonic()
        with pytest.raises(Interrupted) as stopped:
            _load(host, path, timeout_ms=LIMIT_MS)
        assert time.monotonic() - started < ENOUGH_S
        elsewhere.join()
    assert stopped.value.diagnostics() == "spin_init: init interrupted by SIGINT"
    assert stopped.value.exit_code == 130
    # The call on the other thread polled too, and still ran to its own limit.
    assert [type(exc) for exc in other] == [PluginError]
    assert "timed out: wall-clock limit of 1500 ms exceeded" in str(other[0])
