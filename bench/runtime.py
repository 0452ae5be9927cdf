"""Plugin runtime benchmark: the raw C-API call floor against our execute path (a plugin with
`dealloc`, whose request buffer the host keeps, and one without, which gets an `alloc` per
request), the event path (render the request, then execute), loads, first execute and memory per
plugin. Every ratio is against the floor measured in the same run, rounds interleaved."""

from __future__ import annotations

import gc
import hashlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import wasmtime

from bench._stats import rss_kib, sample_us, summary
from conductor.plugins.abi import EventContext, RequestTemplate
from conductor.plugins.limits import Limits
from conductor.plugins.loader import LoadOptions, load_plugin
from conductor.plugins.runtime import Plugin, PluginHost
from conductor.signing import SignaturePolicy, TrustStore

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "plugins"
TRIVIAL = FIXTURES / "trivial.wasm"  # no dealloc: an alloc per request
KEPT = FIXTURES / "trivial_dealloc.wasm"  # exports dealloc: one kept request buffer
BUFFER = 65536  # where both fixtures' alloc puts every buffer
CALLS = 20_000


def _options(work: Path) -> LoadOptions:
    return LoadOptions(SignaturePolicy.UNSIGNED, TrustStore(work / "trust.toml"), Limits())


def run() -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="conductor-bench-"))
    try:
        return _run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(work: Path) -> dict[str, Any]:
    import logging

    logging.getLogger("conductor").setLevel(logging.ERROR)
    results: dict[str, Any] = {}
    host = PluginHost(work / "cache")
    wasm = TRIVIAL.read_bytes()
    digest = hashlib.sha256(wasm).digest()

    # (a) cold and warm load: compile from bytes vs deserialize from the module cache
    cold = []
    for _ in range(20):
        started = time.perf_counter()
        host.compile(
            "trivial", wasm, hashlib.sha256(wasm + str(time.perf_counter_ns()).encode()).digest()
        )
        cold.append((time.perf_counter() - started) * 1e6)
    host.compile("trivial", wasm, digest)
    warm = sample_us(lambda: host.cache.load(host.engine, digest), 200, warmup=5)
    results["load_cold_compile"] = summary(cold)
    results["load_warm_cache"] = summary(warm)

    # (b) first execute after load (fresh plugin each time)
    request = RequestTemplate({"action": "play"}).render(
        EventContext("Note", note=60, velocity=100, timestamp=1)
    )
    first = []
    for _ in range(200):
        module, _ = host.compile("trivial", wasm, digest)
        with Plugin(host, "trivial", module, host.inspect(module), Limits()) as plugin:
            plugin.start()
            started = time.perf_counter()
            plugin.execute(request)
            first.append((time.perf_counter() - started) * 1e6)
    results["first_execute"] = summary(first)

    # (c) the floor: one wasmtime_func_call_unchecked of `execute` with prebuilt arguments
    kept = load_plugin(host, KEPT, _options(work)).plugin
    per_call = load_plugin(host, TRIVIAL, _options(work)).plugin
    kept.execute(request)
    instance = kept._instance
    assert instance is not None
    guest, execute, size = instance.guest, instance.execute, len(request)

    def floor() -> None:
        guest.call(execute, 2, BUFFER, size)

    # (d) our execute path, request already rendered: kept buffer, and an alloc per request
    def execute_kept() -> None:
        if kept.execute(request).code != 0:
            raise RuntimeError("execute failed")

    def execute_alloc() -> None:
        if per_call.execute(request).code != 0:
            raise RuntimeError("execute failed")

    # (e) the event path the engine runs: render the request JSON from the event, then execute
    template = RequestTemplate({"action": "play"})

    def event() -> None:
        context = EventContext(
            "Note", note=60, velocity=100, channel=0, timestamp=time.time_ns() // 1_000_000
        )
        if kept.execute(template.render(context)).code != 0:
            raise RuntimeError("execute failed")

    measured: dict[str, Any] = {
        "execute_floor_raw_call": floor,
        "execute_kept_buffer": execute_kept,
        "execute_alloc_per_call": execute_alloc,
        "event_render_and_execute": event,
    }
    samples: dict[str, list[float]] = {name: [] for name in measured}
    for _ in range(4):  # interleaved rounds, so all see the same machine noise
        for name, function in measured.items():
            samples[name] += sample_us(function, CALLS // 4)
    for name in measured:
        results[name] = summary(samples[name])
    floor_p50 = results["execute_floor_raw_call"]["p50_us"]
    for name, key in (
        ("execute_kept_buffer", "ratio_kept_buffer_to_floor_p50"),
        ("execute_alloc_per_call", "ratio_alloc_per_call_to_floor_p50"),
        ("event_render_and_execute", "ratio_event_to_floor_p50"),
    ):
        results[key] = round(results[name]["p50_us"] / floor_p50, 2)
    stock = instance.exports["execute"]
    assert isinstance(stock, wasmtime.Func)
    results["execute_stock_func_call"] = summary(
        sample_us(lambda: stock(instance.store, BUFFER, size), 5_000)
    )

    # (f) resident memory added per loaded plugin, 20 plugins
    gc.collect()
    before = rss_kib()
    keep = []
    for index in range(20):
        copy = work / f"trivial_{index}.wasm"
        shutil.copyfile(TRIVIAL, copy)
        extra = load_plugin(host, copy, _options(work))
        extra.plugin.execute(request)
        keep.append(extra)
    gc.collect()
    results["rss_per_plugin_kib"] = round((rss_kib() - before) / 20, 1)
    for extra in keep:
        extra.plugin.shutdown()
    kept.shutdown()
    per_call.shutdown()
    host.close()
    return results


TARGETS = {
    "ratio_kept_buffer_to_floor_p50": (
        "≤ 3.5",
        lambda r: r["ratio_kept_buffer_to_floor_p50"] <= 3.5,
    ),
    "execute_kept_buffer": ("p99 ≤ 100 µs", lambda r: r["execute_kept_buffer"]["p99_us"] <= 100),
    "load_warm_cache": ("p50 ≤ 2000 µs", lambda r: r["load_warm_cache"]["p50_us"] <= 2000),
    "first_execute": ("p50 ≤ 1000 µs", lambda r: r["first_execute"]["p50_us"] <= 1000),
    "rss_per_plugin_kib": ("≤ 2048 KiB", lambda r: r["rss_per_plugin_kib"] <= 2048),
}
