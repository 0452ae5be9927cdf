"""`conductor run` end to end: real JACK MIDI ports, replayed files, signals, reload."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import mido
import rtmidi

from conductor.engine.dispatcher import EventRecord, Reporter
from conductor.engine.runner import Engine, RunOptions
from tests.conftest import FIXTURES, Runner
from tests.midi_helpers import RunningConductor, connect, jack_connections
from tests.plugin_helpers import PLUGINS

BASIC = """
[plugins]
signature_policy = "unsigned"
[plugins.grants]
event_logger = ["Filesystem"]
[[modes]]
name = "Live"
[[modes.mappings]]
description = "pad"
trigger = {{ Note = {{ note = 36 }} }}
action = {{ WasmPlugin = {{ path = "{plugins}/event_logger.wasm", params = {{ label = "{label}" }} }} }}
[[modes.mappings]]
description = "echo to synth"
trigger = {{ Note = {{ note = 60 }} }}
action = {{ SendMidi = {{ port = "test-receiver", message_type = "note_on", note = 72, velocity = 99, channel = 3 }} }}
"""


def events_log() -> Path:
    return (
        Path(os.environ["XDG_DATA_HOME"])
        / "conductor"
        / "plugin-data"
        / "event_logger"
        / "events.log"
    )


class Finished(Reporter, list[EventRecord]):
    """The records of finished events, in the order they finished."""

    def finished(self, record: EventRecord) -> None:
        self.append(record)


def make_config(tmp_path: Path, label: str = "Pad") -> Path:
    path = tmp_path / "live.toml"
    path.write_text(BASIC.format(plugins=PLUGINS, label=label))
    return path


def make_midi(path: Path, notes: list[int], gap_ticks: int = 120) -> Path:
    track = mido.MidiTrack()
    for note in notes:
        track.append(mido.Message("note_on", note=note, velocity=100, time=gap_ticks))
        track.append(mido.Message("note_off", note=note, velocity=0, time=10))
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks.append(track)
    midi.save(path)
    return path


def test_replay_runs_to_the_end_and_shuts_plugins_down(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    config = make_config(tmp_path)
    song = make_midi(tmp_path / "song.mid", [36, 37, 36])
    result = conductor_cli("run", config, "--replay", song, "--speed", "0", "--log-format", "json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 6  # 3 note_on + 3 note_off, one line each
    matched = [r for r in records if r["mapping"] == "pad"]
    assert len(matched) == 2 and all(r["results"][0]["ok"] for r in matched)
    assert (
        matched[0]["results"][0]["output"]["logs"][0]["message"]
        == "Pad: Note note 36 vel 100 on ch 0 in mode Live"
    )
    assert events_log().read_text().splitlines()[-1] == "shutdown"
    assert events_log().read_text().count("Pad: Note note 36") == 2


def test_the_demo_runs_under_30_seconds(conductor_cli: Runner) -> None:
    started = time.monotonic()
    result = conductor_cli(
        "run", FIXTURES / "demo" / "config.toml", "--replay", FIXTURES / "demo" / "demo.mid"
    )
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    assert "pad 36 hit 6 times" in result.stdout
    assert (
        "mode -> FX" in result.stdout
        and "Echo 2" in result.stdout
        and "Held hi-hat" in result.stdout
    )


def test_load_errors_exit_1_before_listening(conductor_cli: Runner, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        BASIC.format(plugins=PLUGINS, label="x").replace(
            'signature_policy = "unsigned"', 'signature_policy = "trusted"'
        )
    )
    song = make_midi(tmp_path / "song.mid", [36])
    result = conductor_cli("run", config, "--replay", song, "--speed", "0")
    assert result.returncode == 1
    assert "event_logger.wasm: no signature file" in result.stderr
    assert result.stdout == ""
    no_input = conductor_cli("run", make_config(tmp_path))
    assert no_input.returncode == 2 and "no MIDI input" in no_input.stderr
    manual = tmp_path / "manual.toml"
    manual.write_text(
        '[device]\nname = "Pads"\nauto_connect = false\n' + make_config(tmp_path).read_text()
    )
    refused = conductor_cli("run", manual)
    assert refused.returncode == 2 and "auto_connect is false: pass --port NAME" in refused.stderr


def test_sigterm_stops_cleanly_and_shuts_plugins_down(tmp_path: Path) -> None:
    song = make_midi(tmp_path / "long.mid", [36] * 40, gap_ticks=240)  # 40 notes, 250 ms apart
    running = RunningConductor(make_config(tmp_path), "--replay", song)
    first = running.next_event()
    assert first["results"][0]["ok"]
    assert running.stop(signal.SIGTERM) == 0
    assert events_log().read_text().splitlines()[-1] == "shutdown"


def test_reload_keeps_plugins_warm_and_ignores_an_invalid_config(tmp_path: Path) -> None:
    config = make_config(tmp_path, label="Before")
    song = make_midi(tmp_path / "long.mid", [36] * 200, gap_ticks=48)  # a note every 50 ms
    records = Finished()
    engine = Engine(config, RunOptions(replay=song), records, cache_dir=tmp_path / "cache")
    engine.load_plugins()
    engine.open_input()
    worker_before = next(iter(engine.workers.values()))
    thread = threading.Thread(target=engine.run)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not any(r.results for r in records) and time.monotonic() < deadline:
            time.sleep(0.02)
        config.write_text(BASIC.format(plugins=PLUGINS, label="After"))
        while engine.reloads == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert engine.reloads == 1
        assert next(iter(engine.workers.values())) is worker_before  # same warm instance
        count = len(records)
        while len(records) < count + 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        labels = [r.results[0][0].output.logs[0][1].split(":")[0] for r in records if r.results]
        assert labels[0] == "Before" and labels[-1] == "After"

        config.write_text("[[modes]]\nname = \n")  # invalid: the running config stays
        time.sleep(0.6)
        assert engine.reloads == 1
        count = len(records)
        while len(records) < count + 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (
            [r for r in records[count:] if r.results][-1]
            .results[0][0]
            .output.logs[0][1]
            .startswith("After")
        )
    finally:
        engine.stop_requested.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert engine.last_reload_ms < 100


class TestOverJack:
    def test_virtual_port_events_reach_the_plugin(self, jack_server: str, tmp_path: Path) -> None:
        running = RunningConductor(
            make_config(tmp_path), "--virtual", "conductor-in", "--api", "jack"
        )
        sender = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="tester")
        try:
            connect(sender, "conductor-in")
            sender.send_message([0x90, 36, 77])
            event = running.next_event()
            assert event["event"]["note"] == 36 and event["event"]["velocity"] == 77
            assert "conductor-in" in event["event"]["device"]
            assert event["results"][0]["ok"]
        finally:
            sender.close_port()
            assert running.stop() == 0
        assert events_log().read_text().splitlines()[-1] == "shutdown"

    def test_reconnects_when_the_sender_port_returns(
        self, jack_server: str, tmp_path: Path
    ) -> None:
        pads = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="tester-pads")
        pads.open_virtual_port("test-pads")
        running = RunningConductor(make_config(tmp_path), "--port", "test-pads", "--api", "jack")
        try:
            running.wait_stderr("listening on")
            pads.send_message([0x90, 36, 10])
            assert running.next_event()["event"]["velocity"] == 10
            pads.close_port()
            del pads
            running.wait_stderr("disappeared")
            pads = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="tester-pads")
            pads.open_virtual_port("test-pads")
            running.wait_stderr("is back; reconnected")
            # The connection is made at JACK's next cycle: send until one arrives.
            deadline = time.monotonic() + 10
            while running.events.empty() and time.monotonic() < deadline:
                pads.send_message([0x90, 36, 20])
                time.sleep(0.05)
            assert running.next_event()["event"]["velocity"] == 20
        finally:
            assert running.stop() == 0

    def test_send_midi_reaches_another_jack_port(self, jack_server: str, tmp_path: Path) -> None:
        """The output is opened and connected at start, so the first message sent is not lost
        to a connection JACK has not made live yet (nor the first event slowed by opening)."""
        receiver = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="tester-synth")
        receiver.open_virtual_port("test-receiver")
        running = RunningConductor(
            make_config(tmp_path), "--virtual", "conductor-in2", "--api", "jack"
        )
        sender = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="tester-keys")
        try:
            deadline = time.monotonic() + 10
            while not jack_connections("tester-synth:test-receiver"):
                assert time.monotonic() < deadline, "the output was not connected at start"
                time.sleep(0.05)
            connect(sender, "conductor-in2")
            sender.send_message([0x90, 60, 100])
            event = running.next_event()
            assert event["notes"] == ["sent note_on to test-receiver"]
            deadline = time.monotonic() + 5
            message = None
            while message is None and time.monotonic() < deadline:
                message = receiver.get_message()
                time.sleep(0.01)
            assert message is not None and message[0] == [0x93, 72, 99]
        finally:
            sender.close_port()
            receiver.close_port()
            assert running.stop() == 0

    def test_an_output_missing_at_start_is_named_and_tried_again_on_send(
        self, jack_server: str, tmp_path: Path
    ) -> None:
        config = make_config(tmp_path)
        config.write_text(config.read_text().replace("test-receiver", "late-receiver"))
        running = RunningConductor(config, "--virtual", "conductor-in3", "--api", "jack")
        sender = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="tester-late")
        receiver = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="tester-late-synth")
        try:
            running.wait_stderr("late-receiver")
            running.wait_stderr("tried again when a mapping sends to it")
            receiver.open_virtual_port("late-receiver")
            connect(sender, "conductor-in3")
            sender.send_message([0x90, 60, 100])
            assert running.next_event()["notes"] == ["sent note_on to late-receiver"]
        finally:
            sender.close_port()
            receiver.close_port()
            assert running.stop() == 0

    def test_devices_lists_jack_ports(self, jack_server: str, conductor_cli: Runner) -> None:
        pads = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="tester-list")
        pads.open_virtual_port("listed-pads")
        try:
            result = conductor_cli("devices", "--api", "jack", "--json")
            assert result.returncode == 0, result.stderr
            assert any("listed-pads" in name for name in json.loads(result.stdout)["inputs"])
        finally:
            pads.close_port()

    def test_missing_or_ambiguous_port_lists_the_ports(
        self, jack_server: str, conductor_cli: Runner, tmp_path: Path
    ) -> None:
        result = conductor_cli(
            "run", make_config(tmp_path), "--port", "no-such-port", "--api", "jack"
        )
        assert (
            result.returncode == 1 and "no MIDI input port matches 'no-such-port'" in result.stderr
        )


def test_devices_without_a_jack_server_says_what_to_do(conductor_cli: Runner) -> None:
    result = conductor_cli(
        "devices",
        "--api",
        "jack",
        env={"JACK_DEFAULT_SERVER": "conductor-no-such-server", "JACK_NO_START_SERVER": "1"},
    )
    assert result.returncode == 1
    assert "start a JACK server" in result.stderr.strip().splitlines()[-1]
