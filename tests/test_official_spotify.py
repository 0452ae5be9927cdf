"""The bundled spotify plugin against a loopback Web API and accounts service."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import mido
import pytest

from conductor.plugins.abi import EventContext, RequestTemplate
from conductor.plugins.loader import LoadedPlugin, LoadOptions, load_plugin, resolve_plugin
from conductor.plugins.runtime import PluginHost
from conductor.signing import SignaturePolicy, TrustStore
from tests.conftest import Runner
from tests.spotify_api import SpotifyApi

SECRET = "client-secret-value"


@pytest.fixture
def spotify(host: PluginHost, tmp_path: Path, spotify_api: SpotifyApi) -> LoadedPlugin:
    config = {
        "client_id": "client-1",
        "client_secret": SECRET,
        "refresh_token": spotify_api.refresh_token,
        "api_base": spotify_api.url,
        "accounts_base": spotify_api.url,
    }
    options = LoadOptions(
        SignaturePolicy.TRUSTED,
        TrustStore(tmp_path / "none.toml"),
        plugin_config=config,
        secrets=frozenset({SECRET, spotify_api.refresh_token}),
        extra_hosts=(spotify_api.url,),
    )
    return load_plugin(host, resolve_plugin("spotify"), options)


def act(loaded: LoadedPlugin, action: str, **params: Any) -> tuple[int | None, str, dict[str, Any]]:
    result = loaded.plugin.execute(
        RequestTemplate({"action": action, **params}).render(EventContext())
    )
    assert result.error is None, result.error
    return result.code, " | ".join(text for _, text in result.output.logs), result.to_json()


@pytest.mark.parametrize(
    ("action", "params", "player", "expected"),
    [
        ("play", {}, {}, [("PUT", "/v1/me/player/play", {})]),
        ("pause", {}, {}, [("PUT", "/v1/me/player/pause", {})]),
        (
            "play_pause",
            {},
            {"is_playing": True},
            [("GET", "/v1/me/player", {}), ("PUT", "/v1/me/player/pause", {})],
        ),
        (
            "play_pause",
            {},
            {"is_playing": False},
            [("GET", "/v1/me/player", {}), ("PUT", "/v1/me/player/play", {})],
        ),
        ("next_track", {}, {}, [("POST", "/v1/me/player/next", {})]),
        ("next", {}, {}, [("POST", "/v1/me/player/next", {})]),  # the product page's name
        ("previous_track", {}, {}, [("POST", "/v1/me/player/previous", {})]),
        ("previous", {}, {}, [("POST", "/v1/me/player/previous", {})]),
        (
            "set_volume",
            {"volume": 30},
            {},
            [("PUT", "/v1/me/player/volume", {"volume_percent": ["30"]})],
        ),
        (
            "volume",
            {"volume": 70},
            {},
            [("PUT", "/v1/me/player/volume", {"volume_percent": ["70"]})],
        ),
        (
            "volume_up",
            {},
            {},
            [
                ("GET", "/v1/me/player", {}),
                ("PUT", "/v1/me/player/volume", {"volume_percent": ["60"]}),
            ],
        ),
        (
            "volume_down",
            {},
            {},
            [
                ("GET", "/v1/me/player", {}),
                ("PUT", "/v1/me/player/volume", {"volume_percent": ["40"]}),
            ],
        ),
        (
            "adjust_volume",
            {"delta": -70},
            {},
            [
                ("GET", "/v1/me/player", {}),
                ("PUT", "/v1/me/player/volume", {"volume_percent": ["0"]}),
            ],
        ),
        (
            "shuffle",
            {},
            {"shuffle_state": False},
            [("GET", "/v1/me/player", {}), ("PUT", "/v1/me/player/shuffle", {"state": ["true"]})],
        ),
        (
            "repeat",
            {},
            {"repeat_state": "context"},
            [("GET", "/v1/me/player", {}), ("PUT", "/v1/me/player/repeat", {"state": ["track"]})],
        ),
        ("repeat", {"mode": "off"}, {}, [("PUT", "/v1/me/player/repeat", {"state": ["off"]})]),
        (
            "like_current_track",
            {},
            {},
            [
                ("GET", "/v1/me/player/currently-playing", {}),
                ("PUT", "/v1/me/tracks", {"ids": ["track123"]}),
            ],
        ),
    ],
)
def test_each_action_makes_the_web_api_call(
    spotify: LoadedPlugin,
    spotify_api: SpotifyApi,
    action: str,
    params: dict[str, Any],
    player: dict[str, Any],
    expected: list[tuple[str, str, dict[str, Any]]],
) -> None:
    spotify_api.player.update(player)
    code, log, _ = act(spotify, action, **params)
    assert code == 0, log
    assert [(r["method"], r["path"], r["query"]) for r in spotify_api.api_calls()] == expected


def test_play_playlist_sends_the_context_uri(
    spotify: LoadedPlugin, spotify_api: SpotifyApi
) -> None:
    assert act(spotify, "play_playlist", uri="spotify:playlist:37i9dQZF1DX")[0] == 0
    (call,) = spotify_api.api_calls()
    assert (call["method"], call["path"], json.loads(call["body"])) == (
        "PUT",
        "/v1/me/player/play",
        {"context_uri": "spotify:playlist:37i9dQZF1DX"},
    )


def test_the_token_is_refreshed_once_kept_and_refreshed_on_expiry(
    spotify: LoadedPlugin, spotify_api: SpotifyApi
) -> None:
    spotify_api.expires_in = 32  # the plugin keeps a 30 s margin: valid for one to two seconds
    act(spotify, "play")
    act(spotify, "pause")
    assert len(spotify_api.token_calls()) == 1
    token = spotify_api.token_calls()[0]
    assert "grant_type=refresh_token" in token["body"] and token["authorization"].startswith(
        "Basic "
    )
    time.sleep(2.1)
    act(spotify, "play")
    assert len(spotify_api.token_calls()) == 2
    assert all(r["authorization"].startswith("Bearer access-") for r in spotify_api.api_calls())


def test_a_401_refreshes_once_and_retries(spotify: LoadedPlugin, spotify_api: SpotifyApi) -> None:
    act(spotify, "play")
    spotify_api.forced.append((401, {"error": {"status": 401, "message": "expired"}}, {}))
    code, log, _ = act(spotify, "next_track")
    assert code == 0, log
    assert len(spotify_api.token_calls()) == 2
    assert [r["path"] for r in spotify_api.api_calls()][-2:] == ["/v1/me/player/next"] * 2


def test_429_waits_for_a_short_retry_after_and_fails_on_a_long_one(
    spotify: LoadedPlugin, spotify_api: SpotifyApi
) -> None:
    spotify_api.forced.append((429, {"error": {"status": 429}}, {"Retry-After": "1"}))
    started = time.monotonic()
    assert act(spotify, "play")[0] == 0 and time.monotonic() - started >= 1
    spotify_api.forced.append((429, {"error": {"status": 429}}, {"Retry-After": "120"}))
    code, log, _ = act(spotify, "play")
    assert code == 1 and "rate limited by Spotify: Retry-After 120 s" in log


def test_no_active_device_and_server_errors(spotify: LoadedPlugin, spotify_api: SpotifyApi) -> None:
    spotify_api.forced.append(
        (
            404,
            {
                "error": {
                    "status": 404,
                    "message": "Player command failed: No active device found",
                    "reason": "NO_ACTIVE_DEVICE",
                }
            },
            {},
        )
    )
    code, log, _ = act(spotify, "play")
    assert code == 1 and "no active device" in log
    spotify_api.forced.append(
        (503, {"error": {"status": 503, "message": "Service unavailable"}}, {})
    )
    code, log, _ = act(spotify, "pause")
    assert code == 1 and "HTTP 503: Service unavailable" in log


ALL_ACTIONS = (
    "play_pause, play, pause, next_track or next, previous_track or previous, volume_up, "
    "volume_down, set_volume(volume) or volume, adjust_volume(delta), shuffle, repeat(mode?), "
    "play_playlist(uri), like_current_track"
)


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"action": "moonwalk"}, 'unknown action "moonwalk"'),
        ({}, 'missing param "action"'),
        ({"action": 7}, 'param "action" must be a string, not 7'),
        (
            {"action": "set_volume", "volume": 150},
            'set_volume: param "volume" must be an integer 0 to 100, not 150',
        ),
        ({"action": "volume"}, 'set_volume: missing param "volume" (an integer 0 to 100)'),
        (
            {"action": "adjust_volume", "delta": "up"},
            'adjust_volume: param "delta" must be an integer -100 to 100, not "up"',
        ),
        (
            {"action": "repeat", "mode": "sometimes"},
            'repeat: param "mode" "sometimes" is not track, context or off',
        ),
        ({"action": "play_playlist"}, 'play_playlist: missing param "uri"'),
    ],
)
def test_bad_requests_return_3_naming_the_problem_and_listing_the_actions(
    spotify: LoadedPlugin, spotify_api: SpotifyApi, params: dict[str, Any], problem: str
) -> None:
    result = spotify.plugin.execute(RequestTemplate(params).render(EventContext()))
    assert result.code == 3
    ((level, line),) = result.output.logs
    assert level == 3 and line.startswith(f"spotify: {problem}")
    assert line.endswith(f"; actions: {ALL_ACTIONS}")
    assert spotify_api.api_calls() == []


def test_the_product_pages_names_through_the_cli_and_the_engine(
    conductor_cli: Runner, tmp_path: Path, spotify_api: SpotifyApi
) -> None:
    """`conductor_wasm_spotify.wasm` and `next`, as the page writes them, in `plugin exec`,
    `check` and a `run` replaying a pad hit."""
    url = spotify_api.url
    config = tmp_path / "seed.toml"
    config.write_text(
        f"""[plugins.config.spotify]
client_id = "client-1"
client_secret = "{SECRET}"
refresh_token = "{spotify_api.refresh_token}"
api_base = "{url}"
accounts_base = "{url}"

[plugins.hosts]
spotify = ["{url}"]

[[modes]]
name = "Default"

[[modes.mappings]]
trigger = {{ Note = {{ note = 60 }} }}
action = {{ WasmPlugin = {{ path = "conductor_wasm_spotify.wasm", params = {{ action = "next" }} }} }}
"""
    )
    for spec in ("conductor_wasm_spotify.wasm", "conductor_wasm_spotify"):
        ran = conductor_cli(
            "plugin", "exec", spec, "--config", config, "--params", '{"action": "next"}', "--json"
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert json.loads(ran.stdout)["plugin"] == "spotify"
    assert conductor_cli("check", config).returncode == 0
    song = tmp_path / "pad.mid"
    track = mido.MidiTrack(
        [mido.Message("note_on", note=60, velocity=100), mido.Message("note_off", note=60, time=10)]
    )
    mido.MidiFile(tracks=[track]).save(song)
    played = conductor_cli("run", config, "--replay", song, "--speed", "0")
    assert played.returncode == 0, played.stdout + played.stderr
    assert [(c["method"], c["path"]) for c in spotify_api.api_calls()] == [
        ("POST", "/v1/me/player/next")
    ] * 3


def test_secrets_never_appear_in_output(spotify: LoadedPlugin, spotify_api: SpotifyApi) -> None:
    spotify_api.refresh_token = (
        "rotated"  # the refresh now fails; the error must not leak the secrets
    )
    code, log, report = act(spotify, "play")
    assert code == 1
    text = json.dumps(report) + log
    assert SECRET not in text and "refresh-secret-value" not in text


def test_setup_runs_the_pkce_flow_and_stores_the_token(
    spotify_api: SpotifyApi, tmp_path: Path
) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "conductor",
            "plugin",
            "setup",
            "spotify",
            "--client-id",
            "client-1",
            "--accounts-base",
            spotify_api.url,
            "--no-browser",
            "--port",
            "0",
            "--timeout",
            "30",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    assert process.stdout is not None
    lines = []
    while not lines or not lines[-1].startswith("http"):
        lines.append(process.stdout.readline().strip())
    with urllib.request.urlopen(
        lines[-1], timeout=10
    ) as response:  # the user's browser, following the redirect
        assert b"authorization received" in response.read()
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    token_file = Path(os.environ["XDG_CONFIG_HOME"]) / "conductor" / "spotify-refresh-token"
    assert token_file.read_text().strip() == "issued-refresh-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert 'refresh_token = "${SPOTIFY_REFRESH_TOKEN}"' in out and "issued-refresh-token" not in out
    authorize = next(r for r in spotify_api.requests if r["path"] == "/authorize")
    assert authorize["query"]["code_challenge_method"] == ["S256"]
    assert authorize["query"]["redirect_uri"][0].startswith("http://127.0.0.1:")
