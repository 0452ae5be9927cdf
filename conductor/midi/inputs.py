"""Inputs the engine reads events from: an existing port, a virtual port, or a replayed file.

All three offer `receive(timeout)` and `close()`, so the engine never asks which it has. Port
callbacks run on rtmidi's thread; they only stamp the arrival time and queue the message.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Protocol

import mido

from conductor._files import MIDI_FILE_LIMIT, read_bytes
from conductor.midi.ports import CLIENT_NAME, PortError, choose, input_names

_log = logging.getLogger("conductor.midi")
RECONNECT_POLL_S = 0.5


class EndOfInput(Exception):
    """The input has nothing more to give (the replayed file ended)."""


Received = tuple[mido.Message, float]  # message and its arrival on the monotonic clock, in ms


class MidiInput(Protocol):
    name: str

    def receive(self, timeout: float) -> Received | None: ...

    def close(self) -> None: ...


def _now_ms() -> float:
    return time.monotonic() * 1000.0


class _Queued:
    """Shared queue plumbing: callbacks push, `receive` pops."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Received | None] = queue.SimpleQueue()

    def _push(self, message: mido.Message) -> None:
        self._queue.put((message, _now_ms()))

    def receive(self, timeout: float) -> Received | None:
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is None:
            raise EndOfInput
        return item


class VirtualInput(_Queued):
    """A new input port other programs connect to."""

    def __init__(self, midi: mido.Backend, name: str) -> None:
        super().__init__()
        self.name = name
        try:
            self._port = midi.open_input(
                name, virtual=True, callback=self._push, client_name=CLIENT_NAME
            )
        except Exception as exc:
            raise PortError(f"cannot create virtual MIDI input {name!r}: {exc}") from exc

    def close(self) -> None:
        self._port.close()


class PortInput(_Queued):
    """An existing input port, found by exact name or unique substring; with `reconnect`, a lost
    port is logged and re-opened when it comes back."""

    def __init__(self, midi: mido.Backend, wanted: str, reconnect: bool) -> None:
        super().__init__()
        self._midi = midi
        self._wanted = wanted
        self._reconnect = reconnect
        self.name = choose(wanted, input_names(midi), "input")
        self._port: mido.ports.BaseInput | None = None
        self._open()
        self._last_check = time.monotonic()

    def _open(self) -> None:
        try:
            # No client_name here: with it, rtmidi's JACK API leaves the new port unconnected.
            self._port = self._midi.open_input(self.name, callback=self._push)
        except Exception as exc:
            raise PortError(f"cannot open MIDI input {self.name!r}: {exc}") from exc

    def receive(self, timeout: float) -> Received | None:
        received = super().receive(timeout)
        if (
            received is None
            and self._reconnect
            and time.monotonic() - self._last_check >= RECONNECT_POLL_S
        ):
            self._last_check = time.monotonic()
            self._check_connection()
        return received

    def _check_connection(self) -> None:
        try:
            names = input_names(self._midi)
        except PortError:
            names = []
        if self._port is not None and self.name not in names:
            _log.warning("MIDI input %r disappeared; waiting for it to return", self.name)
            self._port.close()
            self._port = None
        elif self._port is None:
            # Re-resolve: a returning device may come back under a new client name or number.
            try:
                self.name = choose(self._wanted, names, "input")
                self._open()
                _log.warning("MIDI input %r is back; reconnected", self.name)
            except PortError:
                pass

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None


class ReplayInput(_Queued):
    """A Standard MIDI File played as input at its own tempo (`speed` 0: as fast as possible)."""

    def __init__(self, path: Path, speed: float) -> None:
        super().__init__()
        # Read through the bounded reader: mido would open a FIFO blocking and read a device
        # without end.
        data = read_bytes(path, "MIDI file", MIDI_FILE_LIMIT)
        try:
            self._file = mido.MidiFile(file=io.BytesIO(data))
        except (OSError, ValueError, EOFError, KeyError, IndexError) as exc:
            raise PortError(f"{path}: not a readable Standard MIDI File ({exc})") from exc
        if speed < 0:
            raise PortError(f"--speed must be 0 (as fast as possible) or positive, got {speed}")
        self.name = f"replay:{path.name}"
        self._speed = speed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, name="conductor-replay", daemon=True)
        self._thread.start()

    def _play(self) -> None:
        started = time.monotonic()
        elapsed = 0.0
        for message in self._file:  # message.time: seconds since the previous one, tempo applied
            if self._stop.is_set():
                break
            elapsed += message.time
            if self._speed > 0:
                delay = started + elapsed / self._speed - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
            if not message.is_meta:
                self._push(message)
        self._queue.put(None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
