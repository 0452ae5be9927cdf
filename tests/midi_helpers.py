"""Real MIDI for tests: a JACK server with the dummy driver, started and stopped by the suite,
and helpers to talk to `conductor run` through real JACK MIDI ports."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import rtmidi


def missing(message: str) -> None:
    """Something a test needs is not installed: fail the run in CI (CI=true), skip elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def require(tool: str, package: str | None = None) -> str:
    """The tool's path; missing fails the run in CI (CI=true) and skips elsewhere."""
    path = shutil.which(tool)
    if path is None:
        missing(f"{tool} is not installed" + (f" (Debian package {package})" if package else ""))
    return path  # type: ignore[return-value]


@pytest.fixture(scope="session")
def jack_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private JACK server (`jackd -n NAME -d dummy -p 64`) for the whole session."""
    jackd = require("jackd", "jackd2")
    jack_wait = require("jack_wait", "jackd2")
    name = f"conductor-test-{os.getpid()}"
    log = tmp_path_factory.mktemp("jack") / "jackd.log"
    saved = {key: os.environ.get(key) for key in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["JACK_NO_START_SERVER"] = "1"
    with log.open("w") as output:
        process = subprocess.Popen(
            [jackd, "-r", "-n", name, "-d", "dummy", "-r", "48000", "-p", "64"],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "JACK_NO_AUDIO_RESERVATION": "1"},
        )
    ready = subprocess.run(
        [jack_wait, "-s", name, "-w", "-t", "15"], capture_output=True, text=True
    )
    if ready.returncode != 0 or process.poll() is not None:
        process.kill()
        pytest.fail(f"jackd did not start: {ready.stdout}{ready.stderr}{log.read_text()[-2000:]}")
    yield name
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def wait_for_port(midi: rtmidi.MidiOut | rtmidi.MidiIn, fragment: str, timeout: float = 10) -> int:
    return _find_port(midi, fragment, timeout)[0]


def _find_port(
    midi: rtmidi.MidiOut | rtmidi.MidiIn, fragment: str, timeout: float
) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ports = midi.get_ports()
        for index, name in enumerate(ports):
            if fragment in name:
                return index, name
        time.sleep(0.05)
    raise AssertionError(f"no JACK port containing {fragment!r}: {midi.get_ports()}")


def jack_connections(port: str) -> list[str]:
    """The ports JACK lists as connected to `port` (its full name), from `jack_lsp -c`."""
    listing = subprocess.run(
        [require("jack_lsp", "jackd2"), "-c", port], capture_output=True, text=True, timeout=10
    ).stdout.splitlines()
    if port not in listing:
        return []
    start = listing.index(port) + 1
    connected = []
    for line in listing[start:]:
        if not line.startswith((" ", "\t")):
            break
        connected.append(line.strip())
    return connected


def connect(sender: rtmidi.MidiOut, fragment: str, timeout: float = 10) -> None:
    """Connect to the port containing `fragment`, and wait until JACK lists the new connection,
    so that what is sent next has a way to its destination."""
    index, destination = _find_port(sender, fragment, timeout)
    before = len(jack_connections(destination))
    sender.open_port(index)
    deadline = time.monotonic() + timeout
    while len(jack_connections(destination)) <= before:
        if time.monotonic() > deadline:
            raise AssertionError(f"JACK did not connect to {destination!r} within {timeout} s")
        time.sleep(0.01)


class RunningConductor:
    """`conductor run … --log-format json` as a real process; stdout lines parsed as they come."""

    def __init__(self, *args: str | os.PathLike[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "conductor", "run", *map(str, args), "--log-format", "json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stderr_lines: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.put(json.loads(line))

    def _read_stderr(self) -> None:
        stream: IO[str] | None = self.process.stderr
        assert stream is not None
        for line in stream:
            self.stderr_lines.append(line)

    def next_event(self, timeout: float = 10, matched: bool = True) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no event within {timeout} s; stderr: {''.join(self.stderr_lines)}"
                )
            try:
                event = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if not matched or event["mapping"] is not None:
                return event

    def wait_stderr(self, text: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.stderr_lines):
                return
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in stderr: {''.join(self.stderr_lines)}")

    def stop(self, signum: int = signal.SIGINT, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        return code


def write_config(path: Path, body: str, data: dict[str, Any] | None = None) -> Path:
    path.write_text(body.format(**(data or {})))
    return path
