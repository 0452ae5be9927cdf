"""`system` ops against a real headless desktop the suite starts, each proven by reading the
effect back: notification, clipboard, volume and mute, screenshot, open_url."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from conductor.paths import plugin_data_dir
from conductor.plugins.runtime import PluginHost
from tests.desktop import Desktop
from tests.test_host_functions import ALL, answer, call, probe

UNSUPPORTED, INVALID = -9, -2
pytestmark = pytest.mark.usefixtures("desktop")


def system(loaded, **request: Any) -> tuple[int | None, Any]:
    code, text, error = call(loaded, "system", request)
    assert error is None, error
    return code, answer(text) if code == 0 else text


def tool(desktop: Desktop, *argv: str) -> str:
    return subprocess.run(
        argv, env=desktop.env, capture_output=True, text=True, timeout=10, check=True
    ).stdout


def test_notification_reaches_the_notification_daemon(
    host: PluginHost, tmp_path: Path, desktop: Desktop
) -> None:
    tool(desktop, "dunstctl", "close-all")
    loaded = probe(host, tmp_path, approvals=ALL)
    code, result = system(loaded, op="notify", title="Conductor test", body="pad 36 pressed")
    assert (code, result) == (0, {"ok": True})
    deadline = time.monotonic() + 5
    shown: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not shown:
        history = json.loads(tool(desktop, "dunstctl", "history"))["data"][0]
        displayed = tool(desktop, "dunstctl", "count", "displayed").strip()
        shown = [n for n in history if n["summary"]["data"] == "Conductor test"] or (
            [{"body": {"data": "pad 36 pressed"}}]
            if displayed != "0" and _displayed_matches(desktop)
            else []
        )
        time.sleep(0.1)
    assert shown and shown[0]["body"]["data"] == "pad 36 pressed"


def _displayed_matches(desktop: Desktop) -> bool:
    tool(desktop, "dunstctl", "close-all")  # closing moves it into the history
    history = json.loads(tool(desktop, "dunstctl", "history"))["data"][0]
    return any(n["summary"]["data"] == "Conductor test" for n in history)


def test_clipboard_set_and_get(host: PluginHost, tmp_path: Path, desktop: Desktop) -> None:
    loaded = probe(host, tmp_path, approvals=ALL)
    assert system(loaded, op="clipboard.set", text="copied by a pad")[0] == 0
    deadline = time.monotonic() + 3
    text = ""
    while (
        time.monotonic() < deadline and text != "copied by a pad"
    ):  # the holder process may lag a moment
        text = subprocess.run(
            ["xclip", "-selection", "clipboard", "-o"],
            env=desktop.env,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
        time.sleep(0.05)
    assert text == "copied by a pad"
    subprocess.run(
        ["xclip", "-selection", "clipboard", "-i"],
        input=b"set elsewhere",
        env=desktop.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=5,
        check=True,
    )
    time.sleep(0.1)
    assert system(loaded, op="clipboard.get") == (0, {"ok": True, "text": "set elsewhere"})


def test_volume_and_mute(host: PluginHost, tmp_path: Path, desktop: Desktop) -> None:
    loaded = probe(host, tmp_path, approvals=ALL)
    assert system(loaded, op="volume.set", percent=35)[0] == 0
    assert "35%" in tool(desktop, "pactl", "get-sink-volume", "@DEFAULT_SINK@")
    assert system(loaded, op="volume.get") == (0, {"ok": True, "percent": 35, "muted": False})
    assert system(loaded, op="volume.set", percent=250)[0] == 0  # clamped
    assert system(loaded, op="volume.get")[1]["percent"] == 100
    assert system(loaded, op="volume.mute", mute=True)[0] == 0
    assert "yes" in tool(desktop, "pactl", "get-sink-mute", "@DEFAULT_SINK@")
    assert system(loaded, op="volume.mute", mute="toggle")[0] == 0
    assert "no" in tool(desktop, "pactl", "get-sink-mute", "@DEFAULT_SINK@")
    assert system(loaded, op="volume.mute", mute="loud")[0] == INVALID


def _png_size_and_first_pixel(path: Path) -> tuple[int, int, tuple[int, ...]]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    chunks, palette, offset = [], b"", 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if kind == b"IDAT":
            chunks.append(data[offset + 8 : offset + 8 + length])
        elif kind == b"PLTE":
            palette = data[offset + 8 : offset + 8 + length]
        offset += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    # The first pixel of the first row is stored as is under every PNG filter type.
    if colour == 3:  # a palette image (a single-colour screen compresses to one)
        index = raw[1] >> (8 - depth) if depth < 8 else raw[1]
        return width, height, tuple(palette[3 * index : 3 * index + 3])
    step = 2 if depth == 16 else 1
    return width, height, tuple(raw[1 : 1 + 3 * step : step])


def test_screenshot_is_a_png_of_the_screen(
    host: PluginHost, tmp_path: Path, desktop: Desktop
) -> None:
    tool(desktop, "xsetroot", "-solid", "#ff8000")
    loaded = probe(host, tmp_path, approvals=ALL)
    code, result = system(loaded, op="screenshot", filename="pad.png")
    assert code == 0 and result == {"ok": True, "file": "pad.png"}
    width, height, pixel = _png_size_and_first_pixel(plugin_data_dir("host_probe") / "pad.png")
    assert (width, height) == (640, 480)
    assert pixel == (255, 128, 0)
    assert system(loaded, op="screenshot", filename="../escape.png")[1]["file"] == "escape.png"


def test_open_url_launches_the_browser(host: PluginHost, tmp_path: Path, desktop: Desktop) -> None:
    loaded = probe(host, tmp_path, approvals=ALL)
    assert system(loaded, op="open_url", url="https://example.org/conductor?pad=36")[0] == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "pad=36" not in (
        desktop.opened_urls.read_text() if desktop.opened_urls.exists() else ""
    ):
        time.sleep(0.05)
    assert "https://example.org/conductor?pad=36" in desktop.opened_urls.read_text()
    assert system(loaded, op="open_url", url="file:///etc/passwd")[0] == INVALID


def test_unknown_ops_and_missing_tools(
    host: PluginHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = probe(host, tmp_path, approvals=ALL)
    code, text = system(loaded, op="format_disk")
    assert code == INVALID and "unknown op 'format_disk'" in text
    assert system(loaded, op="media", action="rewind")[0] == INVALID
    monkeypatch.setenv("PATH", str(tmp_path))  # no tools at all
    code, text = system(loaded, op="notify", title="x")
    assert code == UNSUPPORTED and re.search(r"tried notify-send, osascript", text)
