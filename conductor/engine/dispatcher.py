"""From a MIDI event to actions: mode mappings before global ones, first match wins.

Plugin calls go to the plugin's worker queue, native actions (keystrokes, shell commands, …) to
their action worker, delays to the scheduler, so `handle` returns in microseconds whatever the
actions do — unless the input is a replay, which waits for room in a full queue instead of
dropping (backpressure). Each event gets a sequence number and is reported (`Reporter.event`)
before any of its work starts, so its line always comes before its results and event lines come
in arrival order.

An event's actions are steps started in order, each without waiting for the one before to
finish (work on one worker still runs in order). A Delay holds up the steps after it. A
Conditional is judged at once, unless its condition asks the desktop (is an application running
or in front): then it is judged on the desktop's action worker, after the keystrokes queued
before it, and holds up the steps after it until then; the chosen branch's keystrokes, text and
clicks go ahead of later events' on that worker, so they keep the events' order.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import mido

from conductor._timing import WallClock, wall_ms
from conductor.engine import actions as act
from conductor.engine.conditions import asks_the_desktop
from conductor.engine.config import Config, Mapping
from conductor.engine.native import NativeActions, Surroundings, perform
from conductor.engine.scheduler import Scheduler
from conductor.engine.selection import MappingSelector
from conductor.engine.workers import Job, PluginWorker, Task, Undelivered, Worker
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
    """What an event's actions start once it has been announced: jobs for workers (plugin calls,
    native actions) and delays."""

    jobs: list[tuple[Worker[Any], Job | Task]] = field(default_factory=list)
    later: list[tuple[float, Callable[[], None]]] = field(default_factory=list)


Steps = deque[act.Action]


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
        native: NativeActions | None = None,
    ) -> None:
        """`backpressure`: when given (a replay), full plugin queues are waited for until this
        event is set (the engine stopping), instead of dropping calls. `native`: the run's
        action workers (kept across reloads)."""
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
        self.native = native or NativeActions()
        self.native.retain(
            inner for mapping in config.all_mappings() for inner in act.flatten(mapping.action)
        )
        self._surroundings = Surroundings(config.native, config.base_dir)

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
            native=self.native,
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

    def _launch(self, work: _Work, resumed: bool = False) -> None:
        """Queue the jobs and arm the delays; `resumed` work continues an event on a worker's
        thread, which must never wait (see `Worker.resume`)."""
        if resumed:
            by_worker: dict[Worker[Any], list[Job | Task]] = {}
            for worker, job in work.jobs:
                by_worker.setdefault(worker, []).append(job)
            for worker, jobs in by_worker.items():
                worker.resume(jobs)
        else:
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

    def _recorder(self, record: EventRecord) -> Callable[[CallResult, float], None]:
        """What a worker calls with a finished call's result: it joins the record, is reported,
        and releases the record's part."""

        def done(result: CallResult, latency_ms: float) -> None:
            with record.lock:
                record.results.append((result, latency_ms))
            self.report.result(record, result, latency_ms)
            self._release(record)

        return done

    def _note(self, record: EventRecord, text: str) -> None:
        with record.lock:
            record.notes.append(text)
            announced = record.announced
        if announced:
            self.report.note(record, text)

    # -- actions, under the dispatcher's lock ------------------------------------------------

    def _run(self, action: act.Action, record: EventRecord, event: MidiEvent, work: _Work) -> None:
        self._run_steps(deque([action]), record, event, work)

    def _run_steps(self, steps: Steps, record: EventRecord, event: MidiEvent, work: _Work) -> None:
        """Start the steps in order until one must wait (a Delay, a Conditional); that one
        takes the rest along and starts it later."""
        while steps:
            action = steps.popleft()
            if isinstance(action, act.Sequence):
                steps.extendleft(reversed(action.actions))
            elif isinstance(action, act.Repeat):
                # One repetition at a time, so a long repeat holds one step, not all of them.
                if action.count > 1:
                    steps.appendleft(replace(action, count=action.count - 1))
                    if action.delay_ms:
                        steps.appendleft(act.Delay(action.delay_ms))
                steps.appendleft(action.action)
            elif isinstance(action, act.Delay):
                if steps:  # a Delay with nothing after it has nothing to delay
                    self._resume_later(action.ms, steps, record, event, work)
                return
            elif isinstance(action, act.Conditional):
                if asks_the_desktop(action.condition):
                    self._decide_on_the_desktop(action, steps, record, event, work)
                    return
                branch, note = self._branch(action, self.native.holds(action.condition, self.mode))
                self._note(record, note)
                if branch is not None:
                    steps.appendleft(branch)
            elif isinstance(action, act.WasmPlugin):
                self._call_plugin(action, record, event, work)
            elif isinstance(action, act.ModeChange):
                index = self.config.mode_index(action.mode)
                if index is not None:
                    self.mode_index = index
                    self._note(record, f"mode -> {action.mode}")
            elif isinstance(action, act.SendMidi):
                self._send_midi(action, record)
            else:
                self._call_native(action, record, event, work)

    def _resume_later(
        self, delay_ms: int, steps: Steps, record: EventRecord, event: MidiEvent, work: _Work
    ) -> None:
        with record.lock:
            record.pending += 1

        def resume() -> None:
            later = _Work()
            with self._lock:
                self._run_steps(steps, record, event, later)
            self._launch(later)
            self._release(record)

        work.later.append((delay_ms, resume))

    def _branch(self, action: act.Conditional, result: bool) -> tuple[act.Action | None, str]:
        """The branch a judged condition chose, and a note saying so."""
        branch = action.then_action if result else action.else_action
        which = "then_action runs" if result else "else_action runs"
        return (
            branch,
            f"Conditional: {str(result).lower()}, {which if branch else 'nothing to run'}",
        )

    def _decide_on_the_desktop(
        self,
        action: act.Conditional,
        steps: Steps,
        record: EventRecord,
        event: MidiEvent,
        work: _Work,
    ) -> None:
        """Judge the condition on the desktop's worker (asking the desktop takes time), in the
        mode of this moment; then start the chosen branch and the remaining steps from there."""
        mode = self.mode
        with record.lock:
            record.pending += 1

        def judge() -> bool:
            return self.native.holds(action.condition, mode)

        def chosen(result: bool, _latency_ms: float) -> None:
            branch, note = self._branch(action, result)
            self._note(record, note)
            later = _Work()
            with self._lock:
                if branch is not None:
                    steps.appendleft(branch)
                self._run_steps(steps, record, event, later)
            self._launch(later, resumed=True)
            self._release(record)

        worker = self.native.worker_for(action)
        work.jobs.append(
            (worker, Task(judge, chosen, self._undelivered(record, worker.name), event.time_ms))
        )

    def _call_native(
        self, action: act.Action, record: EventRecord, event: MidiEvent, work: _Work
    ) -> None:
        surroundings = self._surroundings
        with record.lock:
            record.pending += 1

        done = self._recorder(record)
        worker = self.native.worker_for(action)
        task = Task(
            lambda: perform(action, surroundings),
            done,
            self._undelivered(record, worker.name),
            event.time_ms,
        )
        work.jobs.append((worker, task))

    def _undelivered(self, record: EventRecord, name: str) -> Callable[[Undelivered, str], None]:
        """How a job that never ran ends its part of the record."""

        def undelivered(why: Undelivered, line: str) -> None:
            with record.lock:
                record.undelivered.append((name, why))
            self._note(record, line)
            self._release(record)

        return undelivered

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

        done = self._recorder(record)
        request = template.render(context)
        undelivered = self._undelivered(record, worker.name)
        work.jobs.append((worker, Job(request, event.time_ms, done, undelivered)))

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
