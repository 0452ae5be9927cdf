"""The reference's native actions run by `conductor run`, checked on real parts: keystrokes,
text and clicks received by an X client on the headless display, volume on PulseAudio's null
sink, launching through a desktop entry, shell commands, repetitions and conditions by their
effect on files, SendMidi in the reference's spelling received on a JACK port; and, through the
dispatcher, that a slow Shell never holds up the next event."""

from __future__ import annotations

import io
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mido
import pytest
import rtmidi

from conductor.engine.config import parse_config
from conductor.engine.dispatcher import Dispatcher, EventRecord, Reporter
from conductor.engine.native import NativeActions, run_shell
from conductor.engine.report import LineReporter
from conductor.engine.scheduler import Scheduler
from conductor.midi.events import EventKind, MidiEvent
from conductor.plugins.runtime import CallResult
from tests.conftest import Runner
from tests.desktop import Desktop, LaunchRecorder, XRecorder
from tests.midi_helpers import require
from tests.plugin_helpers import PLUGINS


def song(path: Path, notes: list[int], gap_ticks: int = 24) -> Path:
    """Note-ons (each released at once), `gap_ticks` apart at 120 bpm and 480 ticks a beat."""
    track = mido.MidiTrack()
    for note in notes:
        track.append(mido.Message("note_on", note=note, velocity=100, time=gap_ticks))
        track.append(mido.Message("note_off", note=note, velocity=0, time=0))
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks.append(track)
    midi.save(path)
    return path


def replay(
    conductor_cli: Runner,
    tmp_path: Path,
    config: str,
    notes: list[int],
    *extra: str,
    env: dict[str, str] | None = None,
    name: str = "native.toml",
) -> tuple[list[dict[str, Any]], str]:
    """Run `config` over a replay of `notes`; the matched events' JSON records and stderr."""
    path = tmp_path / name
    path.write_text(config)
    midi = song(tmp_path / f"{name}.mid", notes)
    result = conductor_cli(
        "run", path, "--replay", midi, "--speed", "0", "--log-format", "json", *extra, env=env
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    matched = sorted((r for r in records if r["mapping"] is not None), key=lambda r: r["seq"])
    return matched, result.stderr


def mapping(note: int, action: str, spelling: str = "inline") -> str:
    """One mapping on `note`: inline (`action = …`) or as the reference's tables, where `action`
    is the body of `[modes.mappings.action]`."""
    if spelling == "inline":
        return (
            f"[[modes.mappings]]\ntrigger = {{ Note = {{ note = {note} }} }}\naction = {action}\n"
        )
    return (
        f'[[modes.mappings]]\n[modes.mappings.trigger]\ntype = "Note"\nnote = {note}\n'
        f"[modes.mappings.action]\n{action}\n"
    )


MODE = '[[modes]]\nname = "Default"\n'


# -- keyboard and mouse, received by a real X client ------------------------------------------


def test_keystrokes_text_clicks_and_desktop_conditions_reach_an_x_client(
    conductor_cli: Runner, tmp_path: Path, desktop: Desktop, x_recorder: XRecorder
) -> None:
    require("xprop", "x11-utils")
    # xev sets no WM_CLASS; with _NET_WM_PID its process name ("xev") is the frontmost app.
    pid = ["-f", "_NET_WM_PID", "32c", "-set", "_NET_WM_PID", str(x_recorder.pid)]
    subprocess.run(["xprop", "-id", x_recorder.window, *pid], env=desktop.env, check=True)
    letters = "abcdefghijklmnopqrstuvwxyz"
    config = (
        '[advanced_settings]\ncmd_key = "ctrl"\n'
        + MODE
        + mapping(36, 'type = "Keystroke"\nkeys = "Return"\nmodifiers = ["cmd"]', "tables")
        + mapping(37, '{ Keystroke = { keys = "F5" } }')
        + mapping(38, '{ type = "Text", text = "ok €5" }')
        + mapping(39, '{ type = "MouseClick", button = "Right", x = 450, y = 300 }')
        + mapping(
            40,
            '{ type = "Conditional", condition = { type = "And", conditions = [ '
            '{ type = "AppRunning", app_name = "XEV" }, { AppFrontmost = { app_name = "xev" } } ] }, '
            'then_action = { type = "Keystroke", keys = "y" }, '
            'else_action = { type = "Keystroke", keys = "n" } }',
        )
        + mapping(
            41,
            '{ type = "Conditional", condition = { type = "AppFrontmost", app_name = "xmessage" }, '
            'then_action = { type = "Keystroke", keys = "y" }, '
            'else_action = { type = "Keystroke", keys = "n" } }',
        )
        + "".join(
            mapping(50 + i, f'{{ type = "Keystroke", keys = "{letter}" }}')
            for i, letter in enumerate(letters)
        )
    )
    records, _ = replay(
        conductor_cli, tmp_path, config, [36, 37, 38, 39, 40, 41, *range(50, 50 + len(letters))]
    )
    assert all(result["ok"] for record in records for result in record["results"]), records
    expected = ["Control_L", "Return", "F5", "o", "k", "space", "U20AC", "5", "y", "n"]
    expected += list(letters)  # 26 events in a burst: their keystrokes keep the events' order
    events = x_recorder.wait_for(lambda e: sum(k == "KeyPress" for k, _ in e) >= len(expected))
    assert [detail for kind, detail in events if kind == "KeyPress"] == expected
    assert ("ButtonPress", "3@450,300") in events
    # Nothing left held down (xdotool unmaps the spare key it typed € on before its release).
    released = [detail for kind, detail in events if kind == "KeyRelease"]
    assert sorted(released) == sorted("NoSymbol" if k == "U20AC" else k for k in expected)
    notes = [note for record in records for note in record["notes"]]
    assert notes == ["Conditional: true, then_action runs", "Conditional: false, else_action runs"]
    first = records[0]["results"][0]
    assert first["plugin"] == "Keystroke cmd+return" and first["error"] is None


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


def test_volume_control_every_operation(
    conductor_cli: Runner, tmp_path: Path, desktop: Desktop
) -> None:
    config = (
        MODE
        + mapping(36, 'type = "VolumeControl"\noperation = "Set"\nvalue = 30', "tables")
        + mapping(37, '{ type = "VolumeControl", operation = "Up", value = 15 }')
        + mapping(38, '{ VolumeControl = { operation = "Down" } }')
        + mapping(39, '{ type = "VolumeControl", operation = "Mute" }')
        + mapping(40, '{ type = "VolumeControl", operation = "Unmute" }')
    )
    records, _ = replay(conductor_cli, tmp_path, config, [36, 37, 38, 39])
    assert [r["results"][0]["plugin"] for r in records] == [
        "VolumeControl Set 30",
        "VolumeControl Up 15",
        "VolumeControl Down 10",
        "VolumeControl Mute",
    ]
    assert all(r["results"][0]["ok"] for r in records), records
    assert " 35% " in _sink(desktop.env, "volume")
    assert "yes" in _sink(desktop.env, "mute")
    replay(conductor_cli, tmp_path, config, [40], name="unmute.toml")
    assert "no" in _sink(desktop.env, "mute")


# -- launching, through a desktop entry that records what it was asked to start ----------------


def test_launch_starts_an_application_by_its_desktop_entry(
    conductor_cli: Runner, tmp_path: Path, desktop: Desktop
) -> None:
    recorder = LaunchRecorder(tmp_path, "org.example.Pads", "from-entry")
    config = MODE + mapping(36, 'type = "Launch"\napp = "Pad Recorder"', "tables")
    config += mapping(37, '{ type = "Launch", app = "no-such-application-here" }')
    records, _ = replay(conductor_cli, tmp_path, config, [36, 37])
    assert [what for what, _ in recorder.recorded(1)] == ["from-entry"]
    launched, missing = (record["results"][0] for record in records)
    assert launched["ok"], launched
    assert launched["plugin"] == "Launch 'Pad Recorder'"
    assert not missing["ok"]
    assert (
        "launch no-such-application-here: no desktop entry with that id or name"
        in (missing["error"])
    )


# -- shell commands, repetitions and conditions, by their effect on files -----------------------

COMPOSED = f"""
[plugins]
signature_policy = "unsigned"
[[modes]]
name = "Default"

[[modes.mappings]]
description = "repeat a sequence"
[modes.mappings.trigger]
type = "Note"
note = 36
[modes.mappings.action]
type = "Repeat"
count = 3
delay_ms = 20
action = {{ type = "Sequence", actions = [ {{ type = "Shell", command = "echo r >> repeat.txt" }}, {{ type = "Delay", ms = 5 }}, {{ type = "WasmPlugin", path = "{PLUGINS}/counter.wasm" }} ] }}

[[modes.mappings]]
description = "every condition, then a mode change"
trigger = {{ Note = {{ note = 37 }} }}
action = {{ Conditional = {{ condition = {{ And = {{ conditions = [ {{ TimeRange = {{ start = "00:00", end = "23:59" }} }}, {{ DayOfWeek = {{ days = [1, 2, 3, 4, 5, 6, 7] }} }}, {{ Not = {{ condition = "Never" }} }}, {{ ModeIs = {{ mode = "Default" }} }}, {{ Or = {{ conditions = [ "Never", "Always" ] }} }} ] }} }}, then_action = {{ Sequence = {{ actions = [ {{ Shell = {{ command = "echo then >> then.txt" }} }}, {{ ModeChange = {{ mode = "Other" }} }} ] }} }}, else_action = {{ Shell = {{ command = "echo else >> else.txt" }} }} }} }}

[[modes.mappings]]
description = "not running"
trigger = {{ Note = {{ note = 38 }} }}
action = {{ type = "Conditional", condition = {{ type = "AppRunning", app_name = "no-such-process-xyz" }}, then_action = {{ type = "Shell", command = "echo running >> running.txt" }}, else_action = {{ type = "Shell", command = "echo not-running >> running.txt" }} }}

[[modes]]
name = "Other"
[[modes.mappings]]
description = "nested conditions in another mode"
trigger = {{ Note = {{ note = 37 }} }}
action = {{ type = "Conditional", condition = {{ type = "ModeIs", mode = "Default" }}, then_action = {{ type = "Shell", command = "echo wrong >> else.txt" }}, else_action = {{ type = "Sequence", actions = [ {{ type = "Shell", command = "echo other >> other.txt" }}, {{ type = "Conditional", condition = "Always", then_action = {{ type = "Repeat", count = 2, action = {{ type = "WasmPlugin", path = "{PLUGINS}/counter.wasm" }} }} }}, {{ type = "ModeChange", mode = "Default" }} ] }} }}
"""


def counts(records: list[dict[str, Any]]) -> list[int]:
    return [
        int(result["output"]["logs"][0]["message"].removeprefix("count "))
        for record in records
        for result in record["results"]
        if result["plugin"] == "counter"
    ]


def test_shell_repeat_and_conditional_compose_with_plugins_delays_and_modes(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    records, _ = replay(conductor_cli, tmp_path, COMPOSED, [36, 38, 37, 37, 37])
    assert (tmp_path / "repeat.txt").read_text() == "r\n" * 3
    assert (tmp_path / "running.txt").read_text() == "not-running\n"
    # 37 in Default: every condition holds, then the mode changes to Other; 37 in Other: ModeIs
    # Default is false, the nested Conditional repeats the plugin and goes back to Default.
    assert (tmp_path / "then.txt").read_text() == "then\n" * 2
    assert (tmp_path / "other.txt").read_text() == "other\n"
    assert not (tmp_path / "else.txt").exists()
    assert sorted(counts(records)) == [1, 2, 3, 4, 5]  # 3 from the repeat, 2 from the branch
    assert [record["mode"] for record in records] == [
        "Default",
        "Default",
        "Default",
        "Other",
        "Default",
    ]
    shells = [r for record in records for r in record["results"] if r["plugin"].startswith("Shell")]
    assert shells and all(result["ok"] and result["code"] == 0 for result in shells)


def test_a_failing_shell_is_reported_like_a_plugin_error_and_a_stuck_one_is_killed(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    config = (
        "[advanced_settings]\nshell_timeout_ms = 500\n"
        + MODE
        + mapping(36, '{ type = "Shell", command = "echo out; echo oops >&2; exit 3" }')
        + mapping(37, """{ type = "Shell", command = "echo $$ > pid.txt; exec sleep 60" }""")
        + mapping(
            38, '{ type = "Shell", command = "pwd > where.txt; echo $SHELL_PROBE >> where.txt" }'
        )
    )
    records, _ = replay(
        conductor_cli, tmp_path, config, [36, 37, 38], env={"SHELL_PROBE": "user-environment"}
    )
    failed, stuck, probe = (record["results"][0] for record in records)
    assert failed["ok"] is False and failed["code"] == 3
    assert failed["error"] == "exited with status 3"
    assert failed["output"]["stdout"] == "out\n" and failed["output"]["stderr"] == "oops\n"
    assert stuck["ok"] is False
    assert (
        stuck["error"] == "still running after the 0.5 s shell timeout (shell_timeout_ms): killed"
    )
    pid = int((tmp_path / "pid.txt").read_text())
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert probe["ok"]
    # The config file's directory, the user's own environment.
    assert (tmp_path / "where.txt").read_text().splitlines() == [str(tmp_path), "user-environment"]


def test_the_frontmost_app_unknown_is_false_with_one_warning_per_run(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    config = MODE + mapping(
        36,
        '{ type = "Conditional", condition = { type = "AppFrontmost", app_name = "Safari" }, '
        'then_action = { type = "Shell", command = "echo front >> front.txt" }, '
        'else_action = { type = "Shell", command = "echo not >> front.txt" } }',
    )
    _, stderr = replay(
        conductor_cli, tmp_path, config, [36, 36, 36], env={"WAYLAND_DISPLAY": "wayland-test"}
    )
    assert (tmp_path / "front.txt").read_text() == "not\n" * 3
    assert stderr.count("cannot be known under Wayland") == 1, stderr


# -- SendMidi in the reference's spelling, received on a JACK port -----------------------------


def test_send_midi_in_the_references_spelling_reaches_a_jack_port(
    conductor_cli: Runner, tmp_path: Path, jack_server: str
) -> None:
    receiver = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="tester-ref-synth")
    receiver.open_virtual_port("ref-receiver")
    received: list[list[int]] = []
    receiver.set_callback(lambda message, _: received.append(message[0]))
    sends = [
        'message_type = "NoteOn", note = 36, velocity = 127',
        'message_type = "NoteOff", note = 36',
        'message_type = "CC", controller = 7, value = 90',
        'message_type = "ProgramChange", program = 5',
        'message_type = "PitchBend", pitch = -8192',
        'message_type = "Aftertouch", pressure = 64',
    ]
    actions = ", ".join(
        f'{{ type = "SendMidi", port = "ref-receiver", channel = 9, {fields} }}' for fields in sends
    )
    config = MODE + mapping(36, f'{{ type = "Sequence", actions = [ {actions} ] }}')
    try:
        records, _ = replay(conductor_cli, tmp_path, config, [36], "--api", "jack")
        deadline = time.monotonic() + 5
        while len(received) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        receiver.close_port()
    assert received == [
        [0x99, 36, 127],
        [0x89, 36, 100],
        [0xB9, 7, 90],
        [0xC9, 5],
        [0xE9, 0, 0],
        [0xD9, 64],
    ]
    assert records[0]["notes"][0] == "sent note_on to ref-receiver"


# -- a slow Shell holds up only its own next run (the dispatcher with real workers) -------------


class Finished(Reporter):
    def __init__(self) -> None:
        self.records: list[EventRecord] = []
        self.changed = threading.Condition()

    def finished(self, record: EventRecord) -> None:
        with self.changed:
            self.records.append(record)
            self.changed.notify_all()

    def wait_for(self, seqs: set[int], timeout: float = 10) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: seqs <= {r.seq for r in self.records}, timeout), (
                self.records
            )


@pytest.fixture
def native() -> Iterator[NativeActions]:
    actions = NativeActions()
    yield actions
    for worker in actions.workers():
        worker.close()
        worker.join(10)


def test_a_slow_shell_never_holds_up_the_next_event(tmp_path: Path, native: NativeActions) -> None:
    wait = "while [ ! -e release ]; do sleep 0.01; done; echo done >> slow.txt"
    config = parse_config(
        MODE
        + mapping(36, f'{{ type = "Shell", command = "{wait}" }}')
        + mapping(37, '{ type = "Shell", command = "echo fast >> fast.txt" }')
        + mapping(38, '{ type = "Text", text = "x" }'),
        tmp_path / "config.toml",
    )
    scheduler = Scheduler()
    reporter = Finished()
    dispatcher = Dispatcher(config, {}, scheduler, None, reporter, native=native)

    def press(note: int) -> EventRecord:
        return dispatcher.handle(MidiEvent(EventKind.NOTE_ON, 0, 0.0, 0, "pads", note, 100))

    slow, again, fast = press(36), press(36), press(37)
    reporter.wait_for({fast.seq})
    assert (tmp_path / "fast.txt").read_text() == "fast\n"
    assert slow.pending and again.pending  # both runs of the slow command still going
    (tmp_path / "release").touch()
    reporter.wait_for({slow.seq, again.seq})
    assert (tmp_path / "slow.txt").read_text() == "done\n" * 2  # one after the other
    shells = [worker for worker in native.workers() if worker.name.startswith("Shell")]
    assert len(shells) == 2  # one worker per Shell action

    # A reload that drops the slow command retires its worker once it has nothing left to do.
    dispatcher.with_config(
        parse_config(
            MODE + mapping(37, '{ type = "Shell", command = "echo fast >> fast.txt" }'),
            tmp_path / "config.toml",
        ),
        {},
    )
    deadline = time.monotonic() + 10
    while len(native.workers()) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [worker.name for worker in native.workers()] == ["Shell 'echo fast >> fast.txt'"]
    scheduler.stop()


def test_a_native_result_is_no_plugin_call_and_reports_no_fuel(tmp_path: Path) -> None:
    """A Shell action's result has no fuel (None, not a plugin that used 0): the line says none,
    the JSON has null; a plugin's result still shows its fuel."""
    shell = run_shell("exit 3", 5.0, tmp_path)
    assert shell.fuel is None and shell.to_json()["fuel"] is None
    assert shell.code == 3 and shell.error == "exited with status 3"
    plugin = CallResult("event_logger", 0, None, 1234, 0.5)
    stream = io.StringIO()
    reporter = LineReporter(stream)
    record = EventRecord(7, MidiEvent(EventKind.NOTE_ON, 0, 0.0, 0, "pad", 60, 100), "Default")
    reporter.result(record, shell, 0.25)
    reporter.result(record, plugin, 0.25)
    assert reporter.close()
    native_line, plugin_line = stream.getvalue().splitlines()
    assert "FAILED: exited with status 3" in native_line and "fuel" not in native_line
    assert "-> event_logger ok (0.50 ms, fuel 1234, started 0.25 ms after" in plugin_line
