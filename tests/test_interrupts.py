"""Ctrl-C and SIGTERM while the main thread is inside a plugin (an `init` at load or reload, the
one `execute` of `plugin exec`, in its own code or waiting in a host call): the call stops at
once, the command says which plugin it interrupted and ends with 130 or 143 — not after the
call's own 30 s wall-clock limit. Real processes, real signals, plugins built here from WAT."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mido
import pytest
import wasmtime

from conductor.errors import ExitCode, Interrupted, PluginError
from conductor.plugins.limits import Limits
from conductor.plugins.loader import LoadedPlugin, LoadOptions, load_plugin
from conductor.plugins.runtime import PluginHost
from conductor.signing import SignaturePolicy, TrustStore
from tests.midi_helpers import RunningConductor
from tests.plugin_helpers import fixture_path

LIMIT_MS = 30_000  # each loop would run this long; every exit below comes far sooner
FUEL = 100_000_000_000_000  # never the limit that ends a loop here
ENOUGH_S = 5.0  # a generous bound for "at once" on a busy 2-core machine
LOOP = "(loop $l (br $l))"
LOOP_CALLING_THE_HOST = (
    "(loop $l (drop (call $log (i32.const 2) (i32.const 0) (i32.const 4))) (br $l))"
)


def module(init: str = "", execute: str = "") -> bytes:
    """A plugin whose `init` and `execute` run the given instructions (then return)."""
    return wasmtime.wat2wasm(f"""
    (module
      (import "conductor" "log" (func $log (param i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "spin")
      (func (export "alloc") (param i32) (result i32) (i32.const 1024))
      (func (export "init") {init})
      (func (export "execute") (param i32 i32) (result i32) {execute} (i32.const 0)))
    """)


def plugin(tmp_path: Path, name: str, wasm: bytes) -> Path:
    path = tmp_path / f"{name}.wasm"
    path.write_bytes(wasm)
    return path


def config(tmp_path: Path, plugin_path: Path, name: str = "loop.toml") -> Path:
    path = tmp_path / name
    path.write_text(f"""
[plugins]
signature_policy = "unsigned"
limits = {{ max_fuel = {FUEL}, timeout_ms = {LIMIT_MS} }}
[[modes]]
name = "Default"
[[modes.mappings]]
trigger = {{ Note = {{ note = 36 }} }}
action = {{ WasmPlugin = {{ path = "{plugin_path}" }} }}
""")
    return path


def quiet_song(tmp_path: Path) -> Path:
    """One note, then five minutes of nothing."""
    track = mido.MidiTrack(
        [
            mido.Message("note_on", note=36, velocity=100, time=0),
            mido.Message("note_on", note=37, velocity=100, time=480 * 600),
        ]
    )
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks.append(track)
    path = tmp_path / "quiet.mid"
    midi.save(path)
    return path


def signalled(
    args: list[str | Path], ready: str, signum: int = signal.SIGINT
) -> tuple[int, str, float]:
    """Run `conductor *args` until `ready` is on stderr and a second longer (the plugin is then
    in its loop), send `signum`; the exit code, stderr, and seconds from the signal to the exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "conductor", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen: list[str] = []
    while not any(ready in line for line in seen):
        line = process.stderr.readline()
        assert line, "".join(seen)
        seen.append(line)
    time.sleep(1)
    started = time.monotonic()
    process.send_signal(signum)
    _, rest = process.communicate(timeout=LIMIT_MS / 1000 + 30)
    return process.returncode, "".join(seen) + rest, time.monotonic() - started


def assert_one_line(stderr: str, line: str) -> None:
    assert stderr.splitlines()[-1] == line, stderr
    assert sum("interrupted" in text for text in stderr.splitlines()) == 1, stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("init", [LOOP, LOOP_CALLING_THE_HOST], ids=["loop", "host-calls"])
def test_ctrl_c_stops_check_inside_a_plugins_init(tmp_path: Path, init: str) -> None:
    run = config(tmp_path, plugin(tmp_path, "spin_init", module(init=init)))
    code, stderr, elapsed = signalled(["check", run], "spin_init.wasm: running an UNSIGNED")
    assert code == ExitCode.INTERRUPTED == 130, stderr
    assert_one_line(stderr, "error: spin_init: init interrupted by SIGINT")
    assert elapsed < ENOUGH_S, stderr


def test_ctrl_c_stops_plugin_exec_inside_execute(tmp_path: Path) -> None:
    path = plugin(tmp_path, "spin_execute", module(execute=LOOP))
    limits = ["--fuel", str(FUEL), "--timeout-ms", str(LIMIT_MS)]
    code, stderr, elapsed = signalled(
        ["plugin", "exec", path, "--policy", "unsigned", *limits],
        "spin_execute.wasm: running an UNSIGNED",
    )
    assert code == 130, stderr
    assert_one_line(stderr, "error: spin_execute: execute interrupted by SIGINT")
    assert elapsed < ENOUGH_S, stderr


def test_ctrl_c_stops_a_plugin_waiting_in_a_host_call(tmp_path: Path) -> None:
    """The command the host call runs is killed on the way (tests/hostile/test_exec_tree.py
    checks that nothing it started survives)."""
    config = tmp_path / "config.toml"
    config.write_text(
        '[plugins]\nsignature_policy = "unsigned"\n'
        '[plugins.commands]\nhost_probe = ["sh"]\n'
        '[plugins.grants]\nhost_probe = ["Subprocess"]\n'
    )
    params = {"fn": "exec", "arg": json.dumps({"argv": ["sh", "-c", "sleep 99"]})}
    code, stderr, elapsed = signalled(
        [
            *("plugin", "exec", fixture_path("host_probe"), "--config", config),
            *("--timeout-ms", str(LIMIT_MS), "--params", json.dumps(params)),
        ],
        "host_probe.wasm: running an UNSIGNED",
    )
    assert code == 130, stderr
    assert_one_line(stderr, "error: host_probe: execute interrupted by SIGINT")
    assert elapsed < ENOUGH_S, stderr


@pytest.mark.parametrize(
    ("signum", "exit_code"),
    [(signal.SIGINT, ExitCode.INTERRUPTED), (signal.SIGTERM, ExitCode.TERMINATED)],
    ids=["SIGINT", "SIGTERM"],
)
def test_a_signal_stops_run_while_it_loads_a_plugin(
    tmp_path: Path, signum: signal.Signals, exit_code: int
) -> None:
    run = config(tmp_path, plugin(tmp_path, "spin_init", module(init=LOOP)))
    code, stderr, elapsed = signalled(
        ["run", run, "--replay", quiet_song(tmp_path)],
        "spin_init.wasm: running an UNSIGNED",
        signum,
    )
    assert code == exit_code == 128 + signum, stderr
    assert_one_line(stderr, f"error: spin_init: init interrupted by {signum.name}")
    assert elapsed < ENOUGH_S, stderr


def test_ctrl_c_during_a_reload_abandons_it_and_shuts_down_as_usual(tmp_path: Path) -> None:
    """A reload runs on the main thread: its stuck `init` stops at once, and the first Ctrl-C
    is then what it always is while listening, a graceful shutdown with exit 0."""
    good = plugin(tmp_path, "good", module())
    spinning = plugin(tmp_path, "spin_init", module(init=LOOP))
    run = config(tmp_path, good)
    running = RunningConductor(run, "--replay", quiet_song(tmp_path))
    try:
        running.wait_stderr("listening on")
        deadline = time.monotonic() + 10
        # The watcher goes live just after that line: write until the reload has begun.
        while not any("spin_init.wasm: running an UNSIGNED" in x for x in running.stderr_lines):
            assert time.monotonic() < deadline, "".join(running.stderr_lines)
            config(tmp_path, spinning)
            time.sleep(0.2)
        time.sleep(1)
        started = time.monotonic()
        code = running.stop(signal.SIGINT, timeout=LIMIT_MS / 1000 + 30)
        elapsed = time.monotonic() - started
    finally:
        running.process.kill()
    stderr = "".join(running.stderr_lines)
    assert code == 0, stderr
    assert "reload abandoned: spin_init: init interrupted by SIGINT" in stderr
    assert "Traceback" not in stderr and "config reloaded" not in stderr
    assert elapsed < ENOUGH_S, stderr


def _load(host: PluginHost, path: Path, timeout_ms: int) -> LoadedPlugin:
    options = LoadOptions(
        policy=SignaturePolicy.UNSIGNED,
        trust_store=TrustStore(path.parent / "trust.toml"),
        limits=Limits(max_fuel=FUEL, timeout_ms=timeout_ms),
    )
    return load_plugin(host, path, options)


def test_interrupt_stops_the_main_threads_call_and_leaves_the_others_to_their_limits(
    tmp_path: Path,
) -> None:
    path = plugin(tmp_path, "spin_init", module(init=LOOP))
    with PluginHost(None, interruptible=True) as host:  # no cache: both threads compile
        other: list[BaseException] = []

        def load_elsewhere() -> None:
            try:
                _load(host, path, timeout_ms=1500)
            except BaseException as exc:
                other.append(exc)

        elsewhere = threading.Thread(target=load_elsewhere)
        elsewhere.start()
        threading.Timer(0.5, host.interrupt, [signal.SIGINT]).start()
        started = time.monotonic()
        with pytest.raises(Interrupted) as stopped:
            _load(host, path, timeout_ms=LIMIT_MS)
        assert time.monotonic() - started < ENOUGH_S
        elsewhere.join()
    assert stopped.value.diagnostics() == "spin_init: init interrupted by SIGINT"
    assert stopped.value.exit_code == 130
    # The call on the other thread polled too, and still ran to its own limit.
    assert [type(exc) for exc in other] == [PluginError]
    assert "timed out: wall-clock limit of 1500 ms exceeded" in str(other[0])


def test_ctrl_c_while_the_app_is_still_being_imported_exits_130_without_a_traceback(
    tmp_path: Path,
) -> None:
    """The entry point imports the app itself, so a Ctrl-C in the first tens of milliseconds
    (while Typer, rich and the commands are imported) ends like any other. The app here takes
    its time to import, so the signal surely lands during the import."""
    (tmp_path / "slow_app.py").write_text(
        "import sys, time\nprint('importing', file=sys.stderr, flush=True)\ntime.sleep(30)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", "from conductor._entry import start; start('slow_app')"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])},
    )
    assert process.stderr is not None
    assert process.stderr.readline() == "importing\n"
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=10)
    assert process.returncode == ExitCode.INTERRUPTED
    assert rest == ""


@pytest.mark.parametrize("command", ["inspect", "list"])
def test_ctrl_c_stops_inspect_and_list_inside_a_plugins_init(tmp_path: Path, command: str) -> None:
    """These run `init` under the default limits: a loop that keeps calling the host spends
    little fuel, so only the 5 s wall-clock limit would end it. Nothing is printed before
    `init` runs, so the signal comes after a fixed wait: during compilation, it stops the
    command just as well."""
    installed = Path(os.environ["HOME"]) / ".conductor" / "wasm-plugins"
    installed.mkdir(parents=True)
    path = plugin(installed, "spin_init", module(init=LOOP_CALLING_THE_HOST))
    args = ["plugin", "inspect", path] if command == "inspect" else ["plugin", "list"]
    args += ["--policy", "unsigned"] if command == "list" else []
    process = subprocess.Popen(
        [sys.executable, "-m", "conductor", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert time.monotonic() - started < 2.5, stderr  # the wall-clock limit would be > 3.5 s


def test_a_polled_call_keeps_its_wall_clock_limit_across_a_slow_host_call(
    tmp_path: Path,
) -> None:
    """Polling moves a call's epoch deadline on in steps; the time it spent inside a host
    function (here a `log` whose handler takes 3 s) still counts against its limit. With the
    steps counted instead of the clock, the call would run about 2 s more after the host call."""
    path = plugin(
        tmp_path,
        "slow_log",
        module(execute=f"(drop (call $log (i32.const 2) (i32.const 0) (i32.const 4))) {LOOP}"),
    )

    class Slow(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "spin":
                time.sleep(3)

    logger = logging.getLogger("conductor.plugin")
    handler, level = Slow(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with PluginHost(None, interruptible=True) as host:
            loaded = _load(host, path, timeout_ms=2000)
            done: list[tuple[float, str | None]] = []

            def call() -> None:  # off the main thread, as the engine's workers call
                started = time.monotonic()
                result = loaded.plugin.execute(b"{}")
                done.append((time.monotonic() - started, result.error))

            worker = threading.Thread(target=call)
            worker.start()
            worker.join()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    elapsed, error = done[0]
    assert error is not None and "wall-clock limit of 2000 ms exceeded" in error
    assert elapsed < 4.0, elapsed  # the host call ends at 3 s; the limit was already spent
