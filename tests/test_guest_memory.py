"""Every buffer the host writes into guest memory, against plugins whose `alloc` and `dealloc`
lie: the request buffer a plugin with `dealloc` keeps across calls (SPEC §4), one `alloc` per
request without it, and host-call answers. Whatever the plugin does, the host reports it with the
plugin's name and reason, never writes outside the plugin's memory, and goes on serving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import wasmtime

from conductor.plugins.host.codes import Code
from conductor.plugins.limits import Limits
from conductor.plugins.loader import LoadedPlugin, LoadOptions, load_plugin
from conductor.plugins.runtime import MIN_REQUEST_BUFFER, PluginHost
from conductor.signing import SignaturePolicy, TrustStore
from tests.test_runtime_limits import REQUEST, assert_good_call_still_works

# A bump allocator that remembers the buffer it handed out last; `dealloc` checks it gets back
# exactly that buffer with its size. `execute` logs its request and returns 7 unless the request
# lies inside the buffer `alloc` handed out last. `shutdown` returns 0 when every buffer came back
# with its own size (1: one was never handed back, 2: a dealloc did not match).
PROBE = """(module
  (import "conductor" "log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (global $allocs (mut i32) (i32.const 0))
  (global $deallocs (mut i32) (i32.const 0))
  (global $live_ptr (mut i32) (i32.const 0))
  (global $live_size (mut i32) (i32.const 0))
  (global $mismatch (mut i32) (i32.const 0))
  (func (export "alloc") (param $size i32) (result i32)
    (local $p i32)
    (global.set $allocs (i32.add (global.get $allocs) (i32.const 1)))
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow
        (i32.add (i32.shr_u (local.get $size) (i32.const 16)) (i32.const 1))))))
    (global.set $live_ptr (local.get $p))
    (global.set $live_size (local.get $size))
    (local.get $p))
  DEALLOC
  (func (export "execute") (param $p i32) (param $len i32) (result i32)
    (drop (call $log (i32.const 1) (local.get $p) (local.get $len)))
    (if (result i32) (i32.and (i32.eq (local.get $p) (global.get $live_ptr))
                              (i32.le_u (local.get $len) (global.get $live_size)))
      (then (i32.const 0)) (else (i32.const 7))))
  (func (export "allocs") (result i32) (global.get $allocs))
  (func (export "deallocs") (result i32) (global.get $deallocs))
  (func (export "shutdown") (result i32)
    (i32.or (i32.shl (global.get $mismatch) (i32.const 1))
            (i32.ne (global.get $live_ptr) (i32.const 0)))))"""
PROBE_DEALLOC = """(func (export "dealloc") (param $p i32) (param $size i32)
    (global.set $deallocs (i32.add (global.get $deallocs) (i32.const 1)))
    (if (i32.or (i32.ne (local.get $p) (global.get $live_ptr))
                (i32.ne (local.get $size) (global.get $live_size)))
      (then (global.set $mismatch (i32.const 1))))
    (global.set $live_ptr (i32.const 0)))"""


def load_wat(host: PluginHost, tmp_path: Path, name: str, wat: str, **options: Any) -> LoadedPlugin:
    path = tmp_path / f"{name}.wasm"
    path.write_bytes(wasmtime.wat2wasm(wat))
    trust = TrustStore(tmp_path / "trust.toml")
    return load_plugin(host, path, LoadOptions(SignaturePolicy.UNSIGNED, trust, **options))


def request_of(size: int) -> bytes:
    """A JSON request of exactly `size` bytes (at least 10)."""
    return b'{"pad":"' + b"x" * (size - 10) + b'"}'


def counter(loaded: LoadedPlugin, name: str) -> int:
    instance = loaded.plugin._instance
    assert instance is not None
    export = instance.exports[name]
    assert isinstance(export, wasmtime.Func)
    result = export(instance.store)
    assert isinstance(result, int)
    return result


# -- the kept request buffer (plugins that export dealloc) --------------------------------------


def test_calls_of_one_size_reuse_one_buffer(host: PluginHost, tmp_path: Path) -> None:
    loaded = load_wat(host, tmp_path, "probe", PROBE.replace("DEALLOC", PROBE_DEALLOC))
    for _ in range(5):
        result = loaded.plugin.execute(REQUEST)
        assert result.ok, result.error
        assert result.output.logs == ((1, REQUEST.decode()),)
    assert (counter(loaded, "allocs"), counter(loaded, "deallocs")) == (1, 0)
    ended = loaded.plugin.shutdown()
    assert ended.error is None and ended.code == 0  # the buffer came back, with its size


def test_requests_growing_and_shrinking(host: PluginHost, tmp_path: Path) -> None:
    """A new buffer only for a larger request, the old one handed back first with its size;
    a smaller request goes into the kept buffer and the plugin sees exactly its bytes."""
    loaded = load_wat(host, tmp_path, "probe", PROBE.replace("DEALLOC", PROBE_DEALLOC))
    assert MIN_REQUEST_BUFFER == 256  # the steps below assume it
    steps = [  # (request size, allocs so far, deallocs so far)
        (100, 1, 0),  # 256
        (300, 2, 1),  # 512, the 256 handed back
        (200, 2, 1),
        (1000, 3, 2),  # 1024
        (50, 3, 2),
        (1024, 3, 2),
        (3000, 4, 3),  # 4096
        (10, 4, 3),
        (70_000, 5, 4),  # 131072: the plugin grows its memory
        (4000, 5, 4),
    ]
    for size, allocs, deallocs in steps:
        request = request_of(size)
        result = loaded.plugin.execute(request)
        assert result.ok, (size, result.code, result.error)
        assert result.output.logs[0] == (1, request.decode()[:4096])  # log lines are cut at 4 KiB
        assert (counter(loaded, "allocs"), counter(loaded, "deallocs")) == (allocs, deallocs)
    ended = loaded.plugin.shutdown()
    assert ended.error is None and ended.code == 0


def test_without_dealloc_every_request_gets_its_own_alloc(host: PluginHost, tmp_path: Path) -> None:
    loaded = load_wat(host, tmp_path, "probe", PROBE.replace("DEALLOC", ""))
    for calls, size in enumerate((100, 300, 200, 200), start=1):
        result = loaded.plugin.execute(request_of(size))
        assert result.ok, result.error
        assert counter(loaded, "allocs") == calls
    ended = loaded.plugin.shutdown()
    assert ended.error is None and ended.code == 1  # no dealloc: nothing could be handed back


@pytest.mark.parametrize("dealloc", [PROBE_DEALLOC, ""])
def test_an_empty_request_gets_a_buffer_too(host: PluginHost, tmp_path: Path, dealloc: str) -> None:
    loaded = load_wat(host, tmp_path, "probe", PROBE.replace("DEALLOC", dealloc))
    result = loaded.plugin.execute(b"")
    assert result.ok and counter(loaded, "allocs") == 1


# Honest for a small request; for a larger one: an address whose buffer would end past memory,
# 0, or a trap. Or an honest alloc with a dealloc that traps when its buffer is replaced.
LIAR = """(module
  (memory (export "memory") 1)
  (func (export "alloc") (param $size i32) (result i32)
    (if (i32.le_u (local.get $size) (i32.const 256)) (then (return (i32.const 1024))))
    LARGER)
  (func (export "dealloc") (param i32 i32) DEALLOC)
  (func (export "execute") (param i32 i32) (result i32) (i32.const 0)))"""


@pytest.mark.parametrize(
    ("larger", "dealloc", "reason"),
    [
        ("(i32.const 65000)", "", "alloc returned 65000, outside memory for a 1024-byte request"),
        ("(i32.const -16)", "", "alloc returned 4294967280, outside memory"),
        ("(i32.const 0)", "", "alloc returned 0 for a 1024-byte request (allocation failure)"),
        ("unreachable", "", "trapped: wasm `unreachable` instruction executed"),
        ("(i32.const 2048)", "unreachable", "trapped: wasm `unreachable` instruction executed"),
    ],
)
def test_an_alloc_not_trusted_on_a_later_larger_request(
    host: PluginHost, tmp_path: Path, larger: str, dealloc: str, reason: str
) -> None:
    wat = LIAR.replace("LARGER", larger).replace("DEALLOC", dealloc)
    loaded = load_wat(host, tmp_path, "liar", wat)
    assert loaded.plugin.execute(request_of(100)).ok  # a kept buffer at 1024, checked then
    result = loaded.plugin.execute(request_of(600))
    assert result.error is not None and result.error.startswith("liar: ")
    assert reason in result.error and result.discarded
    again = loaded.plugin.execute(request_of(100))  # a fresh instance, a fresh buffer
    assert again.ok, again.error
    assert_good_call_still_works(host, tmp_path)


# Breaks SPEC §4's rule: frees its request, then allocates a scratch buffer of its own, which a
# one-slot free list puts where the request was. Logs each request, and "clobbered" when the
# scratch it wrote last call no longer holds its marker.
FREES_REQUEST = """(module
  (import "conductor" "log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "clobbered")
  (global $heap (mut i32) (i32.const 1024))
  (global $free (mut i32) (i32.const 0))
  (global $scratch (mut i32) (i32.const 0))
  (func $alloc (export "alloc") (param $size i32) (result i32)
    (local $p i32)
    (if (global.get $free)
      (then (local.set $p (global.get $free)) (global.set $free (i32.const 0))
            (return (local.get $p))))
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (local.get $p))
  (func $dealloc (export "dealloc") (param $p i32) (param i32) (global.set $free (local.get $p)))
  (func (export "execute") (param $p i32) (param $len i32) (result i32)
    (if (global.get $scratch)
      (then (if (i32.ne (i32.load (global.get $scratch)) (i32.const 0x5eed))
        (then (drop (call $log (i32.const 2) (i32.const 0) (i32.const 9)))))))
    (drop (call $log (i32.const 1) (local.get $p) (local.get $len)))
    (call $dealloc (local.get $p) (local.get $len))
    (global.set $scratch (call $alloc (i32.const 16)))
    (i32.store (global.get $scratch) (i32.const 0x5eed))
    (i32.const 0)))"""


def test_a_plugin_that_frees_its_request_only_hurts_itself(
    host: PluginHost, tmp_path: Path
) -> None:
    loaded = load_wat(host, tmp_path, "frees_request", FREES_REQUEST)
    first = loaded.plugin.execute(REQUEST)
    assert first.ok and first.output.logs == ((1, REQUEST.decode()),)
    for _ in range(3):
        # The host still owns the buffer and writes the next request into it, over the scratch
        # the plugin put there: every request arrives whole, and only the plugin's data suffers.
        result = loaded.plugin.execute(REQUEST)
        assert result.ok, result.error
        assert result.output.logs == ((2, "clobbered"), (1, REQUEST.decode()))
    assert_good_call_still_works(host, tmp_path)


# -- answers of host functions, written into buffers from the guest's alloc --------------------

# The request's alloc (the first of each call) is honest; the answer's alloc does ANSWER.
# `execute` returns config_get's result: 0 for an answer, else the error code.
ANSWERS = """(module
  (import "conductor" "config_get" (func $config_get (param i32 i32) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "key")
  (global $requested (mut i32) (i32.const 0))
  (func (export "alloc") (param $size i32) (result i32)
    (if (i32.eqz (global.get $requested))
      (then (global.set $requested (i32.const 1)) (return (i32.const 1024))))
    ANSWER)
  (func (export "execute") (param i32 i32) (result i32)
    (local $answer i64)
    (local.set $answer (call $config_get (i32.const 0) (i32.const 3)))
    (global.set $requested (i32.const 0))
    (if (result i32) (i64.lt_s (local.get $answer) (i64.const 0))
      (then (i32.wrap_i64 (local.get $answer))) (else (i32.const 0)))))"""


@pytest.mark.parametrize(
    ("answer", "code"),
    [("(i32.const 4096)", Code.OK), ("(i32.const 0)", Code.NO_MEMORY)]
    + [(pointer, Code.FAULT) for pointer in ("(i32.const 65534)", "(i32.const -2)")],
)
def test_answers_go_only_where_alloc_may_put_them(
    host: PluginHost, tmp_path: Path, answer: str, code: Code
) -> None:
    loaded = load_wat(
        host, tmp_path, "answers", ANSWERS.replace("ANSWER", answer), plugin_config={"key": "value"}
    )
    for _ in range(2):
        result = loaded.plugin.execute(REQUEST)
        assert result.code == code and result.error is None and not result.discarded


def test_a_trap_in_alloc_during_a_host_call_discards_the_instance(
    host: PluginHost, tmp_path: Path
) -> None:
    loaded = load_wat(
        host,
        tmp_path,
        "answers",
        ANSWERS.replace("ANSWER", "unreachable"),
        plugin_config={"key": "value"},
    )
    result = loaded.plugin.execute(REQUEST)
    assert result.discarded and result.code is None
    assert result.error is not None
    assert result.error.startswith("answers: trapped in alloc during a host call")
    assert loaded.plugin._instance is None
    assert_good_call_still_works(host, tmp_path)


# An alloc that answers each answer's alloc with another host call, without end; `execute`
# returns the first error code one of them got.
NESTED = """(module
  (import "conductor" "config_get" (func $config_get (param i32 i32) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "key")
  (global $requested (mut i32) (i32.const 0))
  (global $error (mut i64) (i64.const 0))
  (func $ask (result i64)
    (local $answer i64)
    (local.set $answer (call $config_get (i32.const 0) (i32.const 3)))
    (if (i32.and (i64.lt_s (local.get $answer) (i64.const 0)) (i64.eqz (global.get $error)))
      (then (global.set $error (local.get $answer))))
    (local.get $answer))
  (func (export "alloc") (param $size i32) (result i32)
    (if (i32.eqz (global.get $requested))
      (then (global.set $requested (i32.const 1)) (return (i32.const 1024))))
    (drop (call $ask))
    (i32.const 4096))
  (func (export "execute") (param i32 i32) (result i32)
    (global.set $error (i64.const 0))
    (drop (call $ask))
    (global.set $requested (i32.const 0))
    (i32.wrap_i64 (global.get $error))))"""


def test_host_calls_nested_inside_alloc_stop_at_a_depth(host: PluginHost, tmp_path: Path) -> None:
    loaded = load_wat(host, tmp_path, "nested", NESTED, plugin_config={"key": "value"})
    for _ in range(2):
        result = loaded.plugin.execute(REQUEST)
        assert result.code == Code.FAULT and result.error is None and not result.discarded
    assert_good_call_still_works(host, tmp_path)


# A start function runs inside instantiation, before the host knows the instance: its host
# calls must be refused, not read memory the host has no handle on yet.
START_CALLS_HOST = """(module
  (import "conductor" "log" (func $log (param i32 i32 i32) (result i32)))
  (import "conductor" "config_get" (func $config_get (param i32 i32) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "key")
  (global $log (mut i32) (i32.const 1))
  (global $config (mut i64) (i64.const 1))
  (func $start
    (global.set $log (call $log (i32.const 1) (i32.const 0) (i32.const 3)))
    (global.set $config (call $config_get (i32.const 0) (i32.const 3))))
  (start $start)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "execute") (param i32 i32) (result i32)
    (if (result i32) (i32.and (i32.eq (global.get $log) (i32.const CODE))
                              (i64.eq (global.get $config) (i64.const CODE)))
      (then (i32.const 0)) (else (i32.const 1)))))"""


def test_host_calls_from_a_start_function_are_refused(host: PluginHost, tmp_path: Path) -> None:
    wat = START_CALLS_HOST.replace("CODE", str(int(Code.INVALID)))
    loaded = load_wat(host, tmp_path, "starter", wat, plugin_config={"key": "value"})
    result = loaded.plugin.execute(REQUEST)
    assert result.ok, (result.code, result.error)
    assert_good_call_still_works(host, tmp_path)


def test_limits_apply_to_the_buffer_calls(host: PluginHost, tmp_path: Path) -> None:
    """alloc runs within the call's budget: an alloc that loops runs out of fuel, by name."""
    wat = LIAR.replace("LARGER", "(loop $spin (br $spin)) (i32.const 0)").replace("DEALLOC", "")
    loaded = load_wat(host, tmp_path, "spinner", wat, limits=Limits(max_fuel=1_000_000))
    assert loaded.plugin.execute(request_of(100)).ok
    result = loaded.plugin.execute(request_of(600))
    assert result.error == "spinner: out of fuel after 1000000 instructions"
    assert result.discarded
