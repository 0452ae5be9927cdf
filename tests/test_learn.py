"""`conductor learn`: the trigger line for each event, what a control looks like (encoder, fader,
button), and the mapping it fires; pure logic first, then the real CLI over JACK ports."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import rtmidi
from hypothesis import given
from hypothesis import strategies as st

from conductor.engine.config import parse_config
from conductor.engine.learn import Control, Learner, classify, toml_string
from conductor.engine.triggers import AdvancedSettings, TriggerMatcher
from conductor.midi.events import EventKind, MidiEvent, from_bytes

CONFIG = """
[[modes]]
name = "Live"
[[modes.mappings]]
description = "Play"
trigger = { Note = { note = 60 } }
action = { ModeChange = { mode = "FX" } }
[[modes.mappings]]
trigger = { LongPress = { note = 42, duration_ms = 500 } }
action = { Delay = { ms = 1 } }
[[modes]]
name = "FX"
[[modes.mappings]]
description = "Back"
trigger = { Note = { note = 60 } }
action = { Sequence = { actions = [ { Delay = { ms = 5 } }, { ModeChange = { mode = "Live" } } ] } }
[[global_mappings]]
description = "Volume"
trigger = { CC = { cc = 7 } }
action = { Delay = { ms = 1 } }
"""


def event(status: int, data1: int, data2: int = 0, at: float = 0, source: str = "") -> MidiEvent:
    made = from_bytes(status, data1, data2, at, 0, f"port of {source}", source)
    assert made is not None
    return made


def lines(learner: Learner, events: list[MidiEvent]) -> list[str]:
    return [learned.line for e in events if (learned := learner.learn(e)) is not None]


@pytest.mark.parametrize(
    ("values", "control"),
    [
        ([5], Control.UNKNOWN),
        ([1, 1], Control.ENCODER),
        ([127, 127, 127], Control.ENCODER),
        ([1, 127], Control.ENCODER),
        ([2, 3, 3, 1], Control.ENCODER),  # an accelerating encoder
        ([10, 11, 12], Control.FADER),
        ([120, 121, 122], Control.FADER),  # a fader near the top: steps, no repeats
        ([64, 64], Control.FADER),  # 64 is no movement for an encoder
        ([0, 1, 2], Control.FADER),
        ([127, 0], Control.BUTTON),
        ([0, 100, 0, 100], Control.BUTTON),
    ],
)
def test_a_control_is_told_by_the_values_it_sends(values: list[int], control: Control) -> None:
    assert classify(values) is control


def test_every_trigger_form_with_channel_and_device() -> None:
    one = Learner()
    assert lines(
        one,
        [
            event(0x90, 60, 100),
            event(0x80, 60),  # the end of the press: nothing new
            event(0x9A, 36, 90),
            event(0xC0, 5),
            event(0xC3, 7),
            event(0xE0, 0, 0x60),
            event(0xE0, 0, 0x20),
            event(0xE0, 0, 0x40),
            event(0xD0, 50),
        ],
    ) == [
        "trigger = { Note = { note = 60 } }",
        "trigger = { Note = { note = 36, channel = 10 } }",
        "trigger = { ProgramChange = { program = 5 } }",
        "trigger = { ProgramChange = { program = 7, channel = 3 } }",
        "trigger = { PitchBend = { value_min = 8193 } }",
        "trigger = { PitchBend = { value_max = 8191 } }",
        "trigger = { PitchBend = { value_min = 8192, value_max = 8192 } }",
        "trigger = { Aftertouch = {} }",
    ]
    several = Learner(several_devices=True)
    knob = [event(0xB1, 16, value, source="knobs") for value in (1, 1, 127)]
    fader = [event(0xB0, 7, value, source="faders") for value in (10, 11)]
    learned = [several.learn(e) for e in [knob[0], fader[0], knob[1], fader[1], knob[2]]]
    assert [item.line for item in learned if item] == [
        'trigger = { CC = { cc = 16, channel = 1, device = "knobs" } }',
        'trigger = { CC = { cc = 7, device = "faders" } }',
        'trigger = { EncoderTurn = { cc = 16, direction = "clockwise", channel = 1, device = "knobs" } }',
        'trigger = { CC = { cc = 7, device = "faders" } }',
        'trigger = { EncoderTurn = { cc = 16, direction = "counterclockwise", channel = 1, device = "knobs" } }',
    ]
    notes = [item.note for item in learned if item]
    assert notes[0] == "first message, value 1: move it again to tell an encoder from a fader"
    assert notes[2] == "relative encoder (2 messages, value 1): one EncoderTurn per direction"
    assert notes[3] == (
        "fader or knob (2 messages, values 10, 11): add value_min = N to fire from N up"
    )


def test_each_learned_line_parses_back_to_a_trigger_that_fires_on_its_event() -> None:
    learner = Learner(several_devices=True)
    matcher = TriggerMatcher(AdvancedSettings())
    events = [
        event(0x93, 64, 1, source="a"),
        event(0xB2, 16, 127, source='b "quoted"\\'),
        event(0xB2, 16, 127, source='b "quoted"\\'),
        event(0xCF, 127, source="a"),
        event(0xE5, 127, 127, source="a"),
        event(0xA0, 60, 3, source="a"),
    ]
    for item in filter(None, map(learner.learn, events)):
        text = f"[[global_mappings]]\n{item.line}\naction = {{ Delay = {{ ms = 1 }} }}\n"
        trigger = parse_config(text, Path("/l.toml")).global_mappings[0].trigger
        assert matcher.matches(trigger, item.event), item.line


@given(st.text(max_size=40))
def test_any_device_name_is_written_as_a_toml_string_that_reads_back(name: str) -> None:
    assert tomllib.loads(f"device = {toml_string(name)}")["device"] == name


def test_with_a_config_it_names_what_fires_and_follows_mode_changes() -> None:
    config = parse_config(CONFIG, Path("/learn.toml"))
    learner = Learner(config)
    presses = [learner.learn(event(0x90, 60, 100, at)) for at in (0, 10, 20, 30)]
    assert [item.fires for item in presses if item] == [
        'fires modes[0].mappings[0] "Play" in mode Live',
        'fires modes[1].mappings[0] "Back" in mode FX',  # its ModeChange, though delayed, counts
        'fires modes[0].mappings[0] "Play" in mode Live',
        'fires modes[1].mappings[0] "Back" in mode FX',
    ]
    volume = learner.learn(event(0xB0, 7, 3))
    assert volume and volume.fires == 'fires global_mappings[0] "Volume" in mode Live'
    nothing = learner.learn(event(0x90, 61, 100))
    assert nothing and nothing.fires == "no mapping fires in mode Live"
    learner.learn(event(0x90, 42, 90, at=1000))
    assert learner.held(1499) == []
    (held,) = learner.held(1500)
    assert held.held and held.line == "trigger = { LongPress = { note = 42 } }"
    assert held.fires == "fires modes[0].mappings[1] in mode Live"
    assert Learner().learn(event(0x90, 1, 1)).fires is None  # type: ignore[union-attr]


class Learning:
    """`conductor learn` as a real process; `started` once it listens."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "conductor", "learn", "--api", "jack", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr: list[str] = []
        self.stdout: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stderr, self.stderr)),
            threading.Thread(target=self._read, args=(self.process.stdout, self.stdout)),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    def wait_for(self, lines: list[str], text: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in lines):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"{text!r} not seen; stderr: {''.join(self.stderr)}")
            time.sleep(0.01)

    def wait_for_lines(self, count: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while len(self.stdout) < count and self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} lines expected: {''.join(self.stdout)}")
            time.sleep(0.01)

    def finish(self, timeout: float = 20) -> tuple[int, str, str]:
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        return code, "".join(self.stdout), "".join(self.stderr)


def controller(name: str) -> rtmidi.MidiOut:
    """A controller as another program shows it to Conductor: a JACK output port."""
    sender = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=f"{name}-client")
    sender.open_virtual_port(name)
    return sender


class TestOverJack:
    def test_two_controllers_every_form_channel_device_and_count(self, jack_server: str) -> None:
        pads, knobs = controller("learn-pads"), controller("learn-knobs")
        try:
            learning = Learning("--port", "learn-pads", "--port", "learn-knobs", "--count", "8")
            learning.wait_for(learning.stderr, "listening on")
            # Two ports are one stream in arrival order; what two ports send in the same JACK
            # cycle has no order, so each batch waits for the lines of the one before.
            for port, messages, lines_so_far in [
                (pads, [[0x90, 60, 100], [0x80, 60, 0]], 1),  # the note-off is not learned
                (knobs, [[0xB0, 7, 40], [0xB0, 7, 41], [0xB3, 16, 1], [0xB3, 16, 1]], 5),
                (knobs, [[0xB3, 16, 127]], 6),
                (pads, [[0xC2, 5], [0x99, 36, 64], [0x90, 99, 1]], 8),  # the last is one too many
            ]:
                for message in messages:
                    port.send_message(message)
                learning.wait_for_lines(lines_so_far)
            code, out, err = learning.finish()
        finally:
            pads.close_port()
            knobs.close_port()
        assert code == 0, err
        assert [line.split("  # ")[0] for line in out.splitlines()] == [
            'trigger = { Note = { note = 60, device = "learn-pads" } }',
            'trigger = { CC = { cc = 7, device = "learn-knobs" } }',
            'trigger = { CC = { cc = 7, device = "learn-knobs" } }',
            'trigger = { CC = { cc = 16, channel = 3, device = "learn-knobs" } }',
            'trigger = { EncoderTurn = { cc = 16, direction = "clockwise", channel = 3, device = "learn-knobs" } }',
            'trigger = { EncoderTurn = { cc = 16, direction = "counterclockwise", channel = 3, device = "learn-knobs" } }',
            'trigger = { ProgramChange = { program = 5, channel = 2, device = "learn-pads" } }',
            'trigger = { Note = { note = 36, channel = 9, device = "learn-pads" } }',
        ]
        notes = [line.partition("  # ")[2] for line in out.splitlines()]
        assert notes[2] == (
            "fader or knob (2 messages, values 40, 41): add value_min = N to fire from N up"
        )
        assert notes[5] == (
            "relative encoder (3 messages, values 1, 127): one EncoderTurn per direction"
        )

    def test_json_is_one_document_of_what_was_learned(self, jack_server: str) -> None:
        pads = controller("learn-json")
        try:
            learning = Learning("--port", "learn-json", "--count", "3", "--json")
            learning.wait_for(learning.stderr, "listening on")
            for message in ([0xB0, 20, 127], [0xB0, 20, 0], [0xC0, 9]):
                pads.send_message(message)
            code, out, err = learning.finish()
        finally:
            pads.close_port()
        assert code == 0, err
        document = json.loads(out)
        (source,) = document["inputs"]
        assert source["source"] == "learn-json" and source["port"].endswith(":learn-json")
        assert document["config"] is None
        first, second, third = document["events"]
        assert first["trigger"] == {"CC": {"cc": 20}} and first["control"] == "unknown"
        assert second["control"] == "button"
        assert (
            second["note"]
            == "button (2 messages, values 0, 127): add value_min = 64 to fire on press only"
        )
        assert third["line"] == "trigger = { ProgramChange = { program = 9 } }"
        assert third["event"]["type"] == "program_change" and third["event"]["value"] == 9
        assert third["event"]["source"] == "learn-json" and third["mapping"] is None

    def test_one_controller_text_with_a_config_naming_mappings(
        self, jack_server: str, tmp_path: Path
    ) -> None:
        config = tmp_path / "learn.toml"
        config.write_text(CONFIG)
        pads = controller("learn-solo")
        try:
            learning = Learning("--port", "learn-solo", "--config", str(config), "--count", "3")
            learning.wait_for(learning.stderr, "listening on")
            for message in ([0x90, 60, 100], [0x90, 60, 100], [0xB0, 7, 3]):
                pads.send_message(message)
            code, out, err = learning.finish()
        finally:
            pads.close_port()
        assert code == 0, err
        assert out.splitlines() == [
            'trigger = { Note = { note = 60 } }  # velocity 100; fires modes[0].mappings[0] "Play" in mode Live',
            'trigger = { Note = { note = 60 } }  # velocity 100; fires modes[1].mappings[0] "Back" in mode FX',
            "trigger = { CC = { cc = 7 } }  # first message, value 3: move it again to tell an "
            'encoder from a fader; fires global_mappings[0] "Volume" in mode Live',
        ]
        for line in out.splitlines():  # each pastes into a mapping as it is
            tomllib.loads(line)

    def test_every_port_without_port_options_and_ctrl_c_ends_with_exit_0(
        self, jack_server: str
    ) -> None:
        first, second = controller("learn-any-1"), controller("learn-any-2")
        try:
            learning = Learning()
            learning.wait_for(learning.stderr, "listening on")
            assert "learn-any-1" in learning.stderr[-1] and "learn-any-2" in learning.stderr[-1]
            second.send_message([0x91, 10, 20])
            learning.wait_for(learning.stdout, "note = 10")
            learning.process.send_signal(signal.SIGINT)
            code, out, err = learning.finish()
        finally:
            first.close_port()
            second.close_port()
        assert code == 0, err
        assert out.splitlines() == [
            'trigger = { Note = { note = 10, channel = 1, device = "learn-any-2-client:learn-any-2" } }'
            "  # velocity 20"
        ]
        assert "Traceback" not in err

    def test_a_config_device_that_matches_no_open_input_is_one_error_line(
        self, jack_server: str, tmp_path: Path
    ) -> None:
        config = tmp_path / "devices.toml"
        config.write_text(
            "[[global_mappings]]\ntrigger = { Note = { note = 1, device = 'keys' } }\n"
            "action = { Delay = { ms = 1 } }\n"
        )
        pads = controller("learn-err")
        try:
            learning = Learning("--port", "learn-err", "--config", str(config))
            code, out, err = learning.finish()
        finally:
            pads.close_port()
        assert code == 1 and out == ""
        assert err.splitlines() == [
            f"error: {config}: global_mappings[0].trigger.device: 'keys' matches none of the "
            "open inputs: 'learn-err' (port 'learn-err-client:learn-err')"
        ]


def test_program_change_and_note_events_describe_themselves() -> None:
    assert MidiEvent(EventKind.PROGRAM_CHANGE, 2, 0, value=5).describe() == (
        "program_change ch2 program 5"
    )
