"""Official plugins: .wasm size, load time (compile, and from the module cache), and the round
trip of one action: OBS on loopback (a real OBS Studio), Spotify against the loopback Web API
stand-in, and a desktop notification (dunst on Xvfb). Services that are not installed are skipped
with a note."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._stats import summary
from conductor.plugins import bundled
from conductor.plugins.abi import EventContext, RequestTemplate
from conductor.plugins.capabilities import Capability
from conductor.plugins.loader import LoadedPlugin, LoadOptions, load_plugin, resolve_plugin
from conductor.plugins.runtime import PluginHost
from conductor.signing import SignaturePolicy, TrustStore

ROUND_TRIPS = 200


def _round_trips(
    loaded: LoadedPlugin, params: dict[str, Any], count: int = ROUND_TRIPS
) -> dict[str, Any]:
    request = RequestTemplate(params).render(EventContext("Note", note=36, velocity=100))
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        result = loaded.plugin.execute(request)
        samples.append((time.perf_counter() - started) * 1e6)
        if not result.ok:
            return {"error": result.error or f"returned {result.code}: {result.output.logs[-1:]}"}
    return summary(samples)


def _load_times(name: str, work: Path) -> dict[str, Any]:
    path = resolve_plugin(name)
    options = LoadOptions(SignaturePolicy.TRUSTED, TrustStore(work / "none.toml"))
    times = {}
    for label, cache in (("cold_compile_ms", None), ("warm_cache_ms", work / "cache")):
        host = PluginHost(cache)
        if cache is not None:
            load_plugin(host, path, options).plugin.discard()  # fill the cache
        started = time.perf_counter()
        load_plugin(host, path, options).plugin.discard()
        times[label] = round((time.perf_counter() - started) * 1000, 2)
        host.close()
    return {"wasm_bytes": path.stat().st_size, **times}


def _obs(host: PluginHost, work: Path) -> dict[str, Any]:
    if shutil.which("obs") is None or shutil.which("Xvfb") is None:
        return {"skipped": "obs-studio or xvfb not installed"}
    from tests.obs_studio import PASSWORD, ObsStudio

    studio = ObsStudio(work / "obs")
    studio.start()
    try:
        options = LoadOptions(
            SignaturePolicy.TRUSTED,
            TrustStore(work / "none.toml"),
            plugin_config={"url": studio.url, "password": PASSWORD},
            extra_hosts=(studio.url,),
        )
        loaded = load_plugin(host, resolve_plugin("obs"), options)
        return {
            "action": "toggle_mute Mic",
            **_round_trips(loaded, {"action": "toggle_mute", "source_name": "Mic"}),
        }
    finally:
        studio.stop()


def _spotify(host: PluginHost, work: Path) -> dict[str, Any]:
    import threading

    from tests.spotify_api import SpotifyApi

    api = SpotifyApi()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    try:
        config = {
            "client_id": "bench",
            "refresh_token": api.refresh_token,
            "api_base": api.url,
            "accounts_base": api.url,
        }
        options = LoadOptions(
            SignaturePolicy.TRUSTED,
            TrustStore(work / "none.toml"),
            plugin_config=config,
            extra_hosts=(api.url,),
        )
        loaded = load_plugin(host, resolve_plugin("spotify"), options)
        return {"action": "next_track", **_round_trips(loaded, {"action": "next_track"})}
    finally:
        api.shutdown()


def _notification(host: PluginHost, work: Path) -> dict[str, Any]:
    if not all(
        shutil.which(tool) for tool in ("Xvfb", "dunst", "dbus-daemon", "notify-send", "pulseaudio")
    ):
        return {"skipped": "the headless desktop tools are not installed"}
    from tests.desktop import running_desktop

    with running_desktop(work / "desktop"):
        options = LoadOptions(
            SignaturePolicy.TRUSTED,
            TrustStore(work / "none.toml"),
            approvals=frozenset({Capability.SYSTEM_CONTROL}),
        )
        loaded = load_plugin(host, resolve_plugin("system-utils"), options)
        return {
            "action": "show_notification",
            **_round_trips(
                loaded, {"action": "show_notification", "title": "bench", "message": "pad"}, 50
            ),
        }


def run() -> dict[str, Any]:
    logging.getLogger("conductor").setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="conductor-bench-official-"))
    host = PluginHost(work / "cache")
    try:
        results: dict[str, Any] = {
            f"{name}_load": _load_times(name, work) for name in bundled.names()
        }
        results["obs_round_trip"] = _obs(host, work)
        results["spotify_round_trip"] = _spotify(host, work)
        results["notification_round_trip"] = _notification(host, work)
        return results
    finally:
        host.close()
        shutil.rmtree(work, ignore_errors=True)


TARGETS: dict[str, Any] = {}
