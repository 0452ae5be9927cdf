"""The dispatcher with real plugins and workers: modes, first match, ordering per plugin,
isolation from a slow plugin, counted drops, backpressure, announced-before-results ordering, and
delays and long presses driven by a clock the test moves (no sleeping, no wall-time asserts)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor.engine.config import parse_config
from conductor.engine.dispatcher import Dispatcher, EventRecord, Reporter
from conductor.engine.plugins import load_config_plugins
from conductor.engine.scheduler import Scheduler
from conductor.engine.workers import PluginWorker, Undelivered
from conductor.midi.events import EventKind, MidiEvent
from conductor.plugins.runtime import CallResult, PluginHost
from tests.clock import ManualClock
from tests.plugin_helpers import PLUGINS

WALL_MS = 1_700_000_000_000


class Collector(Reporter):
    """Keeps finished records, and the order in which everything was reported."""

    def __init__(self) -> None:
        self.records: list[EventRecord] = []
        self.story: list[tuple[str, int]] = []  # ("event" | "result" | "finished", seq)
        self.changed = threading.Condition()

    def _tell(self, what: str, record: EventRecord) -> None:
        with self.changed:
            self.story.append((what, record.seq))
            if what == "finished":
                self.records.append(record)
            self.changed.notify_all()

    def event(self, record: EventRecord) -> None:
        self._tell("event", record)

    def result(self, record: EventRecord, result: CallResult, latency_ms: float) -> None:
        self._tell("result", record)

    def finished(self, record: EventRecord) -> None:
        self._tell("finished", record)

    def wait_until_told(self, what: str, seq: int, timeout: float = 10) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: (what, seq) in self.story, timeout), self.story

    def wait_for(self, count: int, timeout: float = 10) -> list[EventRecord]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.records) >= count, timeout), self.records
            return list(self.records)


def requests(record: EventRecord) -> list[dict]:
    return [
        json.loads(result.output.logs[0][1]) for result, _ in record.results if result.output.logs
    ]


CONFIG = f"""
[plugins]
signature_policy = "unsigned"
[[modes]]
name = "Play"
[[modes.mappings]]
trigger = {{ Note = {{ note = 36 }} }}
action = {{ WasmPlugin = {{ path = "{PLUGINS}/good.wasm", params = {{ pad = "kick" }} }} }}
[[modes.mappings]]
trigger = {{ Note = {{ note = 37 }} }}
action = {{ ModeChange = {{ mode = "Edit" }} }}
[[modes.mappings]]
trigger = {{ Note = {{ note = 40 }} }}
action = {{ WasmPlugin = {{ path = "{PLUGINS}/infinite_loop.wasm", limits = {{ max_fuel = 100000000000, timeout_ms = 150 }} }} }}
[[modes.mappings]]
trigger = {{ Note = {{ note = 41 }} }}
action = {{ Sequence = {{ actions = [
  {{ WasmPlugin = {{ path = "{PLUGINS}/good.wasm", params = {{ step = 1 }} }} }},
  {{ Delay = {{ ms = 300 }} }},
  {{ WasmPlugin = {{ path = "{PLUGINS}/good.wasm", params = {{ step = 2 }} }} }},
] }} }}
[[modes.mappings]]
trigger = {{ LongPress = {{ note = 42, duration_ms = 500 }} }}
action = {{ WasmPlugin = {{ path = "{PLUGINS}/good.wasm", params = {{ pad = "held" }} }} }}
[[modes.mappings]]
trigger = {{ Note = {{ note = 43 }} }}
action = {{ WasmPlugin = {{ path = "{PLUGINS}/slow.wasm" }} }}
[[modes]]
name = "Edit"
[[modes.mappings]]
trigger = {{ Note = {{ note = 36 }} }}
action = {{ WasmPlugin = {{ path = "{PLUGINS}/good.wasm", params = {{ pad = "edit-kick" }} }} }}
[[global_mappings]]
trigger = {{ Note = {{ note = 36 }} }}
action = {{ WasmPlugin = {{ path = "{PLUGINS}/good.wasm", params = {{ pad = "never: the mode mapping wins" }} }} }}
[[global_mappings]]
trigger = {{ Note = {{ note = 38 }} }}
action = {{ WasmPlugin = {{ path = "{PLUGINS}/good.wasm", params = {{ pad = "global snare" }} }} }}
"""


class Setup:
    def __init__(self, tmp_path: Path, backpressure: threading.Event | None = None) -> None:
        self.config = parse_config(CONFIG, tmp_path / "config.toml")
        self.host = PluginHost(tmp_path / "cache")
        findings = load_config_plugins(self.host, self.config, tmp_path / "trust.toml", None)
        assert all(f.error is None for f in findings), [f.error for f in findings]
        self.clock = ManualClock()
        self.workers = {f.key: PluginWorker(f.loaded, capacity=4) for f in findings if f.loaded}
        self.scheduler = Scheduler(self.clock)  # not started: the test runs what is due
        self.collector = Collector()
        self.dispatcher = Dispatcher(
            self.config,
            self.workers,
            self.scheduler,
            None,
            self.collector,
            backpressure=backpressure,
            wall_clock=lambda: WALL_MS + 123,
        )

    def worker(self, name: str) -> PluginWorker:
        return next(w for w in self.workers.values() if w.name == name)

    def close(self) -> None:
        self.scheduler.stop()
        for worker in self.workers.values():
            worker.stop()
        self.host.close()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    built = Setup(tmp_path)
    yield built
    built.close()


def note(number: int, velocity: int = 100, at_ms: float = 0.0) -> MidiEvent:
    return MidiEvent(
        EventKind.NOTE_ON, 0, at_ms, WALL_MS, "Test Pads", note=number, velocity=velocity
    )


def test_mode_mappings_first_then_global_and_mode_change(setup: Setup) -> None:
    dispatcher, collector = setup.dispatcher, setup.collector
    dispatcher.handle(note(36))
    dispatcher.handle(note(38))
    records = collector.wait_for(2)
    assert requests(records[0])[0]["pad"] == "kick"
    assert requests(records[1])[0]["pad"] == "global snare"
    context = requests(records[0])[0]["context"]
    assert context == {
        "trigger": "Note",
        "note": 36,
        "velocity": 100,
        "channel": 0,
        "cc": None,
        "value": None,
        "current_mode": 0,
        "mode": "Play",
        "timestamp": WALL_MS,
        "device": "Test Pads",
    }
    dispatcher.handle(note(37))
    dispatcher.handle(note(36))
    records = collector.wait_for(4)
    assert records[2].notes == ["mode -> Edit"]
    assert requests(records[3])[0]["pad"] == "edit-kick"
    assert requests(records[3])[0]["context"]["mode"] == "Edit"
    dispatcher.handle(note(99))
    assert collector.wait_for(5)[4].mapping is None


def test_calls_to_one_plugin_stay_in_order(setup: Setup) -> None:
    for velocity in range(1, 5):
        setup.dispatcher.handle(note(36, velocity))
    records = setup.collector.wait_for(4)
    assert [requests(r)[0]["context"]["velocity"] for r in records] == [1, 2, 3, 4]


def test_a_slow_plugin_does_not_delay_the_others(setup: Setup) -> None:
    slow = setup.dispatcher.handle(note(40))  # runs until its 150 ms deadline stops it
    setup.dispatcher.handle(note(36))
    fast = setup.collector.wait_for(1)[0]
    assert fast.results[0][0].plugin == "good"
    assert slow.pending > 0  # the other plugin's call was still running when this one finished
    assert "wall-clock limit of 150 ms" in (
        setup.collector.wait_for(2)[1].results[0][0].error or ""
    )


def test_events_are_numbered_and_announced_before_their_results(setup: Setup) -> None:
    for number in (36, 99, 38, 36, 99, 43, 36):
        setup.dispatcher.handle(note(number))
    setup.collector.wait_for(7)
    story = setup.collector.story
    announced = [seq for what, seq in story if what == "event"]
    assert announced == list(range(1, 8))  # arrival order
    for what, seq in story:
        if what in ("result", "finished"):
            assert story.index(("event", seq)) < story.index((what, seq))
    assert [r.seq for r in setup.collector.records if r.mapping is None] == [2, 5]


def test_an_overflowing_live_queue_drops_with_a_count_and_a_warning(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(8):  # capacity 4, one running: some are dropped
        setup.dispatcher.handle(note(43))
    slow = setup.worker("slow")
    records = setup.collector.wait_for(8)
    assert slow.counts["dropped"] >= 3
    assert "queue full" in caplog.text and "dropped" in caplog.text
    dropped = [r for r in records if r.undelivered == [("slow", Undelivered.DROPPED)]]
    assert len(dropped) == slow.counts["dropped"]
    assert len(dropped) + sum(len(r.results) for r in records) == 8  # none unaccounted for
    assert all("slow: queue full (4), dropped" in r.notes for r in dropped)


def test_a_replay_waits_for_room_instead_of_dropping(tmp_path: Path) -> None:
    setup = Setup(tmp_path, backpressure=threading.Event())
    try:
        for _ in range(20):  # capacity 4: the dispatcher waits for the slow plugin
            setup.dispatcher.handle(note(43))
        records = setup.collector.wait_for(20)
        assert all(r.results and r.results[0][0].ok for r in records)
        assert setup.worker("slow").counts["dropped"] == 0
    finally:
        setup.close()


def test_a_waiting_replay_stops_when_asked(tmp_path: Path) -> None:
    stop = threading.Event()
    setup = Setup(tmp_path, backpressure=stop)
    try:
        stop.set()  # the engine is stopping: a full queue no longer waits
        for _ in range(8):
            setup.dispatcher.handle(note(43))
        records = setup.collector.wait_for(8)
        abandoned = [r for r in records if r.undelivered == [("slow", Undelivered.ABANDONED)]]
        assert abandoned and len(abandoned) + sum(len(r.results) for r in records) == 8
    finally:
        setup.close()


def test_a_delay_does_not_stall_other_events(setup: Setup) -> None:
    sequence = setup.dispatcher.handle(note(41))
    setup.dispatcher.handle(note(38))
    first = setup.collector.wait_for(1)
    assert [requests(r)[0]["pad"] for r in first] == ["global snare"]
    setup.collector.wait_until_told("result", sequence.seq)
    assert sequence.pending == 1 and [request["step"] for request in requests(sequence)] == [1]
    assert setup.scheduler.run_due() == 0  # 300 ms have not passed on the clock
    setup.clock.advance(0.3)
    assert setup.scheduler.run_due() == 1
    assert sequence in setup.collector.wait_for(2)
    assert [request["step"] for request in requests(sequence)] == [1, 2]


def test_a_long_press_fires_on_tick_by_the_clock_it_is_given(setup: Setup) -> None:
    setup.dispatcher.handle(note(42, at_ms=10_000))
    setup.collector.wait_for(1)
    setup.dispatcher.tick(10_499)
    assert setup.collector.story[-1] == ("finished", 1)  # not yet
    setup.dispatcher.tick(10_500)
    held = setup.collector.wait_for(2)[1]
    request = requests(held)[0]
    assert request["pad"] == "held" and request["context"]["trigger"] == "LongPress"
    assert request["context"]["timestamp"] == WALL_MS + 123  # from the injected wall clock
    setup.dispatcher.tick(20_000)
    assert len(setup.collector.records) == 2  # once per press
