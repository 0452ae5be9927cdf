"""From a MIDI event to actions: mode mappings before global ones, first match wins.

Plugin calls go to the plugin's worker queue, delays to the scheduler, so `handle` returns in
microseconds whatever the actions do — unless the input is a replay, which waits for room in a
full queue instead of dropping (backpressure). Each event gets a sequence number and is reported
(`Reporter.event`) before any of its work starts, so its line always comes before its results and
event lines come in arrival order.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import mido

from conductor._timing import WallClock, wall_ms
from conductor.engine import actions as act
from conductor.engine.config import Config, Mapping
from conductor.engine.scheduler import Scheduler
from conductor.engine.selection import MappingSelector
from conductor.engine.workers import Job, PluginWorker, Undelivered
from conductor.errors import ConductorError
from conductor.midi.events import MidiEvent
from conductor.midi.outputs import OutputPorts
from conductor.plugins.abi import EventContext, RequestTemplate
from conductor.plugins.limits import Limits
from conductor.plugins.loader import resolve_plugin
from conductor.plugins.runtime import CallResult

_log = logging.getLogger("conductor.engine")

PluginKey = tuple[Path, Limits]


def plugin_key(action: act.WasmPlugin, config: Config) -> PluginKey:
    """Which loaded plugin serves an action: its resolved file and its effective limits."""
    path = resolve_plugin(action.path, config.base_dir, config.plugins.dir)
    return path.resolve(), action.limits or config.plugins.limits


@dataclass(eq=False)
class EventRecord:
    """One event's journey, completed as its plugin calls finish. `pending` counts the parts
    still running; everything that changes after the record is announced is under `lock`."""

    seq: int
    event: MidiEvent
    mode: str
    mapping: Mapping | None = None
    results: list[tuple[CallResult, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    undelivered: list[tuple[str, Undelivered]] = field(default_factory=list)  # (plugin, why)
    pending: int = 1  # the dispatch itself, released once every action has started
    announced: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class Reporter:
    """Receives an event's story in order: `event` once (before any result), then `result` and
    `note` as they happen, then `finished` once. Override what you need."""

    def event(self, record: EventRecord) -> None:
        pass

    def result(self, record: EventRecord, result: CallResult, latency_ms: float) -> None:
        pass

    def note(self, record: EventRecord, text: str) -> None:
        pass

    def finished(self, record: EventRecord) -> None:
        pass


@dataclass
class _Work:
    """What an event's actions start once it has been announced: plugin calls and delays."""

    jobs: list[tuple[PluginWorker, Job]] = field(default_factory=list)
    later: list[tuple[float, Callable[[], None]]] = field(default_factory=list)


class Dispatcher:
    def __init__(
        self,
        config: Config,
        workers: dict[PluginKey, PluginWorker],
        scheduler: Scheduler,
        outputs: OutputPorts | None,
        report: Reporter,
        mode: str | None = None,
        *,
        backpressure: threading.Event | None = None,
        sequence: Iterator[int] | None = None,
        wall_clock: WallClock = wall_ms,
    ) -> None:
        """`backpressure`: when given (a replay), full plugin queues are waited for until this
        event is set (the engine stopping), instead of dropping calls."""
        self.config = config
        self.workers = workers
        self.scheduler = scheduler
        self.outputs = outputs
        self.report = report
        self.backpressure = backpressure
        self.wall_clock = wall_clock
        self._sequence = sequence if sequence is not None else itertools.count(1)
        self.selector = MappingSelector(config)
        index = config.mode_index(mode) if mode is not None else None
        self.mode_index: int = index if index is not None else 0
        self._lock = threading.Lock()
        self._templates: dict[int, tuple[PluginKey, RequestTemplate]] = {}
        for mapping in config.all_mappings():
            for action in act.plugin_actions(mapping.action):
                self._templates[id(action)] = (
                    plugin_key(action, config),
                    RequestTemplate(action.params),
                )

    def with_config(self, config: Config, workers: dict[PluginKey, PluginWorker]) -> Dispatcher:
        """The dispatcher for a reloaded config: same mode, numbering, outputs and clocks."""
        return Dispatcher(
            config,
            workers,
            self.scheduler,
            self.outputs,
            self.report,
            self.mode,
            backpressure=self.backpressure,
            sequence=self._sequence,
            wall_clock=self.wall_clock,
        )

    @property
    def mode(self) -> str:
        return self.config.modes[self.mode_index].name

    def handle(self, event: MidiEvent) -> EventRecord:
        """Match one event, announce it, and start its actions."""
        work = _Work()
        with self._lock:
            matched = self.selector.select(event, self.mode_index)
            record = EventRecord(next(self._sequence), event, self.mode, matched)
            if matched is not None:
                self._run(matched.action, record, event, work)
        self._start(record, work)
        return record

    def tick(self, now_ms: float) -> None:
        """Fire long presses whose threshold passed (by `now_ms`, on the events' monotonic
        clock) while the note is still held."""
        if not self.selector.has_long_presses:
            return
        started: list[tuple[EventRecord, _Work]] = []
        with self._lock:
            for mapping, event in self.selector.due(self.mode_index, now_ms, self.wall_clock()):
                record = EventRecord(next(self._sequence), event, self.mode, mapping)
                work = _Work()
                self._run(mapping.action, record, event, work)
                started.append((record, work))
        for record, work in started:
            self._start(record, work)

    # -- starting work, outside the dispatcher's lock ----------------------------------------

    def _start(self, record: EventRecord, work: _Work) -> None:
        """Announce, then queue the calls (a replay may wait here) and arm the delays."""
        with record.lock:
            record.announced = True
        self.report.event(record)
        self._launch(work)
        self._release(record)

    def _launch(self, work: _Work) -> None:
        for worker, job in work.jobs:
            worker.submit(job, self.backpressure)
        for delay_ms, callback in work.later:
            self.scheduler.call_later(delay_ms, callback)

    def _release(self, record: EventRecord) -> None:
        """One part of the record is done; the last one reports it finished."""
        with record.lock:
            record.pending -= 1
            finished = record.pending == 0
        if finished:
            self.report.finished(record)

    def _note(self, record: EventRecord, text: str) -> None:
        with record.lock:
            record.notes.append(text)
            announced = record.announced
        if announced:
            self.report.note(record, text)

    # -- actions, under the dispatcher's lock ------------------------------------------------

    def _run(self, action: act.Action, record: EventRecord, event: MidiEvent, work: _Work) -> None:
        if isinstance(action, act.WasmPlugin):
            self._call_plugin(action, record, event, work)
        elif isinstance(action, act.ModeChange):
            index = self.config.mode_index(action.mode)
            if index is not None:
                self.mode_index = index
                self._note(record, f"mode -> {action.mode}")
        elif isinstance(action, act.Sequence):
            self._run_sequence(list(action.actions), record, event, work)
        elif isinstance(action, act.Delay):
            pass  # a bare Delay outside a sequence has nothing to delay
        elif isinstance(action, act.SendMidi):
            self._send_midi(action, record)

    def _run_sequence(
        self, remaining: list[act.Action], record: EventRecord, event: MidiEvent, work: _Work
    ) -> None:
        while remaining:
            action = remaining.pop(0)
            if isinstance(action, act.Delay):
                with record.lock:
                    record.pending += 1

                def resume(rest: list[act.Action] = remaining) -> None:
                    later = _Work()
                    with self._lock:
                        self._run_sequence(rest, record, event, later)
                    self._launch(later)
                    self._release(record)

                work.later.append((action.ms, resume))
                return
            self._run(action, record, event, work)

    def _context(self, event: MidiEvent, mapping: Mapping | None) -> EventContext:
        """The request's context; `trigger` names the trigger type that fired (Note, CC, …)."""
        trigger = type(mapping.trigger).__name__ if mapping is not None else event.kind.value
        return EventContext(
            trigger,
            event.note,
            event.velocity,
            event.channel,
            event.cc,
            event.value,
            self.mode_index,
            self.mode,
            event.wall_ms,
            event.device,
        )

    def _call_plugin(
        self, action: act.WasmPlugin, record: EventRecord, event: MidiEvent, work: _Work
    ) -> None:
        key, template = self._templates[id(action)]
        worker = self.workers.get(key)
        if worker is None:
            self._note(record, f"{action.path}: not loaded")
            return
        context = self._context(event, record.mapping)
        with record.lock:
            record.pending += 1

        def done(result: CallResult, latency_ms: float) -> None:
            with record.lock:
                record.results.append((result, latency_ms))
            self.report.result(record, result, latency_ms)
            self._release(record)

        def undelivered(why: Undelivered, line: str) -> None:
            with record.lock:
                record.undelivered.append((worker.name, why))
            self._note(record, line)
            self._release(record)

        work.jobs.append((worker, Job(template.render(context), event.time_ms, done, undelivered)))

    def _send_midi(self, action: act.SendMidi, record: EventRecord) -> None:
        if self.outputs is None:
            self._note(record, "SendMidi: no MIDI backend")
            return
        try:
            message = mido.Message(
                action.message_type, channel=action.channel, **dict(action.fields)
            )
            self.outputs.send(action.port, action.virtual, message)
            self._note(record, f"sent {action.message_type} to {action.port}")
        except ConductorError as exc:
            self._note(record, exc.diagnostics())
            _log.warning("%s", exc.diagnostics())
        except (ValueError, TypeError, OSError) as exc:
            self._note(record, f"SendMidi failed: {exc}")
            _log.warning("SendMidi to %s failed: %s", action.port, exc)
