"""Host-call benchmark: `log`, `config_get` and `http_request` (to a loopback server) from inside
the guest, next to an empty host function registered the stock way (`Linker.define_func`) and the
fast way (the C API's unchecked form), all in one run; and what the process-tree supervisor adds
to every `exec` and `system` op (`run_bounded` against a bare Popen of the same command)."""

from __future__ import annotations

import http.server
import json
import logging
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import wasmtime

from conductor.plugins import _capi
from conductor.plugins.capabilities import Capability
from conductor.plugins.context import PluginContext
from conductor.plugins.limits import Limits
from conductor.plugins.network.patterns import HostPattern, HostRules
from conductor.plugins.runtime import Plugin, PluginHost
from conductor.processes import SUPERVISED, run_bounded

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "plugins"
LOOP = 1000
ROUNDS = 15
EXECS = 10  # per round: each one starts processes, so fewer than the in-process loops


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _per_call_us(run: Any, count: int) -> list[float]:
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        run(count)
        samples.append((time.perf_counter() - started) * 1e6 / count)
    return samples


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "median_us": round(statistics.median(samples), 3),
        "min_us": round(min(samples), 3),
        "rounds": len(samples),
    }


def _empty_imports(engine: wasmtime.Engine) -> dict[str, dict[str, float]]:
    module = wasmtime.Module.from_file(engine, str(FIXTURES / "empty_import.wasm"))
    functype = wasmtime.FuncType(
        [wasmtime.ValType.i32(), wasmtime.ValType.i32()], [wasmtime.ValType.i32()]
    )
    results = {}

    stock = wasmtime.Linker(engine)
    stock.define_func("bench", "empty", functype, lambda a, b: 0)

    imports = _capi.HostImports()  # keeps the callback alive while the stores below run
    fast = wasmtime.Linker(engine)
    imports.define(fast, "bench", "empty", (_capi.I32, _capi.I32), (_capi.I32,), lambda *_: 0, -1)

    for name, linker in (("empty_stock_define_func", stock), ("empty_fast_unchecked", fast)):
        store = wasmtime.Store(engine)
        store.set_fuel(10**15)
        store.set_epoch_deadline(10**9)
        run = linker.instantiate(store, module).exports(store)["run"]
        results[name] = _summary(_per_call_us(lambda n, run=run, store=store: run(store, n), LOOP))
    return results


def _exec_cost() -> dict[str, Any]:
    """Per-command cost of `run_bounded` (supervised on Linux) against a bare Popen + wait."""
    true = shutil.which("true") or "/bin/true"

    def bare(n: int) -> None:
        for _ in range(n):
            subprocess.Popen([true], stdout=subprocess.PIPE, stderr=subprocess.PIPE).communicate()

    def bounded(n: int) -> None:
        for _ in range(n):
            run_bounded([true], 10)

    results: dict[str, Any] = {
        "exec_bare_popen": _summary(_per_call_us(bare, EXECS)),
        "exec_run_bounded": _summary(_per_call_us(bounded, EXECS)),
    }
    results["exec_overhead_ms"] = round(
        (results["exec_run_bounded"]["median_us"] - results["exec_bare_popen"]["median_us"]) / 1000,
        2,
    )
    results["exec_mechanism"] = "subreaper supervisor" if SUPERVISED else "process group"
    return results


def run() -> dict[str, Any]:
    logging.getLogger("conductor").setLevel(logging.ERROR)
    host = PluginHost(None)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        wasm = (FIXTURES / "hostcalls.wasm").read_bytes()
        module, _ = host.compile("hostcalls", wasm, b"hostcalls-bench" + bytes(17))
        pattern = HostPattern.parse(url)
        context = PluginContext(
            "hostcalls",
            granted=frozenset({Capability.NETWORK}),
            config={"key": "value"},
            hosts=HostRules((pattern,), (pattern,)),
        )
        plugin = Plugin(
            host,
            "hostcalls",
            module,
            host.inspect(module),
            Limits(max_fuel=10**12, timeout_ms=600_000),
            context,
        )
        plugin.start()
        instance = plugin._instance
        assert instance is not None
        store, exports, state = instance.store, instance.exports, instance.state
        instance.guest.deadline = time.monotonic() + 600

        def run_log(n: int) -> None:
            exports["run_log"](store, n)
            state.capture.take()

        request = json.dumps({"url": f"{url}/"}).encode()
        instance.guest.write(8192, request)
        results: dict[str, Any] = {
            "log": _summary(_per_call_us(run_log, LOOP)),
            "config_get": _summary(_per_call_us(lambda n: exports["run_config"](store, n), LOOP)),
            "http_request_loopback": _summary(
                _per_call_us(lambda n: exports["run_http"](store, n, 8192, len(request)), 50)
            ),
        }
        results.update(_empty_imports(host.engine))
        results.update(_exec_cost())
        stock = results["empty_stock_define_func"]["median_us"]
        results["ratio_log_to_stock_empty"] = round(results["log"]["median_us"] / stock, 3)
        results["ratio_fast_empty_to_stock_empty"] = round(
            results["empty_fast_unchecked"]["median_us"] / stock, 3
        )
        plugin.shutdown()
        return results
    finally:
        server.shutdown()
        host.close()


TARGETS = {"log": ("≤ 5 µs per call", lambda r: r["log"]["median_us"] <= 5)}
