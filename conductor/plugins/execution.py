"""One plugin loaded, called once and shut down (`plugin exec`), as a library call whose report
holds every phase's time, the call's result and the shutdown's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conductor.plugins.interrupts import main_thread_host
from conductor.plugins.loader import LoadedPlugin, LoadOptions, load_plugin
from conductor.plugins.runtime import CallResult


@dataclass(frozen=True)
class Execution:
    loaded: LoadedPlugin
    result: CallResult
    shutdown: CallResult

    @property
    def ok(self) -> bool:
        return self.result.ok

    @property
    def phases_ms(self) -> dict[str, float]:
        """Reading and verifying, compiling, instantiating and `init`, the call, `shutdown`."""
        return {
            **self.loaded.phases_ms,
            "execute": self.result.wall_ms,
            "shutdown": self.shutdown.wall_ms,
        }

    def to_json(self) -> dict[str, Any]:
        loaded = self.loaded
        return {
            "plugin": loaded.plugin.name,
            "path": str(loaded.path),
            "metadata": loaded.metadata.to_json(),
            "signature": loaded.verdict.to_json(),
            "granted": sorted(cap.value for cap in loaded.plugin.granted),
            "compiled_from_cache": loaded.compiled_from_cache,
            "phases_ms": {name: round(ms, 3) for name, ms in self.phases_ms.items()},
            "result": self.result.to_json(),
            "shutdown": self.shutdown.to_json(),
        }


def execute_once(
    path: Path, request: bytes, options: LoadOptions, cache_dir: Path | None
) -> Execution:
    """Load (verify, compile, init) the plugin at `path` under `options`, call `execute` with
    `request`, then `shutdown`; raises a ConductorError when it cannot be loaded, Interrupted on
    SIGINT or SIGTERM (also from inside the plugin)."""
    with main_thread_host(cache_dir) as host:
        loaded = load_plugin(host, path, options)
        result = loaded.plugin.execute(request)
        ended = loaded.plugin.shutdown()
    return Execution(loaded, result, ended)
