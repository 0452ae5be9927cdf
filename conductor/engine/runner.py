"""`conductor run`: load a config and its plugins, listen to one MIDI input, dispatch events,
reload the config when it changes, and shut everything down cleanly."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mido

from conductor.engine.actions import SendMidi, flatten
from conductor.engine.config import Config, load_config
from conductor.engine.dispatcher import Dispatcher, PluginKey, Reporter
from conductor.engine.plugins import load_config_plugins, trust_store_for
from conductor.engine.scheduler import Scheduler
from conductor.engine.watch import watch_files
from conductor.engine.workers import PluginWorker
from conductor.errors import ConductorError, UsageError
from conductor.midi.events import from_mido
from conductor.midi.inputs import EndOfInput, MidiInput, PortInput, ReplayInput, VirtualInput
from conductor.midi.outputs import OutputPorts
from conductor.midi.ports import backend
from conductor.paths import grants_file, module_cache_dir
from conductor.plugins.loader import Prompt
from conductor.plugins.runtime import PluginHost

_log = logging.getLogger("conductor.engine")
RECEIVE_TIMEOUT_S = 0.02


@dataclass(frozen=True)
class RunOptions:
    port: str | None = None
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
    ) -> None:
        self.config_path = config_path
        self.options = options
        self.report = report
        self.stop_requested = threading.Event()
        self.reload_requested = threading.Event()
        self.config: Config = self._load_config()
        self.host = PluginHost(cache_dir if cache_dir is not None else module_cache_dir())
        self.scheduler = Scheduler()
        self.workers: dict[PluginKey, PluginWorker] = {}
        self.midi: mido.Backend | None = None
        self.outputs: OutputPorts | None = None
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
            first = failed[0]
            assert first.error is not None
            raise type(first.error)(
                f"{self.config_path}: {first.where}: {first.error.diagnostics()}"
            )
        self.workers = {
            finding.key: PluginWorker(finding.loaded) for finding in findings if finding.loaded
        }

    def open_input(self) -> MidiInput:
        options = self.options
        chosen = [
            flag
            for flag, value in (
                ("--port", options.port),
                ("--virtual", options.virtual),
                ("--replay", options.replay),
            )
            if value is not None
        ]
        if len(chosen) > 1:
            raise UsageError(f"choose one input: {', '.join(chosen)}")
        if options.replay is not None:
            self.input = ReplayInput(options.replay, options.speed)
            return self.input
        self.midi = backend(options.api)
        self.outputs = OutputPorts(self.midi)
        if options.virtual is not None:
            self.input = VirtualInput(self.midi, options.virtual)
        else:
            if (
                options.port is None
                and self.config.device.name
                and not self.config.device.auto_connect
            ):
                raise UsageError(
                    f"{self.config_path}: [device] auto_connect is false: pass --port NAME to connect"
                )
            name = options.port or self.config.device.name
            if name is None:
                raise UsageError(
                    "no MIDI input: pass --port NAME, --virtual NAME or --replay FILE.mid, "
                    "or set [device] name in the config"
                )
            self.input = PortInput(self.midi, name, self.config.device.auto_reconnect)
        return self.input

    def _replay_outputs(self) -> None:
        """SendMidi during a replay still needs a backend; created only if the config sends MIDI."""
        sends = any(
            isinstance(a, SendMidi) for m in self.config.all_mappings() for a in flatten(m.action)
        )
        if self.outputs is None and sends:
            self.midi = backend(self.options.api)
            self.outputs = OutputPorts(self.midi)

    # -- running -----------------------------------------------------------------------------

    def run(self) -> None:
        """Listen until a signal, the end of a replay, or the duration; then shut down."""
        source = self.input or self.open_input()
        self._replay_outputs()
        self.dispatcher = Dispatcher(
            self.config, self.workers, self.scheduler, self.outputs, self.report
        )
        self._install_signal_handlers()
        self._start_watcher()
        _log.info(
            "listening on %s with %d plugin(s); Ctrl-C to stop", source.name, len(self.workers)
        )
        deadline = time.monotonic() + self.options.duration if self.options.duration else None
        try:
            while not self.stop_requested.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                try:
                    received = source.receive(RECEIVE_TIMEOUT_S)
                except EndOfInput:
                    break
                if received is not None:
                    message, arrived_ms = received
                    event = from_mido(message, arrived_ms, time.time_ns() // 1_000_000, source.name)
                    if event is not None:
                        self.dispatcher.handle(event)
                self.dispatcher.tick(time.monotonic() * 1000.0, source.name)
                if self.reload_requested.is_set():
                    self.reload_requested.clear()
                    self.reload()
        finally:
            self.shutdown()

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stop_requested.set())

    def _watched_files(self) -> set[Path]:
        """What decides the running terms: the config, the grants store and the trust store."""
        store = trust_store_for(self.config, self.options.trust_store)
        return {self.config_path, grants_file(), store.path}

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
        approval must not be asked for again at once."""
        started = time.perf_counter()
        keep = {key: worker.loaded for key, worker in self.workers.items()}
        try:
            config = self._load_config()
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
        self.dispatcher = Dispatcher(
            config, workers, self.scheduler, self.outputs, self.report, mode=self.dispatcher.mode
        )
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

    def shutdown(self) -> None:
        """Stop input, let due delays run, drain each plugin's queue, call every `shutdown`."""
        self._watch_stop.set()
        if self.input is not None:
            self.input.close()
        self.scheduler.stop(drain=True)
        for worker in self.workers.values():
            result = worker.stop()
            if result.error:
                _log.warning("%s", result.error)
        if self.outputs is not None:
            self.outputs.close()
        if self._watcher is not None:
            self._watcher.join(timeout=1)
        self.host.close()


def run_engine(
    config_path: Path,
    options: RunOptions,
    report: Reporter,
    on_ready: Callable[[Engine], None] | None = None,
) -> Engine:
    """Load, then listen until done; load errors raise before any port is opened."""
    engine = Engine(config_path, options, report)
    try:
        engine.load_plugins()
        engine.open_input()
    except BaseException:
        engine.shutdown()
        raise
    if on_ready is not None:
        on_ready(engine)
    engine.run()
    return engine
