"""Reading the reference's native actions and conditions, in both spellings, and the config's
warnings channel: unknown keys and values the reference tolerates are warnings naming what is
known; `check --strict` makes them errors; anything else is one ConfigError line."""

from __future__ import annotations

import datetime as dt
import json
import time
import tomllib
from pathlib import Path
from typing import Any

import mido
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conductor.desktop import KeyMap, Modifier, MouseButton
from conductor.engine import actions as act
from conductor.engine import conditions as cnd
from conductor.engine import triggers as trg
from conductor.engine.config import Config, parse_config
from conductor.errors import ConfigError
from tests.conftest import FIXTURES, Runner
from tests.midi_helpers import RunningConductor

SOURCE = Path("/configs/reference.toml")


def parse(text: str) -> Config:
    return parse_config(text, SOURCE)


def action_of(inline: str) -> act.Action:
    """The action of a one-mapping config whose action is written inline."""
    config = parse(
        f"[[global_mappings]]\ntrigger = {{ Note = {{ note = 1 }} }}\naction = {inline}\n"
    )
    return config.global_mappings[0].action


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    message = caught.value.diagnostics()
    assert "\n" not in message
    return message


def keys(action: act.Action) -> tuple[list[str], list[str]]:
    assert isinstance(action, act.Keystroke)
    return [m.value for m in action.combo.modifiers], [k.keysym for k in action.combo.keys]


TABLE_SPELLING = """
[[modes]]
name = "Default"

[[modes.mappings]]
description = "Spotlight"
[modes.mappings.trigger]
type = "Note"
note = 60
[modes.mappings.action]
type = "Keystroke"
keys = "space"
modifiers = ["cmd"]

[[modes.mappings]]
[modes.mappings.trigger]
type = "Note"
note = 61
[modes.mappings.action]
type = "Conditional"
[modes.mappings.action.condition]
type = "TimeRange"
start = "22:00"
end = "06:00"
[modes.mappings.action.then_action]
type = "Repeat"
count = 3
delay_ms = 25
action = { type = "Shell", command = "echo hi" }
[modes.mappings.action.else_action]
type = "VolumeControl"
operation = "Set"
value = 30
"""

INLINE_SPELLING = """
[[modes]]
name = "Default"
[[modes.mappings]]
description = "Spotlight"
trigger = { Note = { note = 60 } }
action = { Keystroke = { keys = "space", modifiers = ["cmd"] } }
[[modes.mappings]]
trigger = { Note = { note = 61 } }
action = { Conditional = { condition = { TimeRange = { start = "22:00", end = "06:00" } }, then_action = { Repeat = { count = 3, delay_ms = 25, action = { Shell = { command = "echo hi" } } } }, else_action = { VolumeControl = { operation = "Set", value = 30 } } } }
"""


def test_both_spellings_of_native_actions_are_equal() -> None:
    table, inline = parse(TABLE_SPELLING), parse(INLINE_SPELLING)
    assert [m.action for m in table.all_mappings()] == [m.action for m in inline.all_mappings()]
    spotlight, night = (m.action for m in table.all_mappings())
    assert keys(spotlight) == (["cmd"], ["space"])
    assert night == act.Conditional(
        cnd.TimeRange(22 * 60, 6 * 60),
        act.Repeat(act.Shell("echo hi"), 3, 25),
        act.VolumeControl("Set", 30),
    )
    assert table.warnings == inline.warnings == ()


def test_every_native_action_and_its_defaults() -> None:
    assert keys(action_of('{ type = "Keystroke", keys = "Cmd+Shift+A" }')) == (
        ["cmd", "shift"],
        ["a"],
    )
    assert keys(action_of('{ Keystroke = { keys = "Return", modifiers = ["option"] } }')) == (
        ["alt"],
        ["Return"],
    )
    assert action_of('{ type = "Text", text = "Hello, Wörld\\n" }') == act.Text("Hello, Wörld\n")
    assert action_of('{ type = "Launch", app = "Visual Studio Code" }') == act.Launch(
        "Visual Studio Code"
    )
    assert action_of('{ type = "Shell", command = "git add . && git commit" }') == act.Shell(
        "git add . && git commit"
    )
    assert action_of('{ type = "MouseClick", button = "Right", x = -5, y = 10 }') == (
        act.MouseClick(MouseButton.RIGHT, -5, 10)
    )
    assert action_of('{ type = "MouseClick" }') == act.MouseClick(MouseButton.LEFT)
    volume = {
        '{ type = "VolumeControl", operation = "Up" }': act.VolumeControl("Up", 10),
        '{ type = "VolumeControl", operation = "down", value = 3 }': act.VolumeControl("Down", 3),
        '{ type = "VolumeControl", operation = "Mute" }': act.VolumeControl("Mute", 10),
        '{ type = "VolumeControl", operation = "Unmute" }': act.VolumeControl("Unmute", 10),
        '{ type = "VolumeControl", operation = "Set", value = 0 }': act.VolumeControl("Set", 0),
    }
    for text, expected in volume.items():
        assert action_of(text) == expected
    assert action_of(
        '{ type = "Repeat", count = 2, action = { type = "Delay", ms = 5 } }'
    ) == act.Repeat(act.Delay(5), 2, 0)
    assert action_of(
        '{ type = "Conditional", condition = "Never", then_action = { type = "Text", text = "x" } }'
    ) == act.Conditional(cnd.Never(), act.Text("x"))


def test_send_midi_in_the_references_spelling_and_in_midos() -> None:
    def send(fields: str) -> act.Action:
        return action_of(f'{{ type = "SendMidi", port = "Synth", channel = 9, {fields} }}')

    reference = {
        'message_type = "NoteOn", note = 36, velocity = 127': (
            "note_on",
            (("note", 36), ("velocity", 127)),
        ),
        'message_type = "NoteOff", note = 36': ("note_off", (("note", 36), ("velocity", 100))),
        'message_type = "CC", controller = 7, value = 90': (
            "control_change",
            (("control", 7), ("value", 90)),
        ),
        'message_type = "ControlChange", control = 7': (
            "control_change",
            (("control", 7), ("value", 0)),
        ),
        'message_type = "ProgramChange", program = 5': ("program_change", (("program", 5),)),
        'message_type = "PitchBend", pitch = -8192': ("pitchwheel", (("pitch", -8192),)),
        'message_type = "Aftertouch", pressure = 64': ("aftertouch", (("value", 64),)),
        'message_type = "aftertouch", value = 64': ("aftertouch", (("value", 64),)),
        'message_type = "note-on"': ("note_on", (("note", 60), ("velocity", 100))),
        'message_type = "polytouch", note = 1, pressure = 2': (
            "polytouch",
            (("note", 1), ("value", 2)),
        ),
    }
    for fields, (kind, values) in reference.items():
        assert send(fields) == act.SendMidi("Synth", kind, 9, values), fields
    assert "message_type: 'Sysex' is not one of NoteOn, NoteOff, CC" in error_of(
        '[[global_mappings]]\ntrigger = { Note = { note = 1 } }\naction = { type = "SendMidi", '
        'port = "x", message_type = "Sysex" }\n'
    )
    assert "action.control: give one of controller or control, not both" in error_of(
        '[[global_mappings]]\ntrigger = { Note = { note = 1 } }\naction = { type = "SendMidi", '
        'port = "x", message_type = "CC", controller = 1, control = 2 }\n'
    )


def test_conditions_in_every_spelling() -> None:
    def condition(text: str) -> cnd.Condition:
        action = action_of(
            f'{{ type = "Conditional", condition = {text}, then_action = {{ Text = {{ text = "x" }} }} }}'
        )
        assert isinstance(action, act.Conditional)
        return action.condition

    assert condition('"Always"') == condition('{ type = "Always" }') == cnd.Always()
    assert condition("{ Never = {} }") == cnd.Never()
    assert condition('{ type = "TimeRange", start = "9:05", end = "17:30" }') == cnd.TimeRange(
        545, 1050
    )
    assert condition("{ DayOfWeek = { days = [1, 7] } }") == cnd.DayOfWeek((1, 7))
    assert condition('{ type = "AppRunning", app_name = "Logic Pro" }') == cnd.AppRunning(
        "Logic Pro"
    )
    assert condition('{ AppFrontmost = { app_name = "Safari" } }') == cnd.AppFrontmost("Safari")
    assert condition(
        '{ type = "Or", conditions = [ { type = "And", conditions = [ "Always", '
        '{ ModeIs = { mode = "Default" } } ] }, { type = "Not", condition = "Never" } ] }'
    ) == cnd.Or(
        (
            cnd.And((cnd.Always(), cnd.ModeIs("Default"))),
            cnd.Not(cnd.Never()),
        )
    )


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ('{ type = "Text", text = "" }', "action.text: is empty: nothing to type"),
        ('{ type = "Keystroke", keys = "" }', "action.keys: names no key"),
        ('{ type = "Keystroke" }', "action.keys: is required"),
        ('{ type = "Keystroke", keys = "a", modifiers = [1] }', "expected a list of modifier"),
        ('{ type = "Shell", command = "  " }', "action.command: is empty: nothing to run"),
        ('{ type = "Launch", app = "a\\nb" }', "is not an application name or path"),
        (
            '{ type = "MouseClick", button = "fourth" }',
            "action.button: mouse button must be left, right or middle, not 'fourth'",
        ),
        (
            '{ type = "VolumeControl", operation = "Louder" }',
            "action.operation: 'Louder' is not one of Up, Down, Mute, Unmute, Set",
        ),
        ('{ type = "VolumeControl", action = "Up" }', "action.operation: is required"),
        (
            '{ type = "VolumeControl", operation = "Set", value = 101 }',
            "action.value: 101 is not a volume in percent (0-100)",
        ),
        (
            '{ type = "Repeat", count = 0, action = "x" }',
            "action.action: expected a table like",
        ),
        (
            '{ type = "Repeat", count = 0, action = { Delay = { ms = 1 } } }',
            "action.count: 0 is not a repetition count (1-10000)",
        ),
        (
            '{ type = "Repeat", count = 200, action = { type = "Repeat", count = 100, '
            'action = { Text = { text = "x" } } } }',
            "action: runs 20000 actions per event, repetitions multiplied out (at most 10000)",
        ),
        (
            '{ type = "Conditional", then_action = { Text = { text = "x" } } }',
            "action.condition: is required",
        ),
        (
            '{ type = "Conditional", condition = "Sometimes", then_action = { Text = { text = "x" } } }',
            "action.condition: 'Sometimes' is not one of Always, Never, TimeRange",
        ),
        (
            '{ type = "Conditional", condition = "TimeRange", then_action = { Text = { text = "x" } } }',
            "action.condition: 'TimeRange' needs its fields",
        ),
        (
            '{ type = "Conditional", condition = { type = "TimeRange", start = "24:00", end = "1:00" }, '
            'then_action = { Text = { text = "x" } } }',
            "action.condition.start: '24:00' is not a time of day as HH:MM (00:00-23:59)",
        ),
        (
            '{ type = "Conditional", condition = { DayOfWeek = { days = [0] } }, '
            'then_action = { Text = { text = "x" } } }',
            "action.condition.days[0]: the integer 0 is not a day (1 Monday … 7 Sunday)",
        ),
        (
            '{ type = "Conditional", condition = { type = "Not" }, then_action = { Text = { text = "x" } } }',
            "action.condition.condition: is required",
        ),
        (
            '{ type = "Conditional", condition = "Always", then_action = { ModeChange = { mode = "Nowhere" } } }',
            "action: ModeChange to unknown mode 'Nowhere' (modes: Default)",
        ),
    ],
)
def test_errors_name_the_key_path(action: str, message: str) -> None:
    diagnostics = error_of(
        f"[[global_mappings]]\ntrigger = {{ Note = {{ note = 1 }} }}\naction = {action}\n"
    )
    assert diagnostics.startswith(f"{SOURCE}: global_mappings[0].")
    assert message in diagnostics


def test_unknown_keys_and_tolerated_values_are_warnings_that_name_the_known() -> None:
    config = parse("""
unknown_section = 1
[logging]
level = "info"
[advanced_settings]
cmd_key = "Ctrl"
[[modes]]
name = "Default"
[[modes.mappings]]
trigger = { Note = { note = 1, colour = 2 } }
action = { type = "Keystroke", keys = "Hyper+a", modifiers = ["fn"], repeat = true }
[[modes.mappings]]
trigger = { Note = { note = 2 } }
action = { type = "Keystroke", keys = "fn" }
[[modes.mappings]]
trigger = { Note = { note = 3 } }
action = { type = "VolumeControl", operation = "Set" }
[[modes.mappings]]
trigger = { Note = { note = 4 } }
action = { type = "MouseClick", button = "left", x = 5 }
[[modes.mappings]]
trigger = { Note = { note = 5 } }
action = { type = "SendMidi", port = "p", message_type = "CC", controller = 1, note = 60 }
[[modes.mappings]]
trigger = { Note = { note = 6 } }
action = { type = "Conditional", condition = { type = "And", conditions = [ { ModeIs = { mode = "Elsewhere" } } ] }, then_action = { Text = { text = "x" } } }
""")
    assert config.native.keymap == KeyMap(Modifier.CTRL)
    found = {warning.path: warning.message for warning in config.warnings}
    assert found == {
        "unknown_section": (
            "unknown key, ignored (known here: advanced_settings, device, devices, global_mappings, "
            "logging, modes, plugins)"
        ),
        "modes[0].mappings[0].trigger.colour": (
            "unknown key, ignored (known here: channel, device, note, velocity_min)"
        ),
        "modes[0].mappings[0].action.keys": (
            "unknown key 'Hyper' (known: space, Return/Enter, Tab, Escape/Esc, Backspace, "
            "Delete/Del, Up/Down/Left/Right (or UpArrow…), Home, End, PageUp/PgUp, "
            "PageDown/PgDn, F1-F20, VolumeUp, VolumeDown, Mute, PlayPause, Stop, Next/NextTrack, "
            "Previous/Prev, Insert, PrintScreen, ScrollLock, Pause, CapsLock, NumLock, any "
            "single character; modifiers cmd/command/meta, ctrl/control, alt/option, shift, "
            "super/win, fn (ignored)); ignored, as the reference does"
        ),
        "modes[0].mappings[0].action.repeat": (
            "unknown key, ignored (known here: keys, modifiers, type)"
        ),
        "modes[0].mappings[1].action.keys": "nothing to press in 'fn': the action does nothing",
        "modes[0].mappings[2].action.value": (
            "Set without a value sets the volume to 50 %, as the reference does"
        ),
        "modes[0].mappings[3].action.x": "a click moves only with both x and y; ignored",
        "modes[0].mappings[4].action.note": "not used by a CC message; ignored",
        "modes[0].mappings[5].action": (
            "ModeIs 'Elsewhere' names no mode, so it is never true (Default)"
        ),
    }
    assert (
        f"{SOURCE}: unknown_section: unknown key, ignored (known here: advanced_settings, "
        "device, devices, global_mappings, logging, modes, plugins)"
    ) in config.warning_lines()
    assert keys(config.modes[0].mappings[0].action) == ([], ["a"])


def test_cmd_key_and_shell_timeout() -> None:
    assert parse("").native == act.NativeSettings(KeyMap(Modifier.SUPER), 60_000)
    settings = parse('[advanced_settings]\ncmd_key = "alt"\nshell_timeout_ms = 500\n').native
    assert settings == act.NativeSettings(KeyMap(Modifier.ALT), 500)
    assert "advanced_settings.cmd_key: cmd_key must be one of super, ctrl, alt, not 'hyper'" in (
        error_of('[advanced_settings]\ncmd_key = "hyper"\n')
    )


def test_a_short_secret_is_a_warning_of_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHORT_TOKEN", "abc")
    config = parse(
        '[plugins.config.obs]\npassword = "${SHORT_TOKEN}"\n[[global_mappings]]\n'
        'trigger = { Note = { note = 1 } }\naction = { WasmPlugin = { path = "obs" } }\n'
    )
    (warning,) = config.warnings
    assert warning.path == "plugins.config.obs.password"
    assert warning.message.startswith("the value of ${SHORT_TOKEN} has 3 character(s), too short")


def test_warnings_show_control_characters_escaped() -> None:
    config = parse('"bad\\u001b[2Jkey" = 1\n')
    assert config.warnings[0].path == "bad\\x1b[2Jkey"


def test_check_shows_warnings_and_strict_makes_them_errors(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    path = tmp_path / "ref.toml"
    path.write_text("""
[device]
name = "Mikro"
auto_connect = true
port = 1
[[modes]]
name = "Default"
[[modes.mappings]]
[modes.mappings.trigger]
type = "Note"
note = 1
[modes.mappings.action]
type = "Shell"
command = "notify-send hi"
[[modes.mappings]]
[modes.mappings.trigger]
type = "Note"
note = 2
[modes.mappings.action]
type = "Sequence"
actions = [ { type = "Delay", ms = 10 }, { type = "Launch", app = "Safari", where = "dock" } ]
""")
    result = conductor_cli("check", path, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and not report["strict"]
    assert report["warnings"] == [
        {
            "path": "device.port",
            "message": "unknown key, ignored (known here: auto_connect, auto_reconnect, name)",
        },
        {
            "path": "modes[0].mappings[1].action.actions[1].where",
            "message": "unknown key, ignored (known here: app, type)",
        },
    ]
    assert report["user_rights"] == [
        {"path": "modes[0].mappings[0].action", "action": "Shell 'notify-send hi'"},
        {"path": "modes[0].mappings[1].action", "action": "Launch 'Safari'"},
    ]
    table = conductor_cli("check", path)
    assert table.returncode == 0
    assert "valid config, 1 mode(s) (Default), 2 mapping(s), 2 warning(s)" in table.stdout
    assert "warning: unknown key, ignored (known here: auto_connect" in table.stdout
    assert "note: Shell 'notify-send hi' runs with your rights" in table.stdout

    strict = conductor_cli("check", path, "--strict", "--json")
    assert strict.returncode == 1
    assert json.loads(strict.stdout)["ok"] is False
    strict_table = conductor_cli("check", path, "--strict")
    assert strict_table.returncode == 1
    assert "invalid under --strict" in strict_table.stdout
    assert "error: unknown key, ignored" in strict_table.stdout
    clean = tmp_path / "clean.toml"
    clean.write_text(
        '[[global_mappings]]\ntrigger = { Note = { note = 1 } }\naction = { Text = { text = "x" } }\n'
    )
    assert conductor_cli("check", clean, "--strict").returncode == 0


# -- any TOML value is an action or one line of reason ------------------------------------

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(act.ACTION_KINDS + cnd.CONDITION_KINDS)
    | st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 1, 1))
)
_KEYS = st.sampled_from(
    [
        "type",
        "keys",
        "modifiers",
        "text",
        "app",
        "command",
        "button",
        "x",
        "y",
        "operation",
        "value",
        "action",
        "count",
        "delay_ms",
        "condition",
        "then_action",
        "else_action",
        "conditions",
        "start",
        "end",
        "days",
        "app_name",
        "mode",
        "port",
        "message_type",
        "controller",
        "pitch",
        "pressure",
        "actions",
        "ms",
    ]
) | st.text(max_size=8)


def _toml_values() -> st.SearchStrategy[Any]:
    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5)

    return st.recursive(_SCALARS.filter(lambda v: v is not None), extend, max_leaves=25)


def _kinded() -> st.SearchStrategy[Any]:
    """Mostly action-shaped tables: a known `type` and fields of any value."""
    return st.builds(
        lambda kind, body: {"type": kind, **body},
        st.sampled_from(act.ACTION_KINDS),
        st.dictionaries(_KEYS, _toml_values(), max_size=5),
    )


@settings(max_examples=150)
@given(st.one_of(_toml_values(), _kinded()))
def test_any_toml_value_is_an_action_or_one_line_of_reason(value: Any) -> None:
    document = {
        "modes": [{"name": "Default"}],
        "global_mappings": [{"trigger": {"Note": {"note": 1}}, "action": value}],
    }
    text = _dump(document)
    assert tomllib.loads(text) == document  # the value survived as TOML
    try:
        config = parse(text)
    except ConfigError as refused:
        message = refused.diagnostics()
        assert message.startswith(f"{SOURCE}: ") and "\n" not in message
        return
    assert isinstance(config.global_mappings[0].action, act.Action)
    assert all("\n" not in line for line in config.warning_lines())


def _dump(value: Any, key: str = "") -> str:
    """A minimal TOML writer for the generated documents (inline tables only)."""

    def inline(item: Any) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, (int, float)):
            return repr(item) if not isinstance(item, float) else _float(item)
        if isinstance(item, str):
            return _string(item)
        if isinstance(item, dt.datetime):
            return item.isoformat()
        if isinstance(item, list):
            return "[" + ", ".join(inline(x) for x in item) + "]"
        return "{" + ", ".join(f"{_string(k)} = {inline(v)}" for k, v in item.items()) + "}"

    return "\n".join(f"{_string(k)} = {inline(v)}" for k, v in value.items()) + "\n"


def _string(text: str) -> str:
    """A TOML basic string: JSON's escapes, but astral characters kept whole (TOML refuses
    escaped surrogates) and DEL escaped (TOML refuses it raw)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _float(number: float) -> str:
    if number == float("inf"):
        return "inf"
    if number == float("-inf"):
        return "-inf"
    return repr(number)


def test_run_logs_the_warnings_at_start_and_on_reload(tmp_path: Path) -> None:
    path = tmp_path / "live.toml"
    body = '[[global_mappings]]\ntrigger = { Note = { note = 1 } }\naction = { Text = { text = "x" } }\n'
    path.write_text("colour = 1\n" + body)
    track = mido.MidiTrack(mido.Message("note_on", note=99, time=48) for _ in range(400))
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks.append(track)
    midi.save(tmp_path / "long.mid")  # 20 s of notes nothing maps
    running = RunningConductor(path, "--replay", tmp_path / "long.mid")
    try:
        running.wait_stderr(f"{path}: colour: unknown key, ignored (known here:")
        running.wait_stderr("listening on")
        # The watcher goes live just after that line: write until the reload is seen.
        deadline = time.monotonic() + 10
        while not any("config reloaded" in line for line in running.stderr_lines):
            assert time.monotonic() < deadline, "".join(running.stderr_lines)
            path.write_text("volume = 11\n" + body)
            time.sleep(0.2)
        running.wait_stderr(f"{path}: volume: unknown key, ignored")
    finally:
        assert running.stop() == 0
    assert sum("colour: unknown key" in line for line in running.stderr_lines) == 1


# -- configs written in the reference's style ---------------------------------------------

REFERENCE_CONFIGS = sorted((FIXTURES / "reference-configs").glob("*.toml"))


@pytest.mark.parametrize("path", REFERENCE_CONFIGS, ids=lambda path: path.name)
def test_reference_style_configs_pass_check(conductor_cli: Runner, path: Path) -> None:
    result = conductor_cli("check", path, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["warnings"] == []


def test_the_reference_style_configs_cover_every_action_trigger_and_condition() -> None:
    configs = [parse_config(path.read_text(), path) for path in REFERENCE_CONFIGS]
    mappings = [m for config in configs for m in config.all_mappings()]
    actions = [a for m in mappings for a in act.flatten(m.action)] + [m.action for m in mappings]
    nested = [child for a in actions for child in act.children(a)]
    action_kinds = {type(a).__name__ for a in actions + nested}
    assert action_kinds == set(act.ACTION_KINDS)
    assert {type(m.trigger).__name__ for m in mappings} == set(trg.TRIGGER_KINDS)
    assert any(getattr(m.trigger, "device", None) for m in mappings)

    def walk(condition: cnd.Condition) -> list[cnd.Condition]:
        inner = [*getattr(condition, "conditions", ())]
        if isinstance(condition, cnd.Not):
            inner.append(condition.condition)
        return [condition, *(c for part in inner for c in walk(part))]

    conditions = [c for a in actions if isinstance(a, act.Conditional) for c in walk(a.condition)]
    assert {type(c).__name__ for c in conditions} == set(cnd.CONDITION_KINDS)
    sends = {a.message_type for a in actions if isinstance(a, act.SendMidi)}
    assert sends >= {
        "note_on",
        "note_off",
        "control_change",
        "program_change",
        "pitchwheel",
        "aftertouch",
    }
    operations = {a.operation for a in actions if isinstance(a, act.VolumeControl)}
    assert operations == set(act.VOLUME_OPERATIONS)
    texts = {path.name: path.read_text() for path in REFERENCE_CONFIGS}
    assert any('type = "Keystroke"' in text for text in texts.values())  # table spelling
    assert any("{ Keystroke = {" in text for text in texts.values())  # the seed's spelling


def test_plugin_tables_naming_no_used_plugin_are_warnings_with_the_likely_name() -> None:
    """`[plugins.grants] my-pads` beside a mapping of `my_pads.wasm` does nothing: say so."""
    config = parse_config(
        """
[plugins.grants]
my-pads = ["Filesystem"]
spotify = ["Network"]
[plugins.hosts]
ghost = ["https://example.org"]
[plugins.commands]
my_pad = ["notify-send"]
[plugins.config.my_pads]
colour = "red"
[plugins.config.spotfy]
client_id = "x"
[[modes]]
name = "Default"
[[modes.mappings]]
trigger = { Note = { note = 36 } }
action = { WasmPlugin = { path = "plugins/my_pads.wasm" } }
[[modes.mappings]]
trigger = { Note = { note = 37 } }
action = { WasmPlugin = { path = "conductor_wasm_spotify.wasm" } }
""",
        Path("/configs/pads.toml"),
    )
    found = {warning.path: warning.message for warning in config.warnings}
    assert found == {
        "plugins.grants.my-pads": (
            "no mapping uses a plugin named 'my-pads' (plugins used: my_pads, spotify); "
            "did you mean 'my_pads'?"
        ),
        "plugins.hosts.ghost": (
            "no mapping uses a plugin named 'ghost' (plugins used: my_pads, spotify)"
        ),
        "plugins.commands.my_pad": (
            "no mapping uses a plugin named 'my_pad' (plugins used: my_pads, spotify); "
            "did you mean 'my_pads'?"
        ),
        "plugins.config.spotfy": (
            "no mapping uses a plugin named 'spotfy' (plugins used: my_pads, spotify); "
            "did you mean 'spotify'?"
        ),
    }
