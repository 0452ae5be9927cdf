"""Explicit ownership of the plugin runtime: the host owns the engine, linker and epoch ticker,
each plugin owns its store. Both close (`close()` or `with`), refuse use after it with one clear
error, and a store is freed the moment its instance is discarded or its plugin dropped."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import pytest
import wasmtime

from conductor.errors import ClosedError
from conductor.plugins.limits import Limits
from conductor.plugins.runtime import CallResult, Plugin, PluginHost
from tests.plugin_helpers import fixture_path, load_unsigned
from tests.test_runtime_limits import REQUEST


def _store_is_closed(store: wasmtime.Store) -> bool:
    try:
        store.get_fuel()
    except ValueError as exc:
        return "already closed" in str(exc)
    return False


def _live_store(plugin: Plugin) -> wasmtime.Store:
    """The live instance's store (only the store: holding the instance would keep it alive)."""
    instance = plugin._instance
    assert instance is not None
    return instance.store


def test_a_host_closes_with_its_plugins_and_ticker(tmp_path: Path) -> None:
    with PluginHost(tmp_path / "cache") as host:
        loaded = load_unsigned(host, "good", tmp_path)
        assert loaded.plugin.execute(REQUEST).ok
        store = _live_store(loaded.plugin)
        ticker = host.ticker._thread
        assert ticker.is_alive()
    assert host.closed and loaded.plugin.closed
    assert not ticker.is_alive()
    assert _store_is_closed(store)
    assert host.host_functions.states == {}
    with pytest.raises(ClosedError, match=r"^good: plugin already closed$"):
        loaded.plugin.execute(REQUEST)
    wasm = fixture_path("good").read_bytes()
    with pytest.raises(ClosedError, match=r"^plugin host already closed$"):
        host.compile("good", wasm, b"x" * 32)
    host.close()  # idempotent


def test_a_plugin_closes_on_its_own(host: PluginHost, tmp_path: Path) -> None:
    wasm = fixture_path("good").read_bytes()
    module, _ = host.compile("good", wasm, b"g" * 32)
    with Plugin(host, "good", module, host.inspect(module), Limits()) as plugin:
        plugin.start()
        assert plugin.execute(REQUEST).ok
        store = _live_store(plugin)
    assert plugin.closed and not host.closed
    assert _store_is_closed(store)
    for use in (lambda: plugin.execute(REQUEST), plugin.start, plugin.shutdown):
        with pytest.raises(ClosedError, match="already closed"):
            use()
    plugin.close()  # idempotent
    assert isinstance(ClosedError("x"), ValueError)  # the convention of closed files and stores
    assert load_unsigned(host, "good", tmp_path).plugin.execute(REQUEST).ok  # the host serves on


def test_a_discarded_instance_frees_its_store_at_once(host: PluginHost, tmp_path: Path) -> None:
    loaded = load_unsigned(host, "good", tmp_path)
    first = loaded.plugin._instance
    assert first is not None
    loaded.plugin.discard()
    assert _store_is_closed(first.store)
    assert first.guest.context not in host.host_functions.states
    assert loaded.plugin.execute(REQUEST).ok  # a fresh instance
    trapping = load_unsigned(host, "trap", tmp_path)
    trapped = trapping.plugin._instance
    assert trapped is not None
    assert trapping.plugin.execute(REQUEST).discarded
    assert _store_is_closed(trapped.store)


def test_a_dropped_plugin_frees_its_store_without_close(host: PluginHost, tmp_path: Path) -> None:
    gc.disable()  # the store must go by reference counting, not whenever a collection runs
    try:
        loaded = load_unsigned(host, "good", tmp_path)
        instance = loaded.plugin._instance
        assert instance is not None
        store, context = instance.store, instance.guest.context
        del instance
        del loaded
        assert _store_is_closed(store)
        assert context not in host.host_functions.states
    finally:
        gc.enable()


def test_shutdown_unloads_but_keeps_the_plugin_usable(host: PluginHost, tmp_path: Path) -> None:
    loaded = load_unsigned(host, "good", tmp_path)
    instance = loaded.plugin._instance
    assert instance is not None
    ended = loaded.plugin.shutdown()
    assert ended.error is None and ended.discarded and _store_is_closed(instance.store)
    assert not loaded.plugin.closed
    assert loaded.plugin.execute(REQUEST).ok  # starts afresh, runs init again


def test_closing_the_host_while_a_call_runs_on_another_thread(tmp_path: Path) -> None:
    """An engine that gave up waiting for a worker closes the host anyway: the running call
    keeps its store until it returns (here: out of fuel, as the deadline no longer ticks), and
    the store is freed then, on the worker's thread."""
    host = PluginHost(tmp_path / "cache")
    loaded = load_unsigned(host, "infinite_loop", tmp_path, Limits(max_fuel=300_000_000))
    store = _live_store(loaded.plugin)
    calling = threading.Event()
    outcome: list[object] = []

    def worker() -> None:
        calling.set()
        try:
            outcome.append(loaded.plugin.execute(REQUEST))
        except ClosedError as exc:  # only if the host closed before the call began
            outcome.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    assert calling.wait(10)
    host.close()
    thread.join(60)
    assert not thread.is_alive()
    (result,) = outcome
    if isinstance(result, CallResult):
        assert result.error == "infinite_loop: out of fuel after 300000000 instructions"
    assert loaded.plugin.closed and _store_is_closed(store)
