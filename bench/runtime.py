"""Plugin runtime benchmark (issue: the plugin runtime): call floor vs our execute path, loads,
first execute and memory per plugin."""

from __future__ import annotations

import gc
import hashlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._stats import rss_kib, sample_us, summary
from conductor.plugins import _capi
from conductor.plugins.abi import EventContext, RequestTemplate
from conductor.plugins.limits import Limits
from conductor.plugins.loader import LoadOptions, load_plugin
from conductor.plugins.runtime import Plugin, PluginHost
from conductor.signing import SignaturePolicy, TrustStore

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "plugins"
TRIVIAL = FIXTURES / "trivial.wasm"
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

    # (c) cold and warm load: compile from bytes vs deserialize from the module cache
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

    # (d) first execute after load (fresh plugin each time)
    request = RequestTemplate({"action": "play"}).render(
        EventContext("Note", note=60, velocity=100, timestamp=1)
    )
    first = []
    for _ in range(200):
        module, _ = host.compile("trivial", wasm, digest)
        plugin = Plugin(host, "trivial", module, host.inspect(module), Limits())
        plugin.start()
        started = time.perf_counter()
        plugin.execute(request)
        first.append((time.perf_counter() - started) * 1e6)
        plugin.discard()
    results["first_execute"] = summary(first)

    # (a) the floor: execute through wasmtime_func_call_unchecked with prebuilt arguments
    loaded = load_plugin(host, TRIVIAL, _options(work))
    plugin = loaded.plugin
    plugin.execute(request)
    instance = plugin._instance
    assert instance is not None
    raw = _capi.RawCaller(instance.context)
    values, func = raw.values, instance.execute

    def floor() -> None:
        values[0].i32 = 65536
        values[1].i32 = len(request)
        raw.call(func, 2)

    # (b) our path: render the request JSON, alloc, write, execute, read the result
    template = RequestTemplate({"action": "play"})

    def ours() -> None:
        context = EventContext(
            "Note", note=60, velocity=100, channel=0, timestamp=time.time_ns() // 1_000_000
        )
        result = plugin.execute(template.render(context))
        if result.code != 0:
            raise RuntimeError(result.error)

    floor_samples, ours_samples = [], []
    for _ in range(4):  # interleaved rounds, so both see the same machine noise
        floor_samples += sample_us(floor, CALLS // 4)
        ours_samples += sample_us(ours, CALLS // 4)
    results["execute_floor_raw_call"] = summary(floor_samples)
    results["execute_our_path"] = summary(ours_samples)
    results["ratio_ours_to_floor_p50"] = round(
        results["execute_our_path"]["p50_us"] / results["execute_floor_raw_call"]["p50_us"], 2
    )
    stock = sample_us(
        lambda: instance.exports["execute"](instance.store, 65536, len(request)), 5_000
    )
    results["execute_stock_func_call"] = summary(stock)

    # (e) resident memory added per loaded plugin, 20 plugins
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
    plugin.shutdown()
    host.close()
    return results


TARGETS = {
    "ratio_ours_to_floor_p50": ("≤ 2.0", lambda r: r["ratio_ours_to_floor_p50"] <= 2.0),
    "execute_our_path": ("p99 ≤ 100 µs", lambda r: r["execute_our_path"]["p99_us"] <= 100),
    "load_warm_cache": ("p50 ≤ 2000 µs", lambda r: r["load_warm_cache"]["p50_us"] <= 2000),
    "first_execute": ("p50 ≤ 1000 µs", lambda r: r["first_execute"]["p50_us"] <= 1000),
    "rss_per_plugin_kib": ("≤ 2048 KiB", lambda r: r["rss_per_plugin_kib"] <= 2048),
}
