"""Engine benchmark: event → plugin-start latency at 1,000 events/s (in process and over JACK),
the dispatch ceiling with a trivial plugin, and config reload time."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._jack import PERIOD, RATE, jack_server
from bench._stats import summary
from conductor.engine.config import load_config
from conductor.engine.dispatcher import Dispatcher, EventRecord, Reporter
from conductor.engine.plugins import load_config_plugins
from conductor.engine.runner import Engine, RunOptions
from conductor.engine.scheduler import Scheduler
from conductor.engine.workers import PluginWorker
from conductor.midi.events import EventKind, MidiEvent
from conductor.plugins.runtime import PluginHost

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "plugins"
CONFIG = f"""
[plugins]
signature_policy = "unsigned"
[[modes]]
name = "Bench"
[[modes.mappings]]
trigger = {{ Note = {{ note = 60 }} }}
action = {{ WasmPlugin = {{ path = "{FIXTURES}/trivial.wasm", params = {{ action = "bench" }} }} }}
"""


class _Latencies(Reporter):
    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.starts: list[float] = []  # absolute monotonic ms when the plugin call started
        self.latencies: list[float] = []
        self.done = threading.Event()

    def finished(self, record: EventRecord) -> None:
        for _, latency in record.results:
            self.latencies.append(latency)
            self.starts.append(record.event.time_ms + latency)
        if len(self.latencies) >= self.expected:
            self.done.set()


def _event(now_ms: float) -> MidiEvent:
    return MidiEvent(EventKind.NOTE_ON, 0, now_ms, 0, "bench", note=60, velocity=100)


def _dispatcher(
    work: Path, report: Any, capacity: int
) -> tuple[Dispatcher, list[PluginWorker], PluginHost, Scheduler]:
    config_path = work / "bench.toml"
    config_path.write_text(CONFIG)
    config = load_config(config_path)
    host = PluginHost(work / "cache")
    findings = load_config_plugins(host, config, work / "trust.toml", None)
    workers = {f.key: PluginWorker(f.loaded, capacity) for f in findings if f.loaded}
    scheduler = Scheduler()
    scheduler.start()
    return (
        Dispatcher(config, workers, scheduler, None, report),
        list(workers.values()),
        host,
        scheduler,
    )


def _close(workers: list[PluginWorker], host: PluginHost, scheduler: Scheduler) -> None:
    scheduler.stop()
    for worker in workers:
        worker.stop()
    host.close()


def latency_in_process(work: Path, events: int = 5000, rate: int = 1000) -> dict[str, Any]:
    collector = _Latencies(events)
    dispatcher, workers, host, scheduler = _dispatcher(work, collector, 1024)
    started = time.monotonic()
    for index in range(events):
        due = started + index / rate
        while (now := time.monotonic()) < due:
            time.sleep(max(0.0, due - now - 0.0002)) if due - now > 0.0003 else None
        dispatcher.handle(_event(time.monotonic() * 1000.0))
    collector.done.wait(30)
    _close(workers, host, scheduler)
    return {**summary([ms * 1000 for ms in collector.latencies]), "rate_per_s": rate}


def dispatch_ceiling(work: Path, events: int = 50_000) -> dict[str, Any]:
    collector = _Latencies(events)
    dispatcher, workers, host, scheduler = _dispatcher(work, collector, events + 10)
    started = time.perf_counter()
    for _ in range(events):
        dispatcher.handle(_event(time.monotonic() * 1000.0))
    collector.done.wait(120)
    elapsed = time.perf_counter() - started
    dropped = sum(worker.counts["dropped"] for worker in workers)
    _close(workers, host, scheduler)
    return {
        "events": events,
        "seconds": round(elapsed, 3),
        "events_per_s": round(events / elapsed),
        "completed": len(collector.latencies),
        "dropped": dropped,
    }


def reload_time(work: Path, rounds: int = 30) -> dict[str, Any]:
    config_path = work / "reload.toml"
    config_path.write_text(CONFIG)
    song = work / "silence.mid"
    import mido

    midi = mido.MidiFile()
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("end_of_track", time=480 * 1000))
    midi.tracks.append(track)
    midi.save(song)
    engine = Engine(config_path, RunOptions(replay=song), Reporter(), cache_dir=work / "cache")
    engine.load_plugins()
    engine.dispatcher = Dispatcher(
        engine.config, engine.workers, engine.scheduler, None, Reporter()
    )
    samples = []
    for index in range(rounds):
        config_path.write_text(CONFIG.replace('"bench"', f'"bench {index}"'))
        started = time.perf_counter()
        assert engine.reload()
        samples.append((time.perf_counter() - started) * 1e6)
    engine.shutdown()
    return summary(samples)


def latency_over_jack(work: Path, events: int = 2000, rate: int = 1000) -> dict[str, Any]:
    with jack_server("engine") as server:
        if server is None:
            return {"skipped": "jackd not installed (Debian package jackd2)"}
        import rtmidi

        config_path = work / "jack.toml"
        config_path.write_text(CONFIG)
        collector = _Latencies(events)
        engine = Engine(
            config_path,
            RunOptions(virtual="bench-in", api="jack"),
            collector,
            cache_dir=work / "cache",
        )
        engine.load_plugins()
        engine.open_input()
        runner = threading.Thread(target=engine.run)
        runner.start()
        sender = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="bench-sender")
        port = next(i for i, p in enumerate(sender.get_ports()) if "bench-in" in p)
        sender.open_port(port)
        time.sleep(0.2)
        sent: list[float] = []
        started = time.monotonic()
        for index in range(events):
            due = started + index / rate
            while (now := time.monotonic()) < due:
                time.sleep(max(0.0, due - now - 0.0002)) if due - now > 0.0003 else None
            sent.append(time.monotonic() * 1000.0)
            sender.send_message([0x90, 60, 100])
        collector.done.wait(30)
        engine.stop_requested.set()
        runner.join(10)
        sender.close_port()
        pairs = list(zip(sent, collector.starts, strict=False))
        return {
            **summary([(start - send) * 1000 for send, start in pairs]),
            "received": len(collector.starts),
            "sent": events,
            "jack_period_us": round(PERIOD / RATE * 1e6, 1),
            "jack_realtime": server.realtime,
        }


def run() -> dict[str, Any]:
    logging.getLogger("conductor").setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="conductor-bench-engine-"))
    try:
        return {
            "event_to_plugin_start_in_process": latency_in_process(work),
            "dispatch_ceiling": dispatch_ceiling(work),
            "config_reload": reload_time(work),
            "event_to_plugin_start_over_jack": latency_over_jack(work),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


TARGETS = {
    "event_to_plugin_start_in_process": (
        "p99 ≤ 1000 µs",
        lambda r: r["event_to_plugin_start_in_process"]["p99_us"] <= 1000,
    ),
    "dispatch_ceiling": ("≥ 20,000/s", lambda r: r["dispatch_ceiling"]["events_per_s"] >= 20_000),
    "config_reload": ("p50 ≤ 10,000 µs", lambda r: r["config_reload"]["p50_us"] <= 10_000),
}
