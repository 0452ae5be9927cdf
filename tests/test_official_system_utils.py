"""The bundled system-utils plugin on the real headless desktop, each action read back: xrandr
for brightness, the harness's recording X client for keystrokes, its logind on a private system
bus for sleep and lock."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from conductor.plugins.abi import EventContext, RequestTemplate
from conductor.plugins.capabilities import Capability
from conductor.plugins.loader import LoadedPlugin, LoadOptions, load_plugin, resolve_plugin
from conductor.plugins.runtime import PluginHost
from conductor.plugins.sandbox import plugin_data_dir
from conductor.signing import SignaturePolicy, TrustStore
from tests.desktop import Desktop, Logind, XRecorder
from tests.midi_helpers import require
from tests.test_system_ops import (
    _keys_received,
    _png_size_and_first_pixel,
    _xrandr_brightness,
    tool,
)

pytestmark = pytest.mark.usefixtures("desktop")


@pytest.fixture
def utils(host: PluginHost, tmp_path: Path) -> LoadedPlugin:
    options = LoadOptions(
        SignaturePolicy.TRUSTED,
        TrustStore(tmp_path / "none.toml"),
        approvals=frozenset({Capability.SYSTEM_CONTROL, Capability.SUBPROCESS}),
        plugin_config={"commands": {"greet": ["echo", "hello from a pad"], "fail": ["false"]}},
        extra_commands=("echo", "false"),
    )
    return load_plugin(host, resolve_plugin("system-utils"), options)


def act(loaded: LoadedPlugin, action: str, **params: Any) -> tuple[int | None, str]:
    result = loaded.plugin.execute(
        RequestTemplate({"action": action, **params}).render(EventContext())
    )
    assert result.error is None, result.error
    return result.code, " | ".join(text for _, text in result.output.logs)


def test_show_notification(utils: LoadedPlugin, desktop: Desktop) -> None:
    tool(desktop, "dunstctl", "close-all")
    assert act(utils, "show_notification", title="Scene switched", message="Now on Scene B")[0] == 0
    deadline = time.monotonic() + 5
    summaries: list[str] = []
    while time.monotonic() < deadline and "Scene switched" not in summaries:
        tool(desktop, "dunstctl", "close-all")
        history = json.loads(tool(desktop, "dunstctl", "history"))["data"][0]
        summaries = [n["summary"]["data"] for n in history]
        time.sleep(0.1)
    assert "Scene switched" in summaries


def test_copy_to_clipboard(utils: LoadedPlugin, desktop: Desktop) -> None:
    assert act(utils, "copy_to_clipboard", text="#conductor")[0] == 0
    deadline = time.monotonic() + 3
    text = ""
    while time.monotonic() < deadline and text != "#conductor":
        text = subprocess.run(
            ["xclip", "-selection", "clipboard", "-o"],
            env=desktop.env,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
        time.sleep(0.05)
    assert text == "#conductor"


def test_volume_actions(utils: LoadedPlugin, desktop: Desktop) -> None:
    def volume() -> str:
        return tool(desktop, "pactl", "get-sink-volume", "@DEFAULT_SINK@")

    assert act(utils, "set_volume", percent=50)[0] == 0 and "50%" in volume()
    assert act(utils, "volume_up")[0] == 0 and "55%" in volume()
    assert act(utils, "volume_down", step=20)[0] == 0 and "35%" in volume()
    assert act(utils, "mute_system")[0] == 0
    assert "yes" in tool(desktop, "pactl", "get-sink-mute", "@DEFAULT_SINK@")
    assert act(utils, "toggle_mute")[0] == 0
    assert "no" in tool(desktop, "pactl", "get-sink-mute", "@DEFAULT_SINK@")
    assert act(utils, "mute_system")[0] == 0 and act(utils, "unmute_system")[0] == 0
    assert "no" in tool(desktop, "pactl", "get-sink-mute", "@DEFAULT_SINK@")
    assert act(utils, "set_volume", percent=101)[0] == 3


def test_take_screenshot(utils: LoadedPlugin, desktop: Desktop) -> None:
    tool(desktop, "xsetroot", "-solid", "#0040ff")
    code, log = act(utils, "take_screenshot", filename="stage")
    assert code == 0 and "screenshot saved as stage.png" in log
    assert _png_size_and_first_pixel(plugin_data_dir("system-utils") / "stage.png") == (
        640,
        480,
        (0, 64, 255),
    )


def test_open_url(utils: LoadedPlugin, desktop: Desktop) -> None:
    assert act(utils, "open_url", url="https://example.org/setlist")[0] == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "setlist" not in (
        desktop.opened_urls.read_text() if desktop.opened_urls.exists() else ""
    ):
        time.sleep(0.05)
    assert "https://example.org/setlist" in desktop.opened_urls.read_text()


def test_run_command_from_the_config_table(utils: LoadedPlugin) -> None:
    code, log = act(utils, "run_command", name="greet")
    assert code == 0 and "greet: exit 0: hello from a pad" in log
    assert act(utils, "run_command", name="fail")[0] == 1
    code, log = act(utils, "run_command", name="nope")
    assert code == 3 and 'no command "nope"' in log


def test_media_without_a_player_and_bad_requests(utils: LoadedPlugin) -> None:
    code, log = act(utils, "media", media_action="play-pause")
    assert code == 1 and "media" in log  # playerctl finds no player on this desktop
    assert act(utils, "media", media_action="rewind")[0] == 1
    assert act(utils, "show_notification")[0] == 3
    assert act(utils, "format_disk")[0] == 3


def test_notification_by_the_product_pages_name(utils: LoadedPlugin, desktop: Desktop) -> None:
    tool(desktop, "dunstctl", "close-all")
    assert act(utils, "notification", title="Alias works", message="notification")[0] == 0
    deadline = time.monotonic() + 5
    summaries: list[str] = []
    while time.monotonic() < deadline and "Alias works" not in summaries:
        tool(desktop, "dunstctl", "close-all")
        history = json.loads(tool(desktop, "dunstctl", "history"))["data"][0]
        summaries = [n["summary"]["data"] for n in history]
        time.sleep(0.1)
    assert "Alias works" in summaries


def only_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """PATH with just these tools: where systemd runs, systemctl could reach the real logind
    through its private socket and suspend or lock this very machine."""
    tools = tmp_path / "bin"
    tools.mkdir(exist_ok=True)
    for name in names:
        found = shutil.which(name)
        if found:
            (tools / name).symlink_to(found)
    monkeypatch.setenv("PATH", str(tools))


def test_lock_by_the_product_pages_name(
    utils: LoadedPlugin, logind: Logind, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", logind.address)  # never the real session
    monkeypatch.delenv("XDG_SESSION_ID", raising=False)  # a session logind does not have
    lock, lock_screen = act(utils, "lock"), act(utils, "lock_screen")
    # The same op with the same outcome; the tools' own messages after "(tried" may vary.
    assert lock[0] == lock_screen[0]
    assert lock[1].split(" (tried")[0] == lock_screen[1].split(" (tried")[0]
    assert lock[0] == 0 or lock[1].startswith("system-utils: lock_screen: ")


def test_brightness_sets_and_changes_what_xrandr_reports(
    utils: LoadedPlugin, desktop: Desktop
) -> None:
    require("xrandr", "x11-xserver-utils")
    try:
        code, log = act(utils, "brightness", percent=50)
        assert code == 0, log
        assert _xrandr_brightness(desktop) == 0.5
        code, log = act(utils, "brightness", delta=-20)
        assert code == 0 and "brightness 30%" in log, log
        assert _xrandr_brightness(desktop) == 0.3
    finally:
        act(utils, "brightness", percent=100)
    assert _xrandr_brightness(desktop) == 1.0


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({}, 'brightness: give either param "percent"'),
        ({"percent": 50, "delta": 5}, 'brightness: give either param "percent"'),
        ({"percent": 101}, 'brightness: param "percent" must be an integer 0 to 100, not 101'),
        ({"delta": "up"}, 'brightness: param "delta" must be an integer -100 to 100, not "up"'),
    ],
)
def test_brightness_needs_exactly_one_valid_param(
    utils: LoadedPlugin, params: dict[str, Any], problem: str
) -> None:
    code, log = act(utils, "brightness", **params)
    assert code == 3 and log.startswith(f"system-utils: {problem}")
    assert "; actions: show_notification(title, message?) or notification," in log


def test_send_keys_and_type_text_reach_a_real_x_client(
    utils: LoadedPlugin, x_recorder: XRecorder
) -> None:
    code, log = act(utils, "send_keys", combo="ctrl+shift+m")
    assert code == 0, log
    assert _keys_received(x_recorder, 3) == ["Control_L", "Shift_L", "M"]
    code, log = act(utils, "type_text", text="hi there")
    assert code == 0, log
    assert _keys_received(x_recorder, 3 + 8)[3:] == ["h", "i", "space", "t", "h", "e", "r", "e"]


def test_keys_and_text_need_their_param(utils: LoadedPlugin) -> None:
    code, log = act(utils, "send_keys")
    assert code == 3 and log.startswith('system-utils: send_keys: missing param "combo"; actions:')
    code, log = act(utils, "type_text", text=5)
    assert code == 3 and 'type_text: param "text" must be a string, not 5' in log


def test_sleep_suspends_through_logind(
    utils: LoadedPlugin, logind: Logind, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_tools(tmp_path, monkeypatch, "dbus-send", "loginctl")
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", logind.address)
    before = logind.calls().count("Suspend False")
    code, log = act(utils, "sleep")
    assert code == 0, log
    assert logind.wait_for("Suspend False").count("Suspend False") == before + 1


def test_without_grants_everything_is_denied(host: PluginHost, tmp_path: Path) -> None:
    options = LoadOptions(SignaturePolicy.TRUSTED, TrustStore(tmp_path / "none.toml"))
    plain = load_plugin(host, resolve_plugin("system-utils"), options)
    code, log = act(plain, "show_notification", title="x")
    assert code == 1 and "host error -1" in log
