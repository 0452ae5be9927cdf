"""`conductor run`: load a config and its plugins, listen to its MIDI inputs (one stream,
however many ports), dispatch events, reload the config when it changes, and shut everything
down within a budget.

Shutdown (SPEC §10): a signal stops the input; queued calls and due delays get
`shutdown_timeout_ms` to finish; what is left is abandoned with a count, each idle plugin's
`shutdown` is called, and a worker still stuck in a call is left to the process exit. A replay that
reaches its end instead finishes every queued call (nothing of a file is lost), unless a signal
comes; a second signal exits at once. A signal while the main thread runs a plugin's `init` (to
load, or reload) stops that call at once: at load the run ends with Interrupted; a reload is
abandoned and the shutdown above follows.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import mido

from conductor._timing import Clock
from conductor.engine.actions import SendMidi, flatten
from conductor.engine.config import Config, load_config
from conductor.engine.devices import gamepad_mappings, input_specs, resolve_devices
from conductor.engine.dispatcher import Dispatcher, PluginKey, Reporter
from conductor.engine.native import NativeActions
from conductor.engine.plugins import PluginFinding, load_config_plugins
from conductor.engine.scheduler import Scheduler
from conductor.engine.watch import watch_files
from conductor.engine.workers import PluginWorker, Worker
from conductor.errors import ConductorError, ExitCode, Interrupted, PluginsNotLoaded, UsageError
from conductor.midi.inputs import EndOfInput, MidiInput, open_input
from conductor.midi.outputs import OutputPorts
from conductor.midi.ports import backend
from conductor.paths import grants_file, module_cache_dir, trust_store_path
from conductor.plugins.interrupts import interrupt, interruptible
from conductor.plugins.loader import Prompt
from conductor.plugins.runtime import PluginHost

_log = logging.getLogger("conductor.engine")
RECEIVE_TIMEOUT_S = 0.02
SHUTDOWN_POLL_S = 0.02


@dataclass(frozen=True)
class RunOptions:
    ports: tuple[str, ...] = ()  # --port, repeatable
    virtual: str | None = None
    replay: Path | None = None
    speed: float = 1.0
    api: str | None = None
    duration: float | None = None
    trust_store: Path | None = None
    prompt: Prompt | None = None
    on_config: Callable[[Config], None] | None = None  # told of every config loaded (its secrets)


class Engine:
    """Owns the plugin host, the workers, the dispatcher and the input for one `run`."""

    def __init__(
        self,
        config_path: Path,
        options: RunOptions,
        report: Reporter,
        cache_dir: Path | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.config_path = config_path
        self.options = options
        self.report = report
        self.clock = clock
        self.stop_requested = threading.Event()
        self.reload_requested = threading.Event()
        self.config: Config = self._load_config()
        self.host = PluginHost(
            cache_dir if cache_dir is not None else module_cache_dir(), interruptible=True
        )
        self.scheduler = Scheduler(clock)
        self.scheduler.start()
        self.workers: dict[PluginKey, PluginWorker] = {}
        self.native = NativeActions()  # the action workers, kept across reloads
        self.midi: mido.Backend | None = None
        self.outputs: OutputPorts | None = None
        self._output_warnings: set[str] = set()
        self.input: MidiInput | None = None
        self.dispatcher: Dispatcher | None = None
        self.reloads = 0
        self.last_reload_ms = 0.0
        self._watcher: threading.Thread | None = None
        self._watch_stop = threading.Event()

    # -- start-up ----------------------------------------------------------------------------

    def _load_config(self) -> Config:
        config = load_config(self.config_path)
        if self.options.on_config is not None:
            self.options.on_config(config)
        for line in config.warning_lines():
            _log.warning("%s", line)
        return config

    def load_plugins(self) -> None:
        """Load every plugin the config names; any failure raises before listening."""
        findings = load_config_plugins(
            self.host, self.config, self.options.trust_store, self.options.prompt
        )
        failed = [finding for finding in findings if finding.error is not None]
        if failed:
            for finding in findings:
                if finding.loaded is not None:
                    finding.loaded.plugin.shutdown()
            raise _not_loaded(self.config_path, failed)
        self.workers = {
            finding.key: PluginWorker(finding.loaded, clock=self.clock)
            for finding in findings
            if finding.loaded
        }

    def open_input(self) -> MidiInput:
        """Open the inputs (ports and virtual ports merge into one stream, or a replay), then
        resolve the triggers' `device` names against them."""
        options = self.options
        if options.replay is not None and (options.ports or options.virtual is not None):
            given = ["--port"] * bool(options.ports) + ["--virtual"] * (options.virtual is not None)
            raise UsageError(
                f"--replay plays a file: it cannot be combined with {', '.join(given)}"
            )
        if options.replay is not None:
            self.input = open_input(options.replay, speed=options.speed)
        else:
            virtual = [options.virtual] if options.virtual is not None else []
            specs = input_specs(self.config, options.ports, virtual)
            self.midi = backend(options.api)
            self.outputs = OutputPorts(self.midi)
            self.input = open_input(specs, midi=self.midi)
        self.config = resolve_devices(self.config, self.input.sources())
        self._say_inactive(self.config, None)
        return self.input

    def _say_inactive(self, config: Config, before: Config | None) -> None:
        """Once per run (and again when a reload changes the count): mappings with a gamepad
        trigger never fire, as Conductor reads no gamepad."""
        count = len(gamepad_mappings(config))
        if count and (before is None or count != len(gamepad_mappings(before))):
            _log.warning(
                "%d mapping(s) with a gamepad trigger stay inactive: Conductor reads MIDI "
                "input only, no gamepad",
                count,
            )

    def _replay_outputs(self) -> None:
        """SendMidi during a replay still needs a backend; created only if the config sends MIDI."""
        if self.outputs is None and _send_midi_targets(self.config):
            self.midi = backend(self.options.api)
            self.outputs = OutputPorts(self.midi)

    def _open_outputs(self, config: Config) -> None:
        """Open the outputs the config sends to before its first event needs them."""
        if self.outputs is None:
            return
        for error in self.outputs.open_ahead(sorted(_send_midi_targets(config))):
            text = error.diagnostics()
            if text not in self._output_warnings:  # said once a run, not again on each reload
                self._output_warnings.add(text)
                _log.warning("%s; tried again when a mapping sends to it", text)

    # -- running -----------------------------------------------------------------------------

    def run(self) -> None:
        """Listen until a signal, the end of a replay, or the duration; then shut down. The
        signals are ours from the start (a Ctrl-C while the ports open is a shutdown like any
        other) until the shutdown is over."""
        previous = self._install_signal_handlers()
        try:
            self._listen()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    def _listen(self) -> None:
        source = self.input or self.open_input()
        self._replay_outputs()
        self._open_outputs(self.config)
        self.dispatcher = Dispatcher(
            self.config,
            self.workers,
            self.scheduler,
            self.outputs,
            self.report,
            backpressure=self.stop_requested if source.lossless else None,
            sequence=itertools.count(1),
            native=self.native,
        )
        self._start_watcher()
        _log.info(
            "listening on %s with %d plugin(s); Ctrl-C to stop", source.name, len(self.workers)
        )
        deadline = self.clock() + self.options.duration if self.options.duration else None
        finished_input = False
        try:
            while not self.stop_requested.is_set():
                if deadline is not None and self.clock() >= deadline:
                    break
                try:
                    event = source.receive(RECEIVE_TIMEOUT_S)
                except EndOfInput:
                    finished_input = True
                    break
                if event is not None:
                    self.dispatcher.handle(event)
                self.dispatcher.tick(self.clock() * 1000.0)
                if self.reload_requested.is_set():
                    self.reload_requested.clear()
                    try:
                        self.reload()
                    except Interrupted as exc:  # a signal: the loop ends on stop_requested
                        _log.warning("reload abandoned: %s", exc.diagnostics())
        finally:
            self.shutdown(finish_queues=finished_input)

    def _install_signal_handlers(self) -> dict[int, Any]:
        """SIGINT and SIGTERM start the shutdown; a second one exits at once. The handlers
        they had before, to put back (none off the main thread, where none can be set)."""
        if threading.current_thread() is not threading.main_thread():
            return {}

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if not self.stop_requested.is_set():
                self.stop_requested.set()
                interrupt(self.host, signum, frame)  # a reload's plugin init stops too
                return
            os.write(2, b"error: interrupted again: exiting at once\n")
            os._exit(ExitCode.for_signal(signum))

        return {
            signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)
        }

    def _watched_files(self) -> set[Path]:
        """What decides the running terms: the config, the grants store and the trust store."""
        store = trust_store_path(self.options.trust_store, self.config.plugins.trust_store)
        return {self.config_path, grants_file(), store}

    def _start_watcher(self) -> None:
        def watch() -> None:
            try:
                watch_files(self._watched_files, self._watch_stop, self.reload_requested.set)
            except Exception as exc:  # watching is a convenience; running goes on without it
                _log.warning("reload disabled: cannot watch %s: %s", self.config_path, exc)

        self._watcher = threading.Thread(target=watch, name="conductor-config-watch", daemon=True)
        self._watcher.start()

    def reload(self) -> bool:
        """Re-read the config and re-evaluate every plugin's terms (signature policy, trust store,
        grants, hosts, commands, limits, plugin config); they apply from the next call. Plugins
        whose terms did not change stay loaded and warm; one whose terms changed is loaded
        again under the new ones; one that no longer loads is unloaded and reported. An invalid
        config is reported and the running one kept, its plugins still re-evaluated (the stores
        may have changed). Reloads never prompt: `run`'s view owns the terminal, and a revoked
        approval must not be asked for again at once. A signal meanwhile stops the plugin `init`
        it is waiting for, raising Interrupted before anything changed."""
        started = time.perf_counter()
        keep = {key: worker.loaded for key, worker in self.workers.items()}
        try:
            config = self._load_config()
            if self.input is not None:
                config = resolve_devices(config, self.input.sources())
            findings = load_config_plugins(self.host, config, self.options.trust_store, None, keep)
            reloaded = True
        except ConductorError as exc:
            _log.error("config not reloaded, keeping the running one: %s", exc.diagnostics())
            config, reloaded = self.config, False
            try:
                findings = load_config_plugins(
                    self.host, config, self.options.trust_store, None, keep
                )
            except ConductorError as again:
                _log.error("plugins not re-evaluated: %s", again.diagnostics())
                return False
        workers: dict[PluginKey, PluginWorker] = {}
        for finding in findings:
            if finding.loaded is None:
                assert finding.error is not None
                _log.error(
                    "%s: %s: plugin not loaded, its mappings do nothing: %s",
                    self.config_path,
                    finding.where,
                    finding.error.diagnostics(),
                )
                continue
            current = self.workers.get(finding.key)
            workers[finding.key] = (
                current
                if current is not None and current.loaded is finding.loaded
                else PluginWorker(finding.loaded)
            )
        if not reloaded and workers == self.workers:
            return False
        retired = [worker for key, worker in self.workers.items() if workers.get(key) is not worker]
        assert self.dispatcher is not None
        self._say_inactive(config, self.config)
        self._open_outputs(config)
        self.dispatcher = self.dispatcher.with_config(config, workers)
        self.config, self.workers = config, workers
        for worker in retired:
            worker.stop()
        if reloaded:
            self.reloads += 1
        self.last_reload_ms = (time.perf_counter() - started) * 1000
        _log.warning(
            "%s from %s in %.1f ms",
            "config reloaded" if reloaded else "plugins re-evaluated",
            self.config_path,
            self.last_reload_ms,
        )
        return True

    def shutdown(self, finish_queues: bool = False) -> None:
        """Stop input, let queued calls and due delays finish (all of them with `finish_queues`,
        else within the shutdown budget), abandon the rest, and shut every plugin down."""
        self._watch_stop.set()
        if self.input is not None:
            self.input.close()
        budget_ms = self.config.advanced.shutdown_timeout_ms
        deadline = None if finish_queues else self._start_budget(budget_ms)
        if finish_queues and (waiting := self._waiting_for()):
            _log.info("end of input: finishing %s; Ctrl-C to stop waiting", ", ".join(waiting))
        # Delays and conditions first: when they are done they may still queue calls.
        while self.scheduler.pending(before=deadline) or any(
            worker.pending() for worker in self.native.workers()
        ):
            deadline = self._wait_a_little(deadline, budget_ms)
            if deadline is not None and self.clock() >= deadline:
                break
        abandoned_delays = self.scheduler.stop()
        workers = self._all_workers()
        for worker in workers:
            worker.close()
        while not all(worker.join(0) for worker in workers):
            deadline = self._wait_a_little(deadline, budget_ms)
            if deadline is not None and self.clock() >= deadline:
                break
        stuck = {worker: worker.pending() for worker in workers if not worker.join(0)}
        abandoned = {worker.name: worker.abandon() for worker in stuck}
        self._report_shutdown(workers, abandoned, abandoned_delays, budget_ms)
        for worker, what in stuck.items():
            unfinished = ", without its shutdown call" if isinstance(worker, PluginWorker) else ""
            _log.warning("left running at the deadline%s: %s", unfinished, what)
        if self.outputs is not None:
            self.outputs.close()
        if self._watcher is not None:
            self._watcher.join(timeout=0.5)
        self.host.close()

    def _all_workers(self) -> list[Worker[Any]]:
        return [*self.workers.values(), *self.native.workers()]

    def _waiting_for(self) -> list[str]:
        """What shutdown still waits for: each busy worker with its jobs, and delays."""
        waiting = [text for worker in self._all_workers() if (text := worker.pending())]
        delays = self.scheduler.pending()
        if delays:
            waiting.append(f"{delays} delayed action(s)")
        return waiting

    def _start_budget(self, budget_ms: int) -> float:
        """The shutdown deadline, announced with what it waits for."""
        if waiting := self._waiting_for():
            _log.warning(
                "stopping: waiting up to %.1f s for %s; Ctrl-C again to quit at once",
                budget_ms / 1000,
                ", ".join(waiting),
            )
        return self.clock() + budget_ms / 1000

    def _wait_a_little(self, deadline: float | None, budget_ms: int) -> float | None:
        """Sleep one poll step; a signal while finishing a replay's queues starts the budget."""
        if deadline is None and self.stop_requested.is_set():
            deadline = self._start_budget(budget_ms)
        time.sleep(SHUTDOWN_POLL_S)
        return deadline

    def _report_shutdown(
        self,
        workers: list[Worker[Any]],
        abandoned: dict[str, int],
        abandoned_delays: int,
        budget_ms: int,
    ) -> None:
        if abandoned or abandoned_delays:
            detail = [f"{name}: {count}" for name, count in abandoned.items()]
            if abandoned_delays:
                detail.append(f"{abandoned_delays} delayed action(s)")
            _log.warning(
                "stopped after the %d ms shutdown budget: abandoned %d call(s) (%s)",
                budget_ms,
                sum(abandoned.values()),
                ", ".join(detail),
            )
        for worker in workers:
            counts = worker.counts
            ended = worker.shutdown_result if isinstance(worker, PluginWorker) else None
            if ended is not None and ended.error:
                _log.warning("%s", ended.error)
            lost = {k: v for k, v in counts.items() if k != "calls" and v}
            if lost:
                _log.warning(
                    "%s: %d call(s); %s",
                    worker.name,
                    counts["calls"],
                    ", ".join(f"{count} {kind}" for kind, count in lost.items()),
                )
        if self.input is not None and self.input.dropped:
            _log.warning(
                "%s: %d event(s) dropped at the input", self.input.name, self.input.dropped
            )


def _send_midi_targets(config: Config) -> set[tuple[str, bool]]:
    """The outputs (port, virtual) that the config's SendMidi actions name."""
    return {
        (action.port, action.virtual)
        for mapping in config.all_mappings()
        for action in flatten(mapping.action)
        if isinstance(action, SendMidi)
    }


def _not_loaded(config_path: Path, failed: list[PluginFinding]) -> PluginsNotLoaded:
    """One error for every plugin that did not load, with the exit code of them all (the rule
    `verify` and `check` use)."""
    errors = [finding.error for finding in failed if finding.error is not None]
    reasons = "; ".join(
        f"{finding.where}: {finding.error.diagnostics()}"
        for finding in failed
        if finding.error is not None
    )
    if len(failed) > 1:
        reasons = f"{len(failed)} plugins did not load: {reasons}"
    return PluginsNotLoaded(f"{config_path}: {reasons}", errors)


def run_engine(
    config_path: Path,
    options: RunOptions,
    report: Reporter,
    on_ready: Callable[[Engine], None] | None = None,
) -> Engine:
    """Load, then listen until done; load errors raise before any port is opened, and so does
    Interrupted on SIGINT or SIGTERM while loading (also from inside a plugin's `init`)."""
    engine = Engine(config_path, options, report)
    try:
        with interruptible(engine.host):
            engine.load_plugins()
        engine.open_input()
    except BaseException:
        engine.shutdown()
        raise
    if on_ready is not None:
        on_ready(engine)
    engine.run()
    return engine
