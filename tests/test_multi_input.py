"""More than one controller: `[[devices]]` and repeated `--port` read as one stream, triggers
filtered by `device`, Program Change from a real port, gamepad mappings reported inactive, and
one clean error line when no MIDI system runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import rtmidi

from conductor.engine.config import parse_config
from conductor.engine.devices import input_specs, resolve_devices
from conductor.engine.triggers import Note
from conductor.errors import ClosedError, ConfigError, PortError, UsageError
from conductor.midi.inputs import InputSpec, open_input
from conductor.midi.ports import backend
from tests.conftest import Runner
from tests.hostile._helpers import assert_one_error_line, notes_file
from tests.midi_helpers import RunningConductor, jack_connections
from tests.plugin_helpers import PLUGINS

MAPPINGS = """
[plugins]
signature_policy = "unsigned"
[[global_mappings]]
description = "left pad"
trigger = {{ Note = {{ note = 60, device = "{left}" }} }}
action = {{ WasmPlugin = {{ path = "{plugins}/event_logger.wasm", params = {{ label = "L" }} }} }}
[[global_mappings]]
description = "right pad"
trigger = {{ Note = {{ note = 60, device = "{right}" }} }}
action = {{ WasmPlugin = {{ path = "{plugins}/event_logger.wasm", params = {{ label = "R" }} }} }}
[[global_mappings]]
description = "left only"
trigger = {{ Note = {{ note = 61, device = "{left}" }} }}
action = {{ WasmPlugin = {{ path = "{plugins}/event_logger.wasm", params = {{ label = "L61" }} }} }}
[[global_mappings]]
description = "foot switch"
trigger = {{ ProgramChange = {{ program = 5, channel = 2 }} }}
action = {{ WasmPlugin = {{ path = "{plugins}/event_logger.wasm", params = {{ label = "PC" }} }} }}
"""


def config_text(left: str, right: str, devices: str = "") -> str:
    return devices + MAPPINGS.format(left=left, right=right, plugins=PLUGINS)


def resolve(text: str, sources: dict[str, str]) -> list[str | None]:
    config = resolve_devices(parse_config(text, Path("/d.toml")), sources)
    return [
        m.trigger.device
        for m in config.global_mappings
        if isinstance(m.trigger, Note)  # the others carry no device here
    ]


def test_a_trigger_device_resolves_to_one_open_input() -> None:
    sources = {"Launchpad": "Launchpad Mini:Launchpad Mini MIDI 1 20:0", "nano": "nanoKONTROL2:0"}
    # an input's own name, its port's name, or a unique part of a port's name
    assert resolve(config_text("Launchpad", "nanoKONTROL2:0"), sources) == [
        "Launchpad",
        "nano",
        "Launchpad",
    ]
    assert resolve(config_text("mini midi", "KONTROL"), sources) == [
        "Launchpad",
        "nano",
        "Launchpad",
    ]
    with pytest.raises(ConfigError) as none:
        resolve(config_text("Launchpad", "Keystation"), sources)
    assert none.value.diagnostics() == (
        "/d.toml: global_mappings[1].trigger.device: 'Keystation' matches none of the open "
        "inputs: 'Launchpad' (port 'Launchpad Mini:Launchpad Mini MIDI 1 20:0'), 'nano' "
        "(port 'nanoKONTROL2:0')"
    )
    with pytest.raises(ConfigError) as ambiguous:
        resolve(config_text(":", "nano"), sources)
    assert "global_mappings[0].trigger.device: ':' matches more than one open input" in (
        ambiguous.value.diagnostics()
    )


def test_inputs_come_from_the_options_else_the_configured_devices() -> None:
    devices = """
[[devices]]
name = "pads"
auto_reconnect = false
[[devices]]
name = "keys"
[[devices]]
name = "spare"
auto_connect = false
"""
    config = parse_config(devices, Path("/d.toml"))
    assert input_specs(config, [], []) == [
        InputSpec("pads", reconnect=False),
        InputSpec("keys"),
    ]
    assert input_specs(config, ["pads", "other"], ["mine"]) == [
        InputSpec("pads", reconnect=False),  # a --port keeps its device's settings
        InputSpec("other"),
        InputSpec("mine", virtual=True),
    ]
    single = parse_config('[device]\nname = "x"\nauto_reconnect = false\n', Path("/d.toml"))
    assert input_specs(single, ["y"], []) == [InputSpec("y", reconnect=False)]
    with pytest.raises(UsageError, match="no MIDI input: pass --port NAME"):
        input_specs(parse_config("", Path("/d.toml")), [], [])
    manual = parse_config('[[devices]]\nname = "a"\nauto_connect = false\n', Path("/m.toml"))
    with pytest.raises(UsageError, match="device 'a': auto_connect is false: pass --port NAME"):
        input_specs(manual, [], [])


def controller(name: str) -> rtmidi.MidiOut:
    sender = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=f"{name}-client")
    sender.open_virtual_port(name)
    return sender


def labels(event: dict[str, object]) -> list[str]:
    results = event["results"]
    assert isinstance(results, list)
    return [str(r["output"]["logs"][0]["message"]).split(":")[0] for r in results]


class TestOverJack:
    @pytest.mark.parametrize("how", ["devices", "ports"])
    def test_two_ports_one_stream_and_device_filters(
        self, jack_server: str, tmp_path: Path, how: str
    ) -> None:
        left, right = controller(f"multi-left-{how}"), controller(f"multi-right-{how}")
        config = tmp_path / "multi.toml"
        if how == "devices":
            devices = (
                f'[[devices]]\nname = "multi-left-{how}"\n[[devices]]\nname = "multi-right-{how}"\n'
            )
            config.write_text(config_text("left", "right", devices))
            running = RunningConductor(config, "--api", "jack")
        else:
            config.write_text(config_text(f"multi-left-{how}", "right", '[device]\nname = "x"\n'))
            running = RunningConductor(
                config,
                *("--port", f"multi-left-{how}", "--port", f"multi-right-{how}", "--api", "jack"),
            )
        try:
            running.wait_stderr("listening on")
            left.send_message([0x90, 60, 100])
            event = running.next_event()
            assert event["mapping"] == "left pad" and labels(event) == ["L"]
            assert event["event"]["device"] == f"multi-left-{how}-client:multi-left-{how}"
            right.send_message([0x90, 60, 90])
            event = running.next_event()
            assert event["mapping"] == "right pad" and labels(event) == ["R"]
            right.send_message([0x90, 61, 90])  # mapped on the left device only
            assert running.next_event(matched=False)["mapping"] is None
            left.send_message([0x90, 61, 90])
            assert running.next_event()["mapping"] == "left only"
            right.send_message([0xC2, 5])  # Program Change, from either device
            event = running.next_event()
            assert event["mapping"] == "foot switch" and labels(event) == ["PC"]
            assert event["event"]["type"] == "program_change" and event["event"]["value"] == 5
            assert event["event"]["channel"] == 2
        finally:
            left.close_port()
            right.close_port()
            assert running.stop() == 0
        assert "Traceback" not in "".join(running.stderr_lines)

    def test_ports_open_as_one_owned_input(self, jack_server: str) -> None:
        """Two ports through `open_input` are one stream, closed with `with`; a failure to open
        the second closes the first again."""
        left, right = controller("owned-left"), controller("owned-right")
        midi = backend("jack")
        try:
            specs = [InputSpec("owned-left"), InputSpec("owned-right")]
            with open_input(specs, midi=midi) as merged:
                assert merged.sources() == {
                    "owned-left": "owned-left-client:owned-left",
                    "owned-right": "owned-right-client:owned-right",
                }
                assert jack_connections("owned-left-client:owned-left") and not merged.closed
            assert merged.closed
            merged.close()  # twice is harmless
            with pytest.raises(ClosedError):
                merged.receive(0.01)
            with pytest.raises(PortError):
                open_input([InputSpec("owned-left"), InputSpec("no-such-port-here")], midi=midi)
            assert jack_connections("owned-left-client:owned-left") == []  # the first was freed
        finally:
            left.close_port()
            right.close_port()

    def test_device_errors_name_the_open_inputs(
        self, jack_server: str, conductor_cli: Runner, tmp_path: Path
    ) -> None:
        one, two = controller("twin-one"), controller("twin-two")
        config = tmp_path / "twins.toml"
        config.write_text(config_text("twin", "twin-two"))
        try:
            ambiguous = conductor_cli(
                "run", config, "--port", "twin-one", "--port", "twin-two", "--api", "jack"
            )
            same = conductor_cli(
                "run", config, "--port", "twin-one", "--port", "twin-one-client", "--api", "jack"
            )
        finally:
            one.close_port()
            two.close_port()
        assert ambiguous.returncode == 1
        assert_one_error_line(
            ambiguous.stderr,
            "global_mappings[0].trigger.device: 'twin' matches more than one open input: "
            "'twin-one' (port 'twin-one-client:twin-one'), 'twin-two' (port "
            "'twin-two-client:twin-two')",
        )
        assert same.returncode == 1
        assert_one_error_line(
            same.stderr,
            "MIDI inputs 'twin-one' and 'twin-one-client' are the same port "
            "'twin-one-client:twin-one'",
        )


GAMEPAD = """
[plugins]
signature_policy = "unsigned"
[[modes]]
name = "Default"
[[modes.mappings]]
trigger = {{ type = "GamepadButton", button = 128 }}
action = {{ ModeChange = {{ mode = "Default" }} }}
[[modes.mappings]]
trigger = {{ GamepadTrigger = {{ trigger = 133, threshold = 64 }} }}
action = {{ ModeChange = {{ mode = "Default" }} }}
[[modes.mappings]]
description = "pad"
trigger = {{ Note = {{ note = 60 }} }}
action = {{ WasmPlugin = {{ path = "{plugins}/event_logger.wasm" }} }}
"""


def test_gamepad_mappings_load_and_the_run_says_once_they_stay_inactive(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    config = tmp_path / "gamepad.toml"
    config.write_text(GAMEPAD.format(plugins=PLUGINS))
    song = notes_file(tmp_path / "notes.mid", count=3)
    result = conductor_cli("run", config, "--replay", song, "--speed", "0")
    assert result.returncode == 0, result.stderr
    inactive = [line for line in result.stderr.splitlines() if "gamepad" in line]
    assert inactive == [
        "warning: 2 mapping(s) with a gamepad trigger stay inactive: Conductor reads MIDI input "
        "only, no gamepad"
    ]
    assert result.stdout.count("| pad") == 3  # the MIDI mappings work as ever
    check = conductor_cli("check", config)
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize(
    ("command", "env"),
    [
        (
            ["devices", "--api", "jack"],
            {"JACK_DEFAULT_SERVER": "conductor-nowhere", "JACK_NO_START_SERVER": "1"},
        ),
        (
            ["run", "CONFIG", "--virtual", "in", "--api", "jack"],
            {"JACK_DEFAULT_SERVER": "conductor-nowhere", "JACK_NO_START_SERVER": "1"},
        ),
        (
            ["run", "CONFIG", "--port", "pads", "--api", "jack"],
            {"JACK_DEFAULT_SERVER": "conductor-nowhere", "JACK_NO_START_SERVER": "1"},
        ),
        (
            ["learn", "--api", "jack"],
            {"JACK_DEFAULT_SERVER": "conductor-nowhere", "JACK_NO_START_SERVER": "1"},
        ),
        (["learn", "--virtual", "in", "--api", "alsa"], {}),
    ],
)
def test_without_a_midi_system_stderr_is_exactly_one_error_line(
    conductor_cli: Runner, tmp_path: Path, command: list[str], env: dict[str, str]
) -> None:
    if "alsa" in command and os.path.exists("/dev/snd/seq"):
        pytest.skip("this machine has an ALSA sequencer")
    config = tmp_path / "c.toml"
    config.write_text("")
    args = [str(config) if part == "CONFIG" else part for part in command]
    result = conductor_cli(*args, env=env)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: "), line
    assert "start a JACK server" in line or "no ALSA sequencer here" in line, line
    debug = conductor_cli("--debug", *args, env=env)  # keeps the library's own words
    assert "debug: the MIDI library said: " in debug.stderr
