"""The desktop backend as the engine's native actions call it (conductor.desktop), on the real
headless desktop: keystrokes with the reference's key names and text received by a real X
client, clicks, volume on PulseAudio's null sink, launching through a desktop entry, whether an
application runs and is in front, sleep and lock through logind, and the rule every operation
shares: the first tool that works wins, and a failure is one line naming each tool tried."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conductor import desktop as backend
from conductor.desktop import DesktopError, DesktopFailure, KeyMap, Modifier, MouseButton, Unknown
from conductor.desktop._backends import Backend, Runner, attempt
from conductor.desktop.launch import _entry_fields
from tests.desktop import (
    Desktop,
    LaunchRecorder,
    Logind,
    XRecorder,
    find_window,
    run_as_if_systemd_booted,
)
from tests.midi_helpers import require

# -- key names (pure) ---------------------------------------------------------------------


def _keysyms(keys: str, modifiers: list[str] | None = None) -> tuple[list[str], list[str]]:
    combo, unknown = backend.parse_keystroke(keys, modifiers or [])
    assert unknown == ()
    return [m.value for m in combo.modifiers], [k.keysym for k in combo.keys]


def test_the_references_key_names() -> None:
    assert _keysyms("space", ["cmd"]) == (["cmd"], ["space"])
    assert _keysyms("Return", ["ctrl", "shift"]) == (["ctrl", "shift"], ["Return"])
    assert _keysyms("ESCAPE") == ([], ["Escape"])
    assert _keysyms("esc", ["option"]) == (["alt"], ["Escape"])
    assert _keysyms("UpArrow", ["command", "meta"]) == (["cmd"], ["Up"])
    assert _keysyms("PgUp") == ([], ["Prior"])
    assert _keysyms("F13") == ([], ["F13"])
    assert _keysyms("PlayPause") == ([], ["XF86AudioPlay"])
    assert _keysyms("Previous") == ([], ["XF86AudioPrev"])
    assert _keysyms("A") == ([], ["a"])  # the reference lower-cases every name
    assert _keysyms("3") == ([], ["3"])
    assert _keysyms("=") == ([], ["equal"])
    assert _keysyms("€") == ([], ["U20AC"])
    assert _keysyms("Cmd+Shift+A") == (["cmd", "shift"], ["a"])  # a combination in `keys`
    assert _keysyms("+", ["ctrl"]) == (["ctrl"], ["plus"])
    assert _keysyms("ctrl++") == (["ctrl"], ["plus"])
    assert _keysyms("a", ["fn"]) == ([], ["a"])  # the reference accepts fn and ignores it


def test_unknown_names_are_returned_for_the_config_check_and_refused_in_a_combo() -> None:
    combo, unknown = backend.parse_keystroke("Hyper+a", ["cmd", "turbo"])
    assert unknown == ("Hyper", "turbo")
    assert str(combo) == "cmd+a"
    with pytest.raises(DesktopError) as refused:
        backend.parse_combo("ctrl+hyper")
    assert refused.value.failure is DesktopFailure.INVALID
    assert "unknown key 'hyper' (known: space, Return/Enter" in str(refused.value)
    assert "\n" not in str(refused.value)
    with pytest.raises(DesktopError):
        backend.parse_combo("")
    with pytest.raises(DesktopError, match="at most 64 keys"):
        backend.parse_combo("+".join(["a"] * 65))


def test_how_a_user_maps_cmd() -> None:
    assert KeyMap().resolve(Modifier.CMD) is Modifier.SUPER
    assert KeyMap.from_setting("Ctrl").resolve(Modifier.CMD) is Modifier.CTRL
    assert KeyMap.from_setting("alt").resolve(Modifier.SHIFT) is Modifier.SHIFT
    with pytest.raises(DesktopError, match="cmd_key must be one of super, ctrl, alt"):
        KeyMap.from_setting("hyper")


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40))
def test_any_combo_gives_keys_or_one_line(text: str) -> None:
    try:
        combo = backend.parse_combo(text)
    except DesktopError as refused:
        assert refused.failure is DesktopFailure.INVALID
        assert "\n" not in str(refused).replace("\\n", "")
        return
    assert combo.keys or combo.modifiers


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_any_desktop_entry_reads_as_fields(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    entry = tmp_path_factory.mktemp("entry") / "x.desktop"
    entry.write_bytes(b"[Desktop Entry]\n" + data)
    fields = _entry_fields(entry)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())


# -- trying tools in order (real processes) ------------------------------------------------


def test_the_first_tool_that_works_wins_and_failures_are_named() -> None:
    ran: list[str] = []

    def runs(argv: list[str]) -> Backend[str]:
        def act(run: Runner) -> str:
            ran.append(argv[0])
            run.run(argv)
            return argv[0]

        return Backend(argv[0], act)

    assert attempt("probe", [runs(["false"]), runs(["true"]), runs(["echo"])], 5) == "true"
    assert ran == ["false", "true"]
    with pytest.raises(DesktopError) as failed:
        attempt("probe", [runs(["false"]), runs(["sh", "-c", "echo broken >&2; exit 3"])], 5)
    assert failed.value.failure is DesktopFailure.IO
    assert str(failed.value) == (
        "probe: every backend tool failed (tried false: exit status 1; sh: broken)"
    )


def test_a_tool_past_the_budget_is_killed_and_nothing_else_runs(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(DesktopError) as failed:
        attempt(
            "probe",
            [
                Backend.command(["sleep", "30"]),
                Backend.command(["touch", str(tmp_path / "ran-after-the-budget")]),
            ],
            0.3,
        )
    assert failed.value.failure is DesktopFailure.TIMEOUT
    assert "sleep ran past the 0.30 s budget and was killed" in str(failed.value)
    assert not (tmp_path / "ran-after-the-budget").exists()
    assert time.monotonic() - started < 5  # killed, not waited for


def test_no_tool_here_names_each_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    with pytest.raises(DesktopError) as failed:
        backend.type_text("hello", timeout=5)
    assert failed.value.failure is DesktopFailure.UNSUPPORTED
    assert str(failed.value) == (
        "type: no backend tool available here (tried wtype: not installed; "
        "xdotool: reaches only X11 windows under Wayland; osascript: macOS only)"
    )
    monkeypatch.delenv("WAYLAND_DISPLAY")
    with pytest.raises(DesktopError, match=r"tried wtype: WAYLAND_DISPLAY is not set; xdotool: n"):
        backend.press_keys(backend.parse_combo("ctrl+c"), timeout=5)


# -- keys, text and clicks received by a real X client -------------------------------------


def _presses(recorder: XRecorder, count: int) -> list[str]:
    events = recorder.wait_for(lambda e: sum(k == "KeyPress" for k, _ in e) >= count)
    return [detail for kind, detail in events if kind == "KeyPress"]


def test_keystrokes_with_the_references_names_reach_an_x_client(
    desktop_env: dict[str, str], x_recorder: XRecorder
) -> None:
    strokes = [
        (("Return", ["cmd"]), KeyMap(), ["Super_L", "Return"]),
        (("Return", ["cmd"]), KeyMap.from_setting("ctrl"), ["Control_L", "Return"]),
        (("UpArrow", ["alt", "shift"]), KeyMap(), ["Alt_L", "Shift_L", "Up"]),
        (("F5", []), KeyMap(), ["F5"]),
        (("space", []), KeyMap(), ["space"]),
        (("PlayPause", []), KeyMap(), ["XF86AudioPlay"]),
    ]
    expected: list[str] = []
    for (keys, modifiers), keymap, keysyms in strokes:
        combo, _ = backend.parse_keystroke(keys, modifiers)
        backend.press_keys(combo, timeout=10, keymap=keymap)
        expected += keysyms
    assert _presses(x_recorder, len(expected)) == expected
    released = [d for k, d in x_recorder.events() if k == "KeyRelease"]
    assert sorted(released) == sorted(expected)  # nothing left held down


def test_text_is_typed_into_an_x_client(desktop_env: dict[str, str], x_recorder: XRecorder) -> None:
    backend.type_text("ok €5", timeout=10)
    assert _presses(x_recorder, 5) == ["o", "k", "space", "U20AC", "5"]
    backend.type_text("", timeout=10)  # nothing to type is not an error


def test_clicks_reach_an_x_client_where_asked(
    desktop_env: dict[str, str], x_recorder: XRecorder
) -> None:
    backend.click(MouseButton.RIGHT, timeout=10, x=450, y=300)
    backend.click(MouseButton.parse("Left"), timeout=10)  # where the pointer is
    events = x_recorder.wait_for(lambda e: sum(k == "ButtonRelease" for k, _ in e) >= 2)
    assert [e for e in events if e[0] == "ButtonPress"] == [
        ("ButtonPress", "3@450,300"),
        ("ButtonPress", "1@450,300"),
    ]
    with pytest.raises(DesktopError, match="give both x and y"):
        backend.click(MouseButton.LEFT, timeout=10, x=3)
    with pytest.raises(DesktopError, match="left, right or middle"):
        MouseButton.parse("fourth")


@pytest.fixture
def desktop_env(desktop: Desktop) -> dict[str, str]:
    require("xdotool", "xdotool")
    return desktop.env


# -- volume on PulseAudio's null sink -------------------------------------------------------


def _sink(env: dict[str, str], what: str) -> str:
    return subprocess.run(
        ["pactl", f"get-sink-{what}", "@DEFAULT_SINK@"],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout


def test_volume_up_down_set_mute_unmute(desktop: Desktop) -> None:
    backend.volume_set(50, timeout=10)
    backend.volume_change(+10, timeout=10)
    assert " 60% " in _sink(desktop.env, "volume")
    backend.volume_set(95, timeout=10)
    backend.volume_change(+10, timeout=10)  # never past 100 %
    assert " 100% " in _sink(desktop.env, "volume")
    backend.volume_change(-30, timeout=10)
    assert backend.volume_get(timeout=10).percent == 70
    backend.volume_mute(True, timeout=10)
    assert "yes" in _sink(desktop.env, "mute") and backend.volume_get(timeout=10).muted
    backend.volume_mute(False, timeout=10)
    assert "no" in _sink(desktop.env, "mute")


# -- launching ------------------------------------------------------------------------------


def test_launch_by_desktop_entry_executable_or_path(
    desktop: Desktop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = LaunchRecorder(tmp_path, "org.example.Recorder", "started-from-entry")
    (recorder.applications / "hidden.desktop").write_text(
        f"[Desktop Entry]\nType=Application\nName=Hidden\nHidden=true\nExec={recorder.path} hidden\n"
    )
    monkeypatch.setenv("PATH", f"{recorder.path.parent}:{os.environ['PATH']}")

    assert "org.example.Recorder.desktop" in launch("org.example.recorder")
    assert "org.example.Recorder.desktop" in launch("Pad Recorder")  # by its Name
    assert launch("conductor-recorder") == "conductor-recorder"  # on PATH
    assert launch(str(recorder.path)) == str(recorder.path)
    launched = recorder.recorded(4)
    assert sorted(what for what, _ in launched) == [""] * 2 + ["started-from-entry"] * 2
    assert all(session != os.getsid(0) for _, session in launched)

    with pytest.raises(DesktopError) as missing:
        launch("Hidden")
    assert missing.value.failure is DesktopFailure.IO
    assert "launch Hidden: no desktop entry with that id or name (in " in str(missing.value)
    with pytest.raises(DesktopError, match="is not an executable file"):
        launch(str(tmp_path / "nothing-here"))
    with pytest.raises(DesktopError, match="is not an application name"):
        launch("evil\napp")


def launch(app: str) -> str:
    return backend.launch(app, timeout=10)


# -- is it running, is it in front ------------------------------------------------------------


@pytest.fixture
def xmessage(desktop: Desktop) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    require("xmessage", "x11-utils")
    process = subprocess.Popen(
        ["xmessage", "-name", "conductor-front", "-geometry", "+40+300", "front"],
        env=desktop.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    yield process, find_window(desktop.env, "--classname", "conductor-front")
    process.terminate()
    process.wait(timeout=5)


def test_app_running_reads_the_process_list(
    xmessage: tuple[subprocess.Popen[bytes], str],
) -> None:
    process, _ = xmessage
    assert backend.app_running("xmessage", timeout=5)
    assert backend.app_running("XMESS", timeout=5)  # the reference's case-blind substring
    assert not backend.app_running("no-such-application", timeout=5)
    process.terminate()
    process.wait(timeout=5)
    assert not backend.app_running("xmessage", timeout=5)


def test_app_frontmost_on_x11(
    desktop: Desktop, xmessage: tuple[subprocess.Popen[bytes], str], x_recorder: XRecorder
) -> None:
    require("xprop", "x11-utils")
    _, window = xmessage
    subprocess.run(["xdotool", "windowfocus", "--sync", window], env=desktop.env, check=True)
    assert backend.app_frontmost("Xmessage", timeout=5) is True  # WM_CLASS class
    assert backend.app_frontmost("conductor-front", timeout=5) is True  # WM_CLASS instance
    assert backend.app_frontmost("xev", timeout=5) is False
    # xev sets no WM_CLASS; a toolkit would set _NET_WM_PID, which leads to the process name.
    subprocess.run(
        [
            "xprop",
            "-id",
            x_recorder.window,
            "-f",
            "_NET_WM_PID",
            "32c",
            "-set",
            "_NET_WM_PID",
            str(x_recorder.pid),
        ],
        env=desktop.env,
        check=True,
    )
    x_recorder.focus(desktop.env)
    assert backend.app_frontmost("xev", timeout=5) is True
    assert backend.app_frontmost("xmessage", timeout=5) is False


def test_app_frontmost_is_unknown_without_an_x_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    answer = backend.app_frontmost("firefox", timeout=5)
    assert answer == Unknown("the frontmost application cannot be known under Wayland")
    monkeypatch.delenv("WAYLAND_DISPLAY")
    monkeypatch.delenv("DISPLAY", raising=False)
    assert isinstance(backend.app_frontmost("firefox", timeout=5), Unknown)


# -- sleep and lock through logind, as on a machine systemd booted -----------------------------


def _in_booted_namespace(code: str, logind: Logind) -> None:
    require("systemctl", "systemd")
    done = run_as_if_systemd_booted(
        f"from conductor import desktop; {code}",
        {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": logind.address},
    )
    assert done.returncode == 0, done.stderr


def test_sleep_through_systemctl(logind: Logind) -> None:
    before = logind.calls().count("Suspend True")
    _in_booted_namespace("desktop.sleep(timeout=10)", logind)
    assert logind.wait_for("Suspend True").count("Suspend True") == before + 1


def test_lock_screen_goes_on_to_loginctl_when_the_screensaver_cannot(
    desktop: Desktop, logind: Logind
) -> None:
    require("xdg-screensaver", "xdg-utils")
    before = logind.calls().count("Lock")
    _in_booted_namespace("desktop.lock_screen(timeout=10)", logind)
    assert logind.wait_for("Lock").count("Lock") == before + 1
