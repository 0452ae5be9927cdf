"""From a MIDI event to actions: mode mappings before global ones, first match wins.

Plugin calls go to the plugin's worker queue, delays to the scheduler, so `handle` returns in
microseconds whatever the actions do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mido

from conductor.engine import actions as act
from conductor.engine.config import Config, Mapping
from conductor.engine.scheduler import Scheduler
from conductor.engine.triggers import LongPress, TriggerMatcher
from conductor.engine.workers import Job, PluginWorker
from conductor.errors import ConductorError
from conductor.midi.events import EventKind, MidiEvent
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


@dataclass
class EventRecord:
    """One event's journey, completed as its plugin calls finish; the reporter prints it."""

    event: MidiEvent
    mode: str
    mapping: Mapping | None = None
    results: list[tuple[CallResult, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pending: int = 0


Reporter = Callable[[EventRecord], None]


class Dispatcher:
    def __init__(
        self,
        config: Config,
        workers: dict[PluginKey, PluginWorker],
        scheduler: Scheduler,
        outputs: OutputPorts | None,
        report: Reporter,
        mode: str | None = None,
    ) -> None:
        self.config = config
        self.workers = workers
        self.scheduler = scheduler
        self.outputs = outputs
        self.report = report
        self.matcher = TriggerMatcher(config.advanced)
        self.mode_index = config.mode_index(mode) if mode is not None else 0
        if self.mode_index is None:
            self.mode_index = 0
        self._lock = threading.Lock()
        self._templates: dict[int, tuple[PluginKey, RequestTemplate]] = {}
        for mapping in config.all_mappings():
            for action in act.plugin_actions(mapping.action):
                self._templates[id(action)] = (
                    plugin_key(action, config),
                    RequestTemplate(action.params),
                )
        # Mode mappings first, then global ones, per mode: built once, not on every event.
        self._by_mode = [mode.mappings + config.global_mappings for mode in config.modes]
        self._long_presses = [m for m in config.all_mappings() if isinstance(m.trigger, LongPress)]

    @property
    def mode(self) -> str:
        return self.config.modes[self.mode_index].name

    def _candidates(self) -> tuple[Mapping, ...]:
        return self._by_mode[self.mode_index]

    def handle(self, event: MidiEvent) -> EventRecord:
        """Match one event and start its actions; the record is reported when they finish."""
        with self._lock:
            matched = next(
                (m for m in self._candidates() if self.matcher.matches(m.trigger, event)), None
            )
            self.matcher.observe(event, matched.trigger if matched else None)
            if matched is not None and isinstance(matched.trigger, LongPress):
                self.matcher.mark_long_press_fired(matched.trigger, event)
            record = EventRecord(
                event, self.mode, matched, pending=1
            )  # held until all actions started
            if matched is not None:
                self._run(matched.action, record, event)
            finished = self._finish(record)
        if finished:  # reported outside the lock: output must never hold up the next event
            self.report(record)
        return record

    def tick(self, now_ms: float, device: str = "") -> None:
        """Fire long presses whose threshold passed while the note is still held."""
        if not self._long_presses:
            return
        finished = []
        with self._lock:
            active = set(map(id, self._candidates()))
            mappings = [m for m in self._long_presses if id(m) in active]
            due = self.matcher.due_long_presses([m.trigger for m in mappings], now_ms)
            for trigger, channel, velocity in due:
                mapping = next(m for m in mappings if m.trigger is trigger)
                wall_ms = time.time_ns() // 1_000_000
                event = MidiEvent(
                    EventKind.NOTE_ON, channel, now_ms, wall_ms, device, trigger.note, velocity
                )
                record = EventRecord(event, self.mode, mapping, pending=1)
                self._run(mapping.action, record, event)
                if self._finish(record):
                    finished.append(record)
        for record in finished:
            self.report(record)

    @staticmethod
    def _finish(record: EventRecord) -> bool:
        """Count one part of the record done (call under the lock); True when it is complete."""
        record.pending -= 1
        return record.pending == 0

    def _run(self, action: act.Action, record: EventRecord, event: MidiEvent) -> None:
        if isinstance(action, act.WasmPlugin):
            self._call_plugin(action, record, event)
        elif isinstance(action, act.ModeChange):
            index = self.config.mode_index(action.mode)
            if index is not None:
                self.mode_index = index
                record.notes.append(f"mode -> {action.mode}")
        elif isinstance(action, act.Sequence):
            self._run_sequence(list(action.actions), record, event)
        elif isinstance(action, act.Delay):
            pass  # a bare Delay outside a sequence has nothing to delay
        elif isinstance(action, act.SendMidi):
            self._send_midi(action, record)

    def _run_sequence(
        self, remaining: list[act.Action], record: EventRecord, event: MidiEvent
    ) -> None:
        while remaining:
            action = remaining.pop(0)
            if isinstance(action, act.Delay):
                record.pending += 1

                def resume(rest: list[act.Action] = remaining) -> None:
                    with self._lock:
                        self._run_sequence(rest, record, event)
                        finished = self._finish(record)
                    if finished:
                        self.report(record)

                self.scheduler.call_later(action.ms, resume)
                return
            self._run(action, record, event)

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

    def _call_plugin(self, action: act.WasmPlugin, record: EventRecord, event: MidiEvent) -> None:
        key, template = self._templates[id(action)]
        worker = self.workers.get(key)
        if worker is None:
            record.notes.append(f"{action.path}: not loaded")
            return
        context = self._context(event, record.mapping)
        record.pending += 1

        def done(result: CallResult, latency_ms: float) -> None:
            with self._lock:
                record.results.append((result, latency_ms))
                finished = self._finish(record)
            if finished:
                self.report(record)

        if not worker.submit(Job(template.render(context), event.time_ms, done)):
            record.pending -= 1
            record.notes.append(f"{worker.name}: queue full, dropped")

    def _send_midi(self, action: act.SendMidi, record: EventRecord) -> None:
        if self.outputs is None:
            record.notes.append("SendMidi: no MIDI backend")
            return
        try:
            message = mido.Message(
                action.message_type, channel=action.channel, **dict(action.fields)
            )
            self.outputs.send(action.port, action.virtual, message)
            record.notes.append(f"sent {action.message_type} to {action.port}")
        except ConductorError as exc:
            record.notes.append(exc.diagnostics())
            _log.warning("%s", exc.diagnostics())
        except (ValueError, TypeError, OSError) as exc:
            record.notes.append(f"SendMidi failed: {exc}")
            _log.warning("SendMidi to %s failed: %s", action.port, exc)
