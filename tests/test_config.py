"""Config parsing and validation: both spellings, defaults, and errors that name file, line and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conductor.engine import actions as act
from conductor.engine import triggers as trg
from conductor.engine.config import DeviceConfig, load_config, parse_config
from conductor.errors import ConfigError
from conductor.signing import SignaturePolicy
from tests.conftest import FIXTURES, Runner

SEED_EXAMPLE = """
[[modes.mappings]]
trigger = { Note = { note = 60 } }
action = { WasmPlugin = {
    path = "~/.conductor/wasm-plugins/my_plugin.wasm",
    params = {
        "action": "play"
    }
}}
"""


def parse(text: str, name: str = "conductor.toml") -> object:
    return parse_config(text, Path("/configs") / name)


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return caught.value.diagnostics()


def test_both_spellings_of_tagged_values_are_equal() -> None:
    seed = parse("""
[[modes]]
name = "Default"
[[modes.mappings]]
trigger = { Note = { note = 60, velocity_min = 10 } }
action = { WasmPlugin = { path = "p.wasm", params = { action = "play" } } }
""")
    reference = parse("""
[[modes]]
name = "Default"
[[modes.mappings]]
[modes.mappings.trigger]
type = "Note"
note = 60
velocity_min = 10
[modes.mappings.action]
type = "WasmPlugin"
path = "p.wasm"
[modes.mappings.action.params]
action = "play"
""")
    (a,) = seed.modes[0].mappings
    (b,) = reference.modes[0].mappings
    assert a.trigger == b.trigger == trg.Note(60, 10)
    assert a.action == b.action and a.action.params == b.action.params == {"action": "play"}


def test_every_trigger_and_action_parses() -> None:
    config = parse("""
[device]
name = "Pads"
auto_reconnect = false
[plugins]
signature_policy = "self-signed"
trust_store = "keys.toml"
limits = { max_fuel = 1000, timeout_ms = 50 }
grants = { fs_probe = ["filesystem"] }
[advanced_settings]
chord_timeout_ms = 80
[[modes]]
name = "A"
color = "red"
mappings = [
  { trigger = { VelocityRange = { note = 1, level = "soft", soft_max = 20, medium_max = 90 } }, action = { ModeChange = { mode = "B" } } },
  { trigger = { LongPress = { note = 2, duration_ms = 700 } }, action = { Delay = { ms = 5 } } },
  { trigger = { DoubleTap = { note = 3 } }, action = { Sequence = { actions = [ { Delay = { ms = 1 } }, { ModeChange = { mode = "A" } } ] } } },
  { trigger = { NoteChord = { notes = [4, 5, 6], timeout_ms = 30 } }, action = { SendMidi = { port = "Synth", message_type = "note_on", note = 60, velocity = 90, channel = 9 } } },
  { trigger = { CC = { cc = 7, value_min = 3, channel = 2 } }, action = { WasmPlugin = { path = "x.wasm", limits = { max_fuel = 5 } } } },
  { trigger = { EncoderTurn = { cc = 8, direction = "counterclockwise" } }, action = { SendMidi = { port = "v", virtual = true, message_type = "pitchwheel", pitch = -100 } } },
  { trigger = { PitchBend = { value_min = 0, value_max = 100 } }, action = { ModeChange = { mode = "B" } } },
  { trigger = { Aftertouch = { pressure_min = 9 } }, action = { ModeChange = { mode = "B" } } },
]
[[modes]]
name = "B"
[[global_mappings]]
description = "global"
trigger = { Note = { note = 9 } }
action = { ModeChange = { mode = "A" } }
""")
    assert config.devices == (DeviceConfig("Pads", auto_reconnect=False),)
    assert config.plugins.signature_policy is SignaturePolicy.SELF_SIGNED
    assert config.plugins.trust_store == Path("/configs/keys.toml")
    assert (
        config.plugins.limits.max_fuel == 1000
        and config.plugins.limits.max_memory_bytes == 128 * 1024 * 1024
    )
    assert config.advanced == trg.AdvancedSettings(80, 300, 2000)
    triggers = [m.trigger for m in config.modes[0].mappings]
    assert triggers == [
        trg.VelocityRange(1, "soft", 20, 90),
        trg.LongPress(2, 700),
        trg.DoubleTap(3),
        trg.NoteChord((4, 5, 6), 30),
        trg.CC(7, 3, 2),
        trg.EncoderTurn(8, "counterclockwise"),
        trg.PitchBend(0, 100),
        trg.Aftertouch(9),
    ]
    plugin_action = config.modes[0].mappings[4].action
    assert isinstance(plugin_action, act.WasmPlugin)
    assert plugin_action.limits is not None and plugin_action.limits.max_fuel == 5
    assert plugin_action.limits.timeout_ms == 50  # per-action limits start from the global ones
    send = config.modes[0].mappings[3].action
    assert send == act.SendMidi("Synth", "note_on", 9, (("note", 60), ("velocity", 90)))
    assert config.global_mappings[0].description == "global"
    assert [m.name for m in config.modes] == ["A", "B"]


def test_defaults_without_any_section() -> None:
    config = parse("")
    assert [mode.name for mode in config.modes] == ["Default"]
    assert config.advanced == trg.AdvancedSettings(50, 300, 2000)
    assert config.plugins.signature_policy is SignaturePolicy.TRUSTED


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[[modes]]\nname='A'\n[[modes.mappings]]\ntrigger = { Note = { note = 200 } }\n"
            "action = { ModeChange = { mode = 'A' } }\n",
            "modes[0].mappings[0].trigger.note: 200 is not a MIDI note (0-127)",
        ),
        (
            "[[global_mappings]]\ntrigger = { Note = { note = 1 } }\naction = { WasmPlugin = { path = 'p', "
            "params = { context = 1 } } }\n",
            "global_mappings[0].action.params.context: 'context' is reserved",
        ),
        (
            "[[global_mappings]]\ntrigger = { Nope = { note = 1 } }\naction = { Delay = { ms = 1 } }\n",
            "global_mappings[0].trigger: 'Nope' is not one of Note, VelocityRange",
        ),
        (
            "[[global_mappings]]\ntrigger = { type = 'CC', cc = 'x' }\naction = { Delay = { ms = 1 } }\n",
            "global_mappings[0].trigger.cc: expected an integer, got the string 'x'",
        ),
        (
            "[[global_mappings]]\ntrigger = { Note = { note = 1 } }\naction = { ModeChange = { mode = 'Nowhere' } }\n",
            "ModeChange to unknown mode 'Nowhere'",
        ),
        (
            "[[modes]]\nname = 'A'\n[[modes]]\nname = 'A'\n",
            "modes[1].name: mode 'A' is defined twice",
        ),
        (
            "[plugins]\nsignature_policy = 'anything'\n",
            "plugins.signature_policy: 'anything' is not one of",
        ),
        (
            "[plugins.limits]\nmax_fuel = -5\n",
            "plugins.limits.max_fuel: must be a positive integer",
        ),
        ("[plugins.grants]\nx = ['Teleport']\n", "plugins.grants.x: unknown capability 'Teleport'"),
        ("[device]\nname = 5\n", "device.name: expected a string"),
        (
            "[[global_mappings]]\ntrigger = { Note = { note = 1 } }\n",
            "global_mappings[0].action: is required",
        ),
        (
            "[[global_mappings]]\ntrigger = { NoteChord = { notes = [1] } }\naction = { Delay = { ms = 1 } }\n",
            "trigger.notes: a chord needs at least two notes",
        ),
        (
            "[[global_mappings]]\ntrigger = { EncoderTurn = { cc = 1, direction = 'up' } }\naction = { Delay = { ms = 1 } }\n",
            "trigger.direction: 'up' is not one of clockwise, counterclockwise",
        ),
        (
            "[[global_mappings]]\ntrigger = { Note = { note = 1 } }\naction = { SendMidi = { port = 'x', "
            "message_type = 'note_on', note = 300 } }\n",
            "action.note: 300 is not a valid note (0-127)",
        ),
    ],
)
def test_errors_name_the_file_and_key_path(text: str, message: str) -> None:
    diagnostics = error_of(text)
    assert diagnostics.startswith("/configs/conductor.toml: ")
    assert message in diagnostics


def test_toml_syntax_errors_give_the_line() -> None:
    assert error_of("[device]\nname = \n").startswith("/configs/conductor.toml:2: invalid TOML")


def test_the_seed_example_says_how_to_write_it() -> None:
    diagnostics = error_of(SEED_EXAMPLE)
    assert diagnostics.startswith("/configs/conductor.toml:4: invalid TOML")
    assert "inline tables must stay on one line" in diagnostics
    assert 'params = { action = "play" }' in diagnostics
    fixed = parse(
        "[[modes.mappings]]\ntrigger = { Note = { note = 60 } }\naction = { WasmPlugin = { path = "
        '"~/.conductor/wasm-plugins/my_plugin.wasm", params = { action = "play" } } }\n'.replace(
            "[[modes.mappings]]", "[[modes]]\nname = 'Default'\n[[modes.mappings]]"
        )
    )
    assert fixed.modes[0].mappings[0].action.params == {"action": "play"}


def test_load_config_reports_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="not found"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "latin.toml").write_bytes(b"[device]\nname = '\xe9'\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(tmp_path / "latin.toml")


def test_check_command_on_the_demo_and_on_broken_configs(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    demo = conductor_cli("check", FIXTURES / "demo" / "config.toml", "--json")
    assert demo.returncode == 0, demo.stderr
    report = json.loads(demo.stdout)
    assert report["ok"] and report["modes"] == ["Drums", "FX"]
    assert {row["plugin"]: row["signature"] for row in report["plugins"]} == {
        "pad_counter": "trusted",
        "event_logger": "trusted",
    }
    seed = tmp_path / "seed.toml"
    seed.write_text(SEED_EXAMPLE)
    result = conductor_cli("check", seed)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "inline tables must stay on one line" in result.stderr
    missing = tmp_path / "missing_plugin.toml"
    missing.write_text(
        "[[global_mappings]]\ntrigger = { Note = { note = 1 } }\n"
        "action = { WasmPlugin = { path = 'nothere.wasm' } }\n"
    )
    result = conductor_cli("check", missing, "--json")
    assert result.returncode == 1
    (row,) = json.loads(result.stdout)["plugins"]
    assert not row["ok"] and "nothere.wasm: plugin not found" in row["error"]
    assert row["used_at"] == "global_mappings[0].action"


def test_devices_program_change_and_a_device_on_every_midi_trigger() -> None:
    config = parse("""
[[devices]]
name = "Launchpad"
[[devices]]
name = "nanoKONTROL"
auto_connect = false
auto_reconnect = false
[[global_mappings]]
trigger = { ProgramChange = { program = 5, channel = 3, device = "nano" } }
action = { Delay = { ms = 1 } }
[[global_mappings]]
trigger = { type = "CC", cc = 7, device = "Launchpad" }
action = { Delay = { ms = 1 } }
""")
    assert config.devices == (
        DeviceConfig("Launchpad"),
        DeviceConfig("nanoKONTROL", auto_connect=False, auto_reconnect=False),
    )
    assert [m.trigger for m in config.global_mappings] == [
        trg.ProgramChange(5, 3, "nano"),
        trg.CC(7, device="Launchpad"),
    ]
    assert parse("").devices == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[device]\nname = 'a'\n[[devices]]\nname = 'b'\n",
            "devices: [device] and [[devices]] are both set: use [device] for one input, or one "
            "[[devices]] table per input",
        ),
        ("[[devices]]\nauto_connect = true\n", "devices[0].name: is required"),
        ("[[devices]]\nname = ''\n", "devices[0].name: must not be empty"),
        (
            "[[devices]]\nname = 'a'\n[[devices]]\nname = 'a'\n",
            "devices[1].name: device 'a' is listed twice",
        ),
        (
            "[devices]\nname = 'a'\n",
            "devices: expected a list of tables, got one table: write [[devices]] (two brackets) "
            "(line 1) for each entry; one [[devices]] table per input, or [device] for just one",
        ),
        (
            "[[global_mappings]]\ntrigger = { ProgramChange = { program = 128 } }\n"
            "action = { Delay = { ms = 1 } }\n",
            "global_mappings[0].trigger.program: 128 is not a program number (0-127)",
        ),
        (
            "[[global_mappings]]\ntrigger = { ProgramChange = { channel = 1 } }\n"
            "action = { Delay = { ms = 1 } }\n",
            "global_mappings[0].trigger.program: is required",
        ),
        (
            "[[global_mappings]]\ntrigger = { Note = { note = 1, device = ' ' } }\n"
            "action = { Delay = { ms = 1 } }\n",
            "global_mappings[0].trigger.device: must name an input",
        ),
        (
            "[[global_mappings]]\ntrigger = { Note = { note = 1, device = 2 } }\n"
            "action = { Delay = { ms = 1 } }\n",
            "global_mappings[0].trigger.device: expected a string, got the integer 2",
        ),
        (
            "[global_mappings]\ntrigger = { Note = { note = 1 } }\n",
            "global_mappings: expected a list of tables, got one table: write [[global_mappings]] "
            "(two brackets) (line 1)",
        ),
        (
            "[plugins]\n\n[modes]\nname = 'A'\n",
            "modes: expected a list of tables, got one table: write [[modes]] (two brackets) "
            "(line 3) for each entry; a config has a list of modes",
        ),
    ],
)
def test_device_and_section_errors(text: str, message: str) -> None:
    diagnostics = error_of(text)
    assert diagnostics.startswith("/configs/conductor.toml: ") and message in diagnostics
    assert "\n" not in diagnostics


def test_an_unknown_key_in_a_device_is_a_warning_naming_the_known_ones() -> None:
    config = parse_config("[[devices]]\nname = 'a'\ncolour = 1\n", Path("/configs/c.toml"))
    (warning,) = config.warnings
    assert warning.path == "devices[0].colour" and "unknown key" in warning.message
    assert "name" in warning.message


def test_the_fixed_seed_example_shows_the_modes_lines_to_add() -> None:
    """The product page's example, its TOML fixed as the first error says, still lacks a
    [[modes]] entry: the error shows the lines to add, and adding them makes it load."""
    fixed = (
        "# config.toml\n"
        "[[modes.mappings]]\n"
        "trigger = { Note = { note = 60 } }\n"
        'action = { WasmPlugin = { path = "~/.conductor/wasm-plugins/my_plugin.wasm", '
        'params = { action = "play" } } }\n'
    )
    diagnostics = error_of(fixed)
    assert diagnostics == (
        "/configs/conductor.toml: modes: [[modes.mappings]] (line 2) belongs to a mode, but no "
        "[[modes]] entry comes before it; add these two lines above the first [[modes.mappings]]: "
        '[[modes]] and name = "Default"'
    )
    repaired = fixed.replace(
        "[[modes.mappings]]", '[[modes]]\nname = "Default"\n[[modes.mappings]]'
    )
    assert parse(repaired).modes[0].mappings[0].action.params == {"action": "play"}


def test_gamepad_triggers_of_the_reference_load_and_are_validated() -> None:
    config = parse("""
[[global_mappings]]
trigger = { type = "GamepadButton", button = 128, velocity_min = 1 }
action = { Delay = { ms = 1 } }
[[global_mappings]]
trigger = { GamepadButtonChord = { buttons = [128, 129], timeout_ms = 50 } }
action = { Delay = { ms = 1 } }
[[global_mappings]]
trigger = { type = "GamepadAnalogStick", axis = 131, direction = "CounterClockwise" }
action = { Delay = { ms = 1 } }
[[global_mappings]]
trigger = { type = "GamepadTrigger", trigger = 133, threshold = 64 }
action = { Delay = { ms = 1 } }
[[global_mappings]]
trigger = { type = "GamepadAnalogStick", axis = 128 }
action = { Delay = { ms = 1 } }
""")
    assert [m.trigger for m in config.global_mappings] == [
        trg.GamepadButton(128, 1),
        trg.GamepadButtonChord((128, 129), 50),
        trg.GamepadAnalogStick(131, "counterclockwise"),
        trg.GamepadTrigger(133, 64),
        trg.GamepadAnalogStick(128),
    ]
    mapping = "[[global_mappings]]\ntrigger = {{ {} }}\naction = {{ Delay = {{ ms = 1 }} }}\n"
    for trigger, message in [
        (
            "type = 'GamepadButton', button = 127",
            "button: 127 is not a gamepad button id (128-255)",
        ),
        ("type = 'GamepadButtonChord', buttons = []", "buttons: list at least one"),
        (
            "type = 'GamepadButtonChord', buttons = [128, 5]",
            "buttons[1]: 5 is not a gamepad button id (128-255)",
        ),
        ("type = 'GamepadAnalogStick', axis = 132", "axis: 132 is not a gamepad stick axis id"),
        (
            "type = 'GamepadAnalogStick', axis = 128, direction = 'up'",
            "direction: 'up' is not one of clockwise, counterclockwise",
        ),
        ("type = 'GamepadTrigger', trigger = 131", "trigger: 131 is not a gamepad trigger id"),
    ]:
        assert f"global_mappings[0].trigger.{message}" in error_of(mapping.format(trigger))
    (warning,) = parse_config(
        mapping.format("type = 'GamepadButton', button = 130, channel = 1"), Path("/c.toml")
    ).warnings
    assert warning.path == "global_mappings[0].trigger.channel" and "unknown key" in warning.message


def test_the_references_trigger_forms_load_and_fire_as_there() -> None:
    """The reference writes `Clockwise`, leaves out an encoder's direction or a velocity range's
    level, and counts pitch bend 0-16383 with the centre at 8192."""
    config = parse("""
[[modes]]
name = "Default"
[[modes.mappings]]
trigger = { type = "EncoderTurn", cc = 1, direction = "CounterClockwise" }
action = { type = "Delay", ms = 1 }
[[modes.mappings]]
trigger = { type = "EncoderTurn", cc = 2 }
action = { type = "Delay", ms = 1 }
[[modes.mappings]]
trigger = { type = "VelocityRange", note = 3, soft_max = 30, medium_max = 90 }
action = { type = "Delay", ms = 1 }
[[modes.mappings]]
trigger = { type = "PitchBend", value_min = 8192, value_max = 16383 }
action = { type = "Delay", ms = 1 }
""")
    assert config.warnings == ()
    assert [m.trigger for m in config.modes[0].mappings] == [
        trg.EncoderTurn(1, "counterclockwise"),
        trg.EncoderTurn(2, None),
        trg.VelocityRange(3, None, 30, 90),
        trg.PitchBend(8192, 16383),
    ]
    assert "value_min: -1 is not a pitch bend value" in error_of(
        "[[global_mappings]]\ntrigger = { PitchBend = { value_min = -1 } }\n"
        "action = { Delay = { ms = 1 } }\n"
    )
