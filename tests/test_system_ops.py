"""`system` ops against a real headless desktop the suite starts, each proven by reading the
effect back: notification, clipboard, volume and mute, screenshot (and the symlink a plugin
plants for it), open_url, brightness (xrandr), keys and text (a real X client), sleep and
lock_screen (logind on a private system bus)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conductor.plugins.abi import EventContext, RequestTemplate
from conductor.plugins.capabilities import Capability
from conductor.plugins.host._state import HostCallError
from conductor.plugins.host.codes import Code
from conductor.plugins.host.system import _screenshot_name
from conductor.plugins.loader import LoadedPlugin, LoadOptions, load_plugin
from conductor.plugins.runtime import PluginHost
from conductor.plugins.sandbox import plugin_data_dir
from conductor.signing import SignaturePolicy, TrustStore
from tests.desktop import Desktop, Logind, XRecorder
from tests.midi_helpers import require
from tests.plugin_helpers import fixture_path
from tests.test_host_functions import ALL, answer, call, probe

UNSUPPORTED, INVALID, IO = Code.UNSUPPORTED, Code.INVALID, Code.IO
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
    assert code == UNSUPPORTED
    assert "tried notify-send: not installed; osascript: macOS only" in text


def _as(
    host: PluginHost, tmp_path: Path, fixture: str, name: str, grant: Capability
) -> LoadedPlugin:
    """Fixture plugin `fixture` loaded under the name `name` (so both share its data dir)."""
    directory = tmp_path / fixture
    directory.mkdir()
    shutil.copyfile(fixture_path(fixture), directory / f"{name}.wasm")
    options = LoadOptions(
        SignaturePolicy.UNSIGNED, TrustStore(tmp_path / "trust.toml"), approvals=frozenset({grant})
    )
    return load_plugin(host, directory / f"{name}.wasm", options)


def test_screenshot_never_writes_through_a_symlink_the_plugin_planted(
    host: PluginHost, tmp_path: Path, desktop: Desktop
) -> None:
    victim = Path(os.environ["XDG_DATA_HOME"]) / "victim"
    victim.write_text("precious")
    planter = _as(host, tmp_path, "fs_probe", "attacker", Capability.FILESYSTEM)
    data_dir = plugin_data_dir("attacker")
    # Planted through WASI: one at an existing file, one dangling (creating through it would
    # make a file outside the sandbox).
    for link, target in (("evil.png", "../../../victim"), ("new.png", "../../../created")):
        params = {"op": "symlink", "target": target, "path": f"/{link}"}
        assert planter.plugin.execute(RequestTemplate(params).render(EventContext())).code == 0
        assert os.readlink(data_dir / link) == target
    attacker = _as(host, tmp_path, "host_probe", "attacker", Capability.SYSTEM_CONTROL)
    for link in ("evil.png", "new.png"):
        code, text = system(attacker, op="screenshot", filename=link)
        assert code == INVALID and f"{link} is a symlink; refusing to write through it" in text
        assert (data_dir / link).is_symlink()
    assert victim.read_text() == "precious"
    assert not (victim.parent / "created").exists()

    os.mkfifo(data_dir / "fifo.png")  # a FIFO is refused at once, never opened
    code, text = system(attacker, op="screenshot", filename="fifo.png")
    assert code == INVALID and "fifo.png is a FIFO" in text
    (data_dir / "plain.png").write_text("an older screenshot")  # a regular file is replaced
    assert system(attacker, op="screenshot", filename="plain.png")[0] == 0
    assert (data_dir / "plain.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in data_dir.iterdir()) == [
        "evil.png",
        "fifo.png",
        "new.png",
        "plain.png",
    ]  # no temp file left behind


def _xrandr_brightness(desktop: Desktop) -> float:
    for line in tool(desktop, "xrandr", "--verbose").splitlines():
        if "Brightness:" in line:
            return float(line.split(":", 1)[1])
    raise AssertionError("xrandr --verbose reports no brightness")


def test_brightness_through_xrandr(host: PluginHost, tmp_path: Path, desktop: Desktop) -> None:
    require("xrandr", "x11-xserver-utils")
    loaded = probe(host, tmp_path, approvals=ALL)
    assert system(loaded, op="brightness.set", percent=40) == (0, {"ok": True})
    assert _xrandr_brightness(desktop) == 0.4
    assert system(loaded, op="brightness.get") == (0, {"ok": True, "percent": 40})
    assert system(loaded, op="brightness.set", percent=180)[0] == 0  # clamped
    assert _xrandr_brightness(desktop) == 1.0
    assert system(loaded, op="brightness.set", percent="dim")[0] == INVALID


def _keys_received(recorder: XRecorder, count: int) -> list[str]:
    events = recorder.wait_for(lambda e: sum(k == "KeyPress" for k, _ in e) >= count)
    return [detail for kind, detail in events if kind == "KeyPress"]


def test_keys_and_type_reach_a_real_x_client(
    host: PluginHost, tmp_path: Path, desktop: Desktop, x_recorder: XRecorder
) -> None:
    loaded = probe(host, tmp_path, approvals=ALL)
    assert system(loaded, op="keys", combo="ctrl+shift+m") == (0, {"ok": True})
    # With Shift held the X server reports the shifted keysym of the same key.
    assert _keys_received(x_recorder, 3) == ["Control_L", "Shift_L", "M"]
    assert system(loaded, op="type", text="Hé -x") == (0, {"ok": True})
    received = _keys_received(x_recorder, 3 + 6)[3:]
    assert [k for k in received if not k.startswith("Shift")] == [
        "H", "eacute", "space", "minus", "x"
    ]  # fmt: skip
    code, text = system(loaded, op="keys", combo="ctrl+hyper")
    assert code == INVALID and "unknown key 'hyper'" in text and "Return/Enter" in text


def test_sleep_asks_logind_over_the_system_bus(
    host: PluginHost,
    tmp_path: Path,
    desktop: Desktop,
    logind: Logind,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only dbus-send and loginctl on PATH: systemctl, where systemd runs, could fall back to
    # its private socket and suspend this very machine if logind refused.
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("dbus-send", "loginctl"):
        found = shutil.which(name)
        if found:
            (tools / name).symlink_to(found)
    monkeypatch.setenv("PATH", str(tools))
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", logind.address)
    loaded = probe(host, tmp_path, approvals=ALL)
    before = logind.calls().count("Suspend False")
    assert system(loaded, op="sleep") == (0, {"ok": True})
    assert logind.wait_for("Suspend False").count("Suspend False") == before + 1


def test_lock_screen_tries_every_locker_and_names_each_failure(
    host: PluginHost,
    tmp_path: Path,
    desktop: Desktop,
    logind: Logind,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require("xdg-screensaver", "xdg-utils")
    require("loginctl", "systemd")
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", logind.address)  # never the real session
    monkeypatch.delenv("XDG_SESSION_ID", raising=False)  # a session logind does not have
    loaded = probe(host, tmp_path, approvals=ALL)
    code, text = system(loaded, op="lock_screen")
    assert code == IO and "lock_screen: every backend tool failed (tried " in text
    assert "xdg-screensaver: " in text and "; loginctl: " in text and "\n" not in text


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=60), st.integers(), st.lists(st.text(max_size=3))))
def test_any_screenshot_filename_gives_a_plain_name_or_invalid(filename: object) -> None:
    try:
        name = _screenshot_name({"filename": filename})
    except HostCallError as refused:
        assert refused.code == INVALID
        return
    assert "/" not in name and "\0" not in name and not name.startswith(".")
    assert name.endswith(".png") and name not in (".", "..")
