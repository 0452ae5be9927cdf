"""The example configs: valid under `conductor check`, and working end to end through
`conductor run` with a replayed MIDI file against real OBS, the loopback Spotify API and the
headless desktop."""

from __future__ import annotations

import json
import time
from pathlib import Path

import mido
import pytest

from tests.conftest import REPO, Runner
from tests.desktop import Desktop
from tests.obs_studio import PASSWORD, ObsStudio
from tests.spotify_api import SpotifyApi
from tests.test_system_ops import tool

EXAMPLES = REPO / "examples"
ENV = {"OBS_PASSWORD": PASSWORD, "SPOTIFY_REFRESH_TOKEN": "refresh-secret-value"}


def song(path: Path, events: list[tuple[str, int, int]]) -> Path:
    """(kind, number, value) events 100 ms apart: note_on/off or control_change."""
    track = mido.MidiTrack()
    for kind, number, value in events:
        if kind == "cc":
            track.append(mido.Message("control_change", control=number, value=value, time=96))
        else:
            track.append(mido.Message("note_on", note=number, velocity=value, time=96))
            track.append(mido.Message("note_off", note=number, velocity=0, time=24))
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks.append(track)
    midi.save(path)
    return path


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_every_example_passes_check(conductor_cli: Runner, example: str) -> None:
    result = conductor_cli("check", EXAMPLES / example, "--json", env=ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["ok"]
    assert "not approved" not in result.stderr


def test_streamer_example_drives_obs(
    conductor_cli: Runner, tmp_path: Path, obs_studio: ObsStudio
) -> None:
    text = (EXAMPLES / "streamer.toml").read_text()
    text = text.replace("ws://127.0.0.1:4455", obs_studio.url).replace('"Camera"', '"Scene A"')
    text = text.replace('"Screen"', '"Scene B"')
    config = tmp_path / "streamer.toml"
    config.write_text(text)
    with obs_studio.client() as client:
        client.call("SetCurrentProgramScene", sceneName="Scene A")
        muted = client.call("GetInputMute", inputName="Mic")["inputMuted"]
        result = conductor_cli(
            "run",
            config,
            "--replay",
            song(tmp_path / "s.mid", [("note", 37, 100), ("note", 38, 100)]),
            "--speed",
            "0",
            "--log-format",
            "json",
            env=ENV,
        )
        assert result.returncode == 0, result.stderr
        records = [json.loads(line) for line in result.stdout.splitlines()]
        assert [r["results"][0]["ok"] for r in records if r["results"]] == [True, True]
        assert client.call("GetCurrentProgramScene")["currentProgramSceneName"] == "Scene B"
        assert client.call("GetInputMute", inputName="Mic")["inputMuted"] is (not muted)


def test_musician_example_drives_spotify_and_the_desktop(
    conductor_cli: Runner, tmp_path: Path, spotify_api: SpotifyApi, desktop: Desktop
) -> None:
    text = (
        (EXAMPLES / "musician.toml")
        .read_text()
        .replace(
            'refresh_token = "${SPOTIFY_REFRESH_TOKEN}"',
            f'refresh_token = "${{SPOTIFY_REFRESH_TOKEN}}"\napi_base = "{spotify_api.url}"\n'
            f'accounts_base = "{spotify_api.url}"\n[plugins.hosts]\nspotify = ["{spotify_api.url}"]',
        )
    )
    config = tmp_path / "musician.toml"
    config.write_text(text)
    tool(desktop, "pactl", "set-sink-volume", "@DEFAULT_SINK@", "50%")
    tool(desktop, "dunstctl", "close-all")
    events = [("note", 36, 100), ("note", 37, 100), ("cc", 16, 1), ("cc", 16, 1), ("note", 38, 90)]
    result = conductor_cli(
        "run",
        config,
        "--replay",
        song(tmp_path / "m.mid", events),
        "--speed",
        "0",
        "--log-format",
        "json",
        env=ENV,
    )
    assert result.returncode == 0, result.stderr
    assert [(r["method"], r["path"]) for r in spotify_api.api_calls()] == [
        ("GET", "/v1/me/player"),
        ("PUT", "/v1/me/player/play"),
        ("POST", "/v1/me/player/next"),
    ]
    assert "54%" in tool(desktop, "pactl", "get-sink-volume", "@DEFAULT_SINK@")
    deadline = time.monotonic() + 5
    summaries: list[str] = []
    while time.monotonic() < deadline and "Break" not in summaries:
        tool(desktop, "dunstctl", "close-all")
        summaries = [
            n["summary"]["data"]
            for n in json.loads(tool(desktop, "dunstctl", "history"))["data"][0]
        ]
        time.sleep(0.1)
    assert "Break" in summaries
    assert "refresh-secret-value" not in result.stdout + result.stderr
