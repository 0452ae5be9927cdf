"""`conductor run` under load and faults, as a user meets it: real processes, real files, real
JACK ports. Nothing is lost without being counted and said, nothing hangs past its budget."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import mido
import rtmidi

from tests.conftest import Runner
from tests.midi_helpers import RunningConductor, connect
from tests.plugin_helpers import PLUGINS

HEADER = """
[plugins]
signature_policy = "unsigned"
[advanced_settings]
shutdown_timeout_ms = {budget}
[[modes]]
name = "Test"
"""
STUCK = f"""
[[modes.mappings]]
trigger = {{{{ Note = {{{{ note = 40 }}}} }}}}
action = {{{{ WasmPlugin = {{{{ path = "{PLUGINS}/infinite_loop.wasm", limits = {{{{ max_fuel = 100000000000000, timeout_ms = 30000 }}}} }}}} }}}}
"""


def config(tmp_path: Path, mappings: str, budget: int = 2000, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.write_text(HEADER.format(budget=budget) + mappings.format(plugins=PLUGINS))
    return path


def mapping(note: int, action: str) -> str:
    return f"[[modes.mappings]]\ntrigger = {{{{ Note = {{{{ note = {note} }}}} }}}}\naction = {action}\n"


def plugin(name: str, params: str = "") -> str:
    extra = f", params = {{{{ {params} }}}}" if params else ""
    return f'{{{{ WasmPlugin = {{{{ path = "{{plugins}}/{name}.wasm"{extra} }}}} }}}}'


def song(path: Path, notes: list[tuple[int, int]]) -> Path:
    """A file of note-ons, each (note, ticks after the previous one) at 120 bpm, 480 per beat."""
    track = mido.MidiTrack(
        mido.Message("note_on", note=note, velocity=100, time=gap) for note, gap in notes
    )
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks.append(track)
    midi.save(path)
    return path


def records(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def logged_counts(records: list[dict[str, Any]], name: str) -> list[int]:
    return [
        int(result["output"]["logs"][0]["message"].removeprefix("count "))
        for record in records
        for result in record["results"]
        if result["plugin"] == name
    ]


def test_a_replay_at_full_speed_delivers_every_event(conductor_cli: Runner, tmp_path: Path) -> None:
    run = config(tmp_path, mapping(36, plugin("counter")))
    notes = song(tmp_path / "notes.mid", [(36, 0)] * 3000)
    result = conductor_cli("run", run, "--replay", notes, "--speed", "0", "--log-format", "json")
    assert result.returncode == 0, result.stderr
    events = records(result.stdout)
    assert sorted(record["seq"] for record in events) == list(range(1, 3001))
    assert all(record["undelivered"] == [] for record in events)
    # The plugin's own warm instance counted every call, in order.
    assert logged_counts(events, "counter") == list(range(1, 3001))


def test_text_lines_come_in_arrival_order_while_a_slower_plugin_finishes_later(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    """A note whose plugin is still running is never printed after the events that came later:
    each event's line is printed as it arrives, numbered; its results follow under its number."""
    run = config(tmp_path, mapping(43, plugin("slow")) + mapping(36, plugin("counter")))
    notes = song(tmp_path / "notes.mid", [(43, 0), (36, 0)] * 100)
    result = conductor_cli("run", run, "--replay", notes, "--speed", "0")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()

    def seq(line: str) -> int:
        return int(line.split(" #")[1].split(" ")[0])

    arrived = [(seq(line), i) for i, line in enumerate(lines) if "| [Test] |" in line]
    assert [number for number, _ in arrived] == list(range(1, 201))
    event_line = dict(arrived)
    finished = [(seq(line), i) for i, line in enumerate(lines) if " -> " in line]
    assert len(finished) == 200
    for number, index in finished:
        assert index > event_line[number], f"the result of #{number} came before its event"
    # Some slow results did come after the next event's line: the order was put to the test.
    assert any(index > event_line[number + 1] for number, index in finished if number % 2)


def test_a_replay_that_ends_finishes_every_queued_call_however_long_it_takes(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    run = config(tmp_path, mapping(43, plugin("slow")), budget=100)  # the budget is for signals
    notes = song(tmp_path / "notes.mid", [(43, 0)] * 600)  # about a second of plugin work
    result = conductor_cli("run", run, "--replay", notes, "--speed", "0", "--log-format", "json")
    assert result.returncode == 0, result.stderr
    events = records(result.stdout)
    assert len(events) == 600 and all(e["results"] and e["results"][0]["ok"] for e in events)
    assert "end of input: finishing slow (" in result.stderr


def test_a_plugin_failing_every_call_never_costs_the_working_one_an_event(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    both = f"{{{{ Sequence = {{{{ actions = [{plugin('trap')}, {plugin('counter')}] }}}} }}}}"
    run = config(tmp_path, mapping(36, both))
    notes = song(tmp_path / "notes.mid", [(36, 0)] * 2000)
    result = conductor_cli("run", run, "--replay", notes, "--speed", "0", "--log-format", "json")
    assert result.returncode == 0, result.stderr
    events = records(result.stdout)
    assert logged_counts(events, "counter") == list(range(1, 2001))
    trap = Counter(
        "failed" for record in events for r in record["results"] if r["plugin"] == "trap"
    ) + Counter(u["reason"] for record in events for u in record["undelivered"])
    assert trap["failed"] >= 2 and trap["failed"] + trap["skipped"] == 2000  # none unaccounted
    assert set(trap) <= {"failed", "skipped"}
    assert "trap failed 2 times in a row; next try in 0.1 s" in result.stderr
    assert (
        f"trap: {trap['failed']} call(s); {trap['failed']} failed, {trap['skipped']} skipped"
        in (result.stderr)
    )


def start_stuck_run(tmp_path: Path, budget: int) -> tuple[subprocess.Popen[str], list[str]]:
    """`run` (text output) whose plugin is stuck in its first call with three more queued."""
    run = config(tmp_path, STUCK, budget=budget)
    notes = song(tmp_path / "stuck.mid", [(40, 0)] * 4 + [(41, 480 * 600)])  # then 5 min quiet
    process = subprocess.Popen(
        [sys.executable, "-m", "conductor", "run", str(run), "--replay", str(notes)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    while not any(" #4 | " in line for line in lines):
        line = process.stdout.readline()
        assert line, "".join(lines)
        lines.append(line)
    return process, lines


def test_sigint_with_a_stuck_plugin_exits_within_the_budget(tmp_path: Path) -> None:
    process, lines = start_stuck_run(tmp_path, budget=500)
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=30)
    elapsed = time.monotonic() - started
    output = "".join(lines) + rest
    assert process.returncode == 0, output
    assert elapsed < 0.5 + 2.5, output  # the budget plus a margin; the call itself runs 30 s
    assert "stopping: waiting up to 0.5 s for infinite_loop (1 running, 3 queued)" in output
    assert "abandoned 4 call(s) (infinite_loop: 4)" in output
    assert output.count("infinite_loop: abandoned at shutdown") == 4  # each event says so


def test_a_second_sigint_exits_at_once_with_130(tmp_path: Path) -> None:
    process, lines = start_stuck_run(tmp_path, budget=600_000)
    process.send_signal(signal.SIGINT)
    assert process.stdout is not None
    while "stopping: waiting" not in (line := process.stdout.readline()):
        assert line, "".join(lines)
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == 130
    assert time.monotonic() - started < 2
    assert "interrupted again: exiting at once" in rest


def test_a_config_rewritten_100_times_in_a_second_ends_on_its_last_valid_version(
    tmp_path: Path,
) -> None:
    def version(label: str) -> str:
        return HEADER.format(budget=2000) + mapping(
            36, plugin("good", f'label = "{label}"')
        ).format(plugins=PLUGINS)

    run = tmp_path / "run.toml"
    run.write_text(version("first"))
    notes = song(tmp_path / "notes.mid", [(36, 0)] + [(36, 19)] * 6000)  # one every 20 ms
    running = RunningConductor(run, "--replay", notes)
    try:
        assert (
            json.loads(running.next_event()["results"][0]["output"]["logs"][0]["message"])["label"]
            == "first"
        )
        for index in range(100):  # about a second of edits, every eighth one broken
            run.write_text("[[modes]]\nname = \n" if index % 8 == 5 else version(f"v{index}"))
            time.sleep(0.01)
        deadline = time.monotonic() + 20
        labels: list[str] = []
        while labels[-5:] != ["v99"] * 5:
            assert time.monotonic() < deadline, labels[-20:]
            event = running.next_event()
            labels.append(json.loads(event["results"][0]["output"]["logs"][0]["message"])["label"])
    finally:
        assert running.stop() == 0
    log = "".join(running.stderr_lines)
    assert "Traceback" not in log and "config reloaded" in log


def test_plugin_text_cannot_drive_the_terminal(conductor_cli: Runner, tmp_path: Path) -> None:
    run = config(tmp_path, mapping(36, plugin("terminal_escapes")))
    notes = song(tmp_path / "notes.mid", [(36, 0)])
    result = conductor_cli("run", run, "--replay", notes, "--speed", "0")
    assert result.returncode == 0, result.stderr
    assert r"warn: \x1b]52;c;aGk=\x07\x1b[2J\x0dforged line" in result.stdout
    assert r"stdout: \x1b[31mred\x07" in result.stdout
    for control in ("\x1b", "\x07", "\r"):
        assert control not in result.stdout
    as_json = conductor_cli("run", run, "--replay", notes, "--speed", "0", "--log-format", "json")
    assert "\x1b" not in as_json.stdout and "\\u001b]52" in as_json.stdout


class TestLive:
    def test_an_overflowing_queue_drops_with_a_count_on_each_event_and_in_the_log(
        self, jack_server: str, tmp_path: Path
    ) -> None:
        run = config(tmp_path, mapping(43, plugin("slow")), budget=30_000)  # let the queue finish
        running = RunningConductor(run, "--virtual", "flood-in", "--api", "jack")
        sender = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="flooder")
        try:
            running.wait_stderr("listening on")
            connect(sender, "flood-in")
            for _ in range(3000):  # 2 per ms: far faster than a 2 ms plugin drains 1,024 calls
                sender.send_message([0x90, 43, 100])
                time.sleep(0.0005)
            running.wait_stderr("dropped so far")
        finally:
            sender.close_port()
            assert running.stop() == 0  # the budget lets the queue finish: every event reported
        events = []
        while not running.events.empty():
            events.append(running.events.get())
        assert sorted(e["seq"] for e in events) == list(range(1, len(events) + 1))
        dropped = [
            e for e in events if e["undelivered"] == [{"plugin": "slow", "reason": "dropped"}]
        ]
        delivered = [e for e in events if e["results"] and e["results"][0]["ok"]]
        assert dropped and len(dropped) + len(delivered) == len(events)
        assert all("slow: queue full (1024), dropped" in e["notes"] for e in dropped)
        log = "".join(running.stderr_lines)
        assert "slow: queue full (1024), dropped; 1 event(s) dropped so far" in log
        assert f"slow: {len(delivered)} call(s); {len(dropped)} dropped" in log

    def test_a_reader_that_stops_reading_for_a_while_costs_no_event(
        self, jack_server: str, tmp_path: Path
    ) -> None:
        run = config(tmp_path, mapping(36, plugin("counter")))
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "conductor", "run", str(run)),
                *("--virtual", "paused-in", "--api", "jack", "--log-format", "json"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        sender = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="pauser")
        try:
            connect(sender, "paused-in")
            for _ in range(1500):  # ~600 KB of JSON: ten times what the pipe holds unread
                sender.send_message([0x90, 36, 100])
                time.sleep(0.001)
        finally:
            sender.close_port()
            process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)  # only now is anything read
        assert process.returncode == 0, stderr
        events = records(stdout)
        assert len(events) >= 1400  # whatever JACK delivered
        assert all(e["undelivered"] == [] for e in events)
        assert logged_counts(events, "counter") == list(range(1, len(events) + 1))


def test_a_closed_standard_output_stops_the_printing_not_the_run(tmp_path: Path) -> None:
    run = config(tmp_path, mapping(36, plugin("counter")))
    notes = song(tmp_path / "notes.mid", [(36, 0)] * 2000)
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "conductor", "run", str(run)),
            *("--replay", str(notes), "--speed", "0", "--log-format", "json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    assert json.loads(process.stdout.readline())["seq"] == 1
    process.stdout.close()  # as `| head -1` does
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 0, stderr
    assert "standard output was closed: events are no longer printed" in stderr
    assert "Traceback" not in stderr and "error" not in stderr
