"""Every limit and ABI rule against its hostile fixture, each followed by a good call on the
same host: a misbehaving plugin is reported and nothing else stops."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conductor.errors import PluginError
from conductor.plugins.abi import EventContext, RequestTemplate
from conductor.plugins.host.codes import Code
from conductor.plugins.limits import Limits
from conductor.plugins.runtime import PluginHost
from tests.plugin_helpers import load_unsigned

REQUEST = RequestTemplate({"action": "test"}).render(
    EventContext("Note", note=60, velocity=100, channel=0)
)


def assert_good_call_still_works(host: PluginHost, tmp_path: Path) -> None:
    good = load_unsigned(host, "good", tmp_path)
    result = good.plugin.execute(REQUEST)
    assert result.ok, result.error
    assert result.output.logs == ((1, REQUEST.decode()),)


def test_good_plugin_lifecycle(host: PluginHost, tmp_path: Path) -> None:
    loaded = load_unsigned(host, "good", tmp_path)
    assert loaded.metadata.name == "good" and loaded.metadata.version == "1.2.3"
    for _ in range(3):
        result = loaded.plugin.execute(REQUEST)
        assert result.ok and result.code == 0 and result.fuel > 0
    # the instance stays warm: its own call counter went up across calls
    exports = loaded.plugin._instance.exports
    assert exports["calls"](loaded.plugin._instance.store) == 3
    assert loaded.plugin.shutdown().error is None


def test_request_json_is_params_plus_context(host: PluginHost, tmp_path: Path) -> None:
    loaded = load_unsigned(host, "good", tmp_path)
    result = loaded.plugin.execute(REQUEST)
    document = json.loads(result.output.logs[0][1])
    assert document["action"] == "test"
    assert document["context"] == {
        "trigger": "Note",
        "note": 60,
        "velocity": 100,
        "channel": 0,
        "cc": None,
        "value": None,
        "current_mode": 0,
        "mode": "Default",
        "timestamp": 0,
        "device": "",
    }
    with pytest.raises(ValueError, match="reserved"):
        RequestTemplate({"context": 1})


def test_infinite_loop_runs_out_of_fuel(host: PluginHost, tmp_path: Path) -> None:
    loaded = load_unsigned(host, "infinite_loop", tmp_path, Limits(max_fuel=2_000_000))
    result = loaded.plugin.execute(REQUEST)
    assert result.error == "infinite_loop: out of fuel after 2000000 instructions"
    assert result.discarded
    assert_good_call_still_works(host, tmp_path)


def test_infinite_loop_hits_the_wall_clock_deadline(host: PluginHost, tmp_path: Path) -> None:
    loaded = load_unsigned(host, "infinite_loop", tmp_path, Limits(max_fuel=10**15, timeout_ms=100))
    result = loaded.plugin.execute(REQUEST)
    assert result.error is not None and "wall-clock limit of 100 ms" in result.error
    assert 90 <= result.wall_ms < 2000
    assert_good_call_still_works(host, tmp_path)


def test_huge_initial_memory_is_refused_at_load(host: PluginHost, tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="memory limit 128 MiB exceeded"):
        load_unsigned(host, "huge_memory", tmp_path)
    assert_good_call_still_works(host, tmp_path)


def test_memory_grow_bomb_stops_at_the_limit(host: PluginHost, tmp_path: Path) -> None:
    loaded = load_unsigned(
        host, "memory_grow_bomb", tmp_path, Limits(max_memory_bytes=8 * 1024 * 1024)
    )
    result = loaded.plugin.execute(REQUEST)
    assert result.error is not None and "memory limit 8 MiB exceeded" in result.error
    assert_good_call_still_works(host, tmp_path)


def test_table_growth_bomb_is_refused(host: PluginHost, tmp_path: Path) -> None:
    loaded = load_unsigned(host, "table_grow_bomb", tmp_path, Limits(max_table_elements=5_000))
    result = loaded.plugin.execute(REQUEST)
    # table.grow returned -1 at the limit and the plugin gave up; far less fuel than unbounded growth
    assert result.error is not None and "unreachable" in result.error
    assert result.fuel < 100_000
    assert_good_call_still_works(host, tmp_path)


def test_unbounded_recursion(host: PluginHost, tmp_path: Path) -> None:
    loaded = load_unsigned(host, "recursion", tmp_path)
    result = loaded.plugin.execute(REQUEST)
    assert result.error == "recursion: call stack exhausted (unbounded recursion?)"
    assert_good_call_still_works(host, tmp_path)


def test_trap_discards_the_instance_and_the_next_call_starts_afresh(
    host: PluginHost, tmp_path: Path
) -> None:
    loaded = load_unsigned(host, "trap", tmp_path)
    first = loaded.plugin.execute(REQUEST)
    assert first.discarded and "unreachable" in (first.error or "")
    assert loaded.plugin._instance is None
    second = loaded.plugin.execute(REQUEST)
    assert "unreachable" in (second.error or "")  # a fresh instance, same plugin, same verdict
    assert_good_call_still_works(host, tmp_path)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("bad_pointer", "alloc returned 4294967280, outside memory"),
        ("alloc_zero", "alloc returned 0 for a"),
    ],
)
def test_broken_alloc_results(host: PluginHost, tmp_path: Path, name: str, reason: str) -> None:
    loaded = load_unsigned(host, name, tmp_path)
    result = loaded.plugin.execute(REQUEST)
    assert result.error is not None and reason in result.error and result.discarded
    assert_good_call_still_works(host, tmp_path)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("garbage_metadata", "metadata is not UTF-8"),
        ("metadata_out_of_bounds", "outside memory"),
    ],
)
def test_broken_metadata_fails_the_load(
    host: PluginHost, tmp_path: Path, name: str, reason: str
) -> None:
    with pytest.raises(PluginError, match=reason) as caught:
        load_unsigned(host, name, tmp_path)
    assert caught.value.diagnostics().startswith(f"{name}: init failed")
    assert_good_call_still_works(host, tmp_path)


def test_megabytes_of_output_are_capped(host: PluginHost, tmp_path: Path) -> None:
    loaded = load_unsigned(host, "chatty", tmp_path)
    result = loaded.plugin.execute(REQUEST)
    assert result.ok
    assert len(result.output.stdout) + len(result.output.stderr) == 64 * 1024
    assert result.output.dropped == 5 * 1024 * 1024 - 64 * 1024
    assert_good_call_still_works(host, tmp_path)


def test_bad_pointers_to_log_are_faults_not_crashes(host: PluginHost, tmp_path: Path) -> None:
    loaded = load_unsigned(host, "log_bad_pointer", tmp_path)
    result = loaded.plugin.execute(REQUEST)
    assert result.code == Code.FAULT and result.error is None
    assert_good_call_still_works(host, tmp_path)


def test_oversized_request_is_refused(host: PluginHost, tmp_path: Path) -> None:
    loaded = load_unsigned(host, "good", tmp_path, Limits(max_json_bytes=200))
    result = loaded.plugin.execute(b"{" + b" " * 300 + b"}")
    assert result.error is not None and "over the 200-byte limit" in result.error


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("unknown_import", "unknown import env.system"),
        ("start_only", "exports only _start"),
    ],
)
def test_abi_violations_are_refused_by_name(
    host: PluginHost, tmp_path: Path, name: str, reason: str
) -> None:
    with pytest.raises(PluginError, match=reason):
        load_unsigned(host, name, tmp_path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"\0asm\1\0\0\0\1\5", "not a valid WebAssembly module"),
        (bytes(range(256)) * 3, "no \\\\0asm header"),
        (b"(module)", "no \\\\0asm header"),
    ],
)
def test_malformed_modules_get_a_reason(
    host: PluginHost, tmp_path: Path, content: bytes, reason: str
) -> None:
    with pytest.raises(PluginError, match=reason):
        host.compile("broken", content, b"x" * 32)


def test_second_load_uses_the_module_cache_and_ignores_a_corrupt_entry(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for expected_cached in (False, True):
        host = PluginHost(cache)
        try:
            assert load_unsigned(host, "good", tmp_path).compiled_from_cache is expected_cached
        finally:
            host.close()
    (entry,) = cache.glob("*.cwasm")
    entry.write_bytes(entry.read_bytes()[:-100] + b"\0" * 100)
    host = PluginHost(cache)
    try:
        loaded = load_unsigned(host, "good", tmp_path)
        assert loaded.compiled_from_cache is False and loaded.plugin.execute(REQUEST).ok
    finally:
        host.close()
