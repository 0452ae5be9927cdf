"""The dispatcher with real plugins and workers: modes, first match, ordering per plugin,
isolation from a slow plugin, counted drops, and delays that never stall other events."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor.engine.config import parse_config
from conductor.engine.dispatcher import Dispatcher, EventRecord
from conductor.engine.plugins import load_config_plugins
from conductor.engine.scheduler import Scheduler
from conductor.engine.workers import PluginWorker
from conductor.midi.events import EventKind, MidiEvent
from conductor.plugins.runtime import PluginHost
from tests.plugin_helpers import PLUGINS


class Collector:
    def __init__(self) -> None:
        self.records: list[EventRecord] = []
        self.changed = threading.Condition()

    def __call__(self, record: EventRecord) -> None:
        with self.changed:
            self.records.append(record)
            self.changed.notify_all()

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


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Dispatcher, Collector, dict]]:
    config = parse_config(CONFIG, tmp_path / "config.toml")
    host = PluginHost(tmp_path / "cache")
    findings = load_config_plugins(host, config, tmp_path / "trust.toml", None)
    assert all(f.error is None for f in findings), [f.error for f in findings]
    workers = {f.key: PluginWorker(f.loaded, capacity=4) for f in findings if f.loaded}
    scheduler = Scheduler()
    collector = Collector()
    dispatcher = Dispatcher(config, workers, scheduler, None, collector)
    yield dispatcher, collector, workers
    scheduler.stop(drain=False)
    for worker in workers.values():
        worker.stop()
    host.close()


def note(number: int, velocity: int = 100) -> MidiEvent:
    return MidiEvent(
        EventKind.NOTE_ON,
        0,
        time.monotonic() * 1000,
        1_700_000_000_000,
        "Test Pads",
        note=number,
        velocity=velocity,
    )


def test_mode_mappings_first_then_global_and_mode_change(setup) -> None:
    dispatcher, collector, _ = setup
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
        "timestamp": 1_700_000_000_000,
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


def test_calls_to_one_plugin_stay_in_order(setup) -> None:
    dispatcher, collector, _ = setup
    for velocity in range(1, 5):
        dispatcher.handle(note(36, velocity))
    records = collector.wait_for(4)
    assert [requests(r)[0]["context"]["velocity"] for r in records] == [1, 2, 3, 4]


def test_a_slow_plugin_does_not_delay_the_others(setup) -> None:
    dispatcher, collector, _ = setup
    dispatcher.handle(note(40))  # 150 ms until its deadline stops it
    started = time.monotonic()
    dispatcher.handle(note(36))
    fast = collector.wait_for(1)[0]
    assert fast.results[0][0].plugin == "good"
    assert time.monotonic() - started < 0.1
    slow = collector.wait_for(2)[1]
    assert "wall-clock limit of 150 ms" in (slow.results[0][0].error or "")


def test_an_overflowing_queue_drops_with_a_count_and_a_warning(
    setup, caplog: pytest.LogCaptureFixture
) -> None:
    dispatcher, collector, workers = setup
    for _ in range(8):  # capacity 4, one running: some are dropped
        dispatcher.handle(note(40))
    slow_worker = next(w for w in workers.values() if w.name == "infinite_loop")
    assert slow_worker.dropped >= 3
    assert "queue full" in caplog.text and "dropped" in caplog.text
    dropped_records = [r for r in collector.records if any("dropped" in n for n in r.notes)]
    assert len(dropped_records) == slow_worker.dropped


def test_a_delay_does_not_stall_other_events(setup) -> None:
    dispatcher, collector, _ = setup
    dispatcher.handle(note(41))
    started = time.monotonic()
    dispatcher.handle(note(38))
    first = collector.wait_for(1)[0]
    assert requests(first)[0]["pad"] == "global snare" and time.monotonic() - started < 0.2
    sequence = collector.wait_for(2)[1]
    steps = [request["step"] for request in requests(sequence)]
    assert steps == [1, 2]
    latencies = [latency for _, latency in sequence.results]
    assert latencies[1] >= 290
