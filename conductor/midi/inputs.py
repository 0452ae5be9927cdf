"""Inputs the engine reads events from: existing ports, virtual ports, or a replayed file.

`open_input` opens one (ports are merged into one stream); all are a `MidiInput`, with
`receive(timeout)`, `closed` and `close()` (or `with`), so the engine never asks which it has;
`lossless` says whether the input can wait for the engine. A port cannot. Its messages wait in rtmidi's own
queue, filled by the MIDI system's thread without any Python (a Python callback there must take
the interpreter lock, and while it waits the MIDI system drops events that nobody counts); one
reader thread per port drains that queue into a bounded queue of ours, where an overflow is
counted and logged, and that thread alone owns the port (opening, noticing it vanish, reopening
it with backoff). Several ports share one such queue: they are read as one stream, in the order
the events arrived, each event naming its `source`. A file can wait: the replay hands out its
next event only when asked.
"""

from __future__ import annotations

import abc
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mido
import rtmidi

from conductor._owned import Owned
from conductor._timing import Backoff, wall_ms
from conductor.errors import ClosedError, PortError, UsageError
from conductor.midi._chatter import library_chatter_held
from conductor.midi.events import MidiEvent, from_bytes
from conductor.midi.ports import CLIENT_NAME, backend, choose, input_names, system_hint
from conductor.midi.smf import read_song

_log = logging.getLogger("conductor.midi")
INPUT_QUEUE_CAPACITY = 10_000  # ours: overflow is counted
RTMIDI_QUEUE_LIMIT = 16_384  # rtmidi's: seconds of events if the reader thread is starved
POLL_ACTIVE_S = 0.00025  # while events flow
POLL_IDLE_S = 0.002  # after a second without any (so an idle run costs almost nothing)
RECONNECT_POLL_S = 0.5  # how often a port checks that its source is still there
PORT_RETRY_FIRST_S, PORT_RETRY_MAX_S = 0.25, 5.0


class EndOfInput(Exception):
    """The input has nothing more to give (the replayed file ended)."""


class MidiInput(Owned):
    """What the engine reads events from. Whoever opens one closes it (`close()`, or `with`);
    closing twice is harmless, and receiving from a closed input raises ClosedError."""

    lossless: bool = False  # True: the input waits for the engine, so full queues wait, not drop
    _closed: bool = False

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """What people call it: the port's name (now), the ports' names, or the file's."""

    @property
    @abc.abstractmethod
    def dropped(self) -> int:
        """Events lost before the engine saw them (a port's queue overflowing)."""

    @abc.abstractmethod
    def sources(self) -> dict[str, str]:
        """Each source (the name an input was opened by) with the port's name now."""

    @abc.abstractmethod
    def _receive(self, timeout: float) -> MidiEvent | None: ...

    @abc.abstractmethod
    def _close(self) -> None: ...

    @property
    def closed(self) -> bool:
        return self._closed

    def receive(self, timeout: float) -> MidiEvent | None:
        """The next event, or None when none came within `timeout` seconds (or it was one no
        trigger looks at). Raises EndOfInput when a replay is over."""
        if self._closed:
            raise ClosedError(f"MIDI input {self.name!r} already closed")
        return self._receive(timeout)

    def close(self) -> None:
        """Stop reading and release the ports; idempotent."""
        if not self._closed:
            self._closed = True
            self._close()


@dataclass(frozen=True)
class InputSpec:
    """One input to open: an existing port (`name` exact or a unique substring) or, `virtual`,
    a port we create. `name` is also the input's source; `reconnect` retries a vanished port."""

    name: str
    virtual: bool = False
    reconnect: bool = True


def _now_ms() -> float:
    return time.monotonic() * 1000.0


def _rtmidi_api(midi: mido.Backend) -> int:
    """The rtmidi API constant of a mido rtmidi backend (`.../UNIX_JACK`), else rtmidi's default."""
    api: int = getattr(rtmidi, f"API_{midi.api}") if midi.api else rtmidi.API_UNSPECIFIED
    return api


class _Arrivals:
    """The bounded queue between port reader threads and the engine. Every message is stamped
    and queued under one lock, so however many ports share it, events come out in the order of
    their timestamps (timed triggers measure between them)."""

    def __init__(self) -> None:
        self.dropped = 0
        self._queue: queue.Queue[MidiEvent] = queue.Queue(maxsize=INPUT_QUEUE_CAPACITY)
        self._lock = threading.Lock()

    def accept(self, data: list[int], device: str, source: str) -> None:
        if not data or data[0] >= 0xF0:
            return  # system messages: no trigger looks at them
        with self._lock:
            event = from_bytes(
                data[0],
                data[1] if len(data) > 1 else 0,
                data[2] if len(data) > 2 else 0,
                _now_ms(),
                wall_ms(),
                device,
                source,
            )
            if event is None:
                return
            try:
                self._queue.put_nowait(event)
                return
            except queue.Full:
                self.dropped += 1
                dropped = self.dropped
        if dropped == 1 or dropped % 100 == 0:
            _log.warning(
                "%s: input queue full (%d waiting), dropped %d event(s) so far",
                device,
                self._queue.maxsize,
                dropped,
            )

    def get(self, timeout: float) -> MidiEvent | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None


class _PortReader(MidiInput):
    """A port's reader thread, feeding a queue it may share with other ports."""

    name = ""  # the port's name, once found (a port that comes back may have a new one)

    def __init__(
        self, midi: mido.Backend, client_name: str | None, source: str, arrivals: _Arrivals | None
    ) -> None:
        self.source = source
        self._arrivals = arrivals or _Arrivals()
        self._stop = threading.Event()
        try:
            with library_chatter_held():
                self._rt = rtmidi.MidiIn(
                    _rtmidi_api(midi), name=client_name, queue_size_limit=RTMIDI_QUEUE_LIMIT
                )
            self._rt.ignore_types(sysex=True, timing=True, active_sense=True)
        except Exception as exc:  # rtmidi raises its own SystemError subclasses
            raise PortError(f"cannot open the MIDI system: {exc}{system_hint(str(exc))}") from exc
        self._thread: threading.Thread | None = None

    @property
    def dropped(self) -> int:
        return self._arrivals.dropped

    def sources(self) -> dict[str, str]:
        return {self.source: self.name}

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._read, name="conductor-midi-in", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        last_message = time.monotonic()
        while not self._stop.is_set():
            message = self._rt.get_message() if self._rt.is_port_open() else None
            now = time.monotonic()
            if message is None:
                self._idle(now)
                idle_s = now - last_message
                time.sleep(POLL_ACTIVE_S if idle_s < 1.0 else POLL_IDLE_S)
                continue
            last_message = now
            self._arrivals.accept(message[0], self.name, self.source)
        self._rt.close_port()
        self._rt.delete()

    def _idle(self, now: float) -> None:
        """Called by the reader thread when no message waits; ports check their source here."""

    def _receive(self, timeout: float) -> MidiEvent | None:
        return self._arrivals.get(timeout)

    def stop(self) -> None:
        """Tell the reader thread to close the port; `close` waits for it."""
        self._stop.set()

    def _close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)


class VirtualInput(_PortReader):
    """A new input port other programs connect to."""

    def __init__(self, midi: mido.Backend, name: str, arrivals: _Arrivals | None = None) -> None:
        super().__init__(midi, CLIENT_NAME, name, arrivals)
        self.name = name
        try:
            with library_chatter_held():
                self._rt.open_virtual_port(name)
        except Exception as exc:
            self._rt.delete()
            raise PortError(f"cannot create virtual MIDI input {name!r}: {exc}") from exc
        self._start()


class PortInput(_PortReader):
    """An existing input port, found by exact name or unique substring; with `reconnect`, a lost
    port is logged and re-opened with backoff when a port of that name comes back."""

    def __init__(
        self,
        midi: mido.Backend,
        wanted: str,
        reconnect: bool,
        arrivals: _Arrivals | None = None,
    ) -> None:
        super().__init__(midi, CLIENT_NAME, wanted, arrivals)
        self._wanted = wanted
        self._reconnect = reconnect
        try:
            self.name = choose(wanted, input_names(midi), "input")
            self._open()
        except PortError:
            self._rt.delete()
            raise
        self._last_check = time.monotonic()
        self._retry = Backoff(PORT_RETRY_FIRST_S, PORT_RETRY_MAX_S)
        self._lost_at = 0.0
        self._start()

    def _ports(self) -> list[str]:
        try:
            return list(self._rt.get_ports())
        except Exception:
            return []

    def _open(self) -> None:
        ports = self._ports()
        if self.name not in ports:
            raise PortError(f"no MIDI input port {self.name!r}")
        try:
            with library_chatter_held():
                self._rt.open_port(ports.index(self.name))
        except Exception as exc:
            raise PortError(f"cannot open MIDI input {self.name!r}: {exc}") from exc

    def _idle(self, now: float) -> None:
        if not self._reconnect:
            return
        if self._rt.is_port_open():
            if now - self._last_check >= RECONNECT_POLL_S:
                self._last_check = now
                if self.name not in self._ports():
                    _log.warning("MIDI input %r disappeared; retrying with backoff", self.name)
                    self._rt.close_port()
                    self._lost_at = now
                    self._retry.succeeded()  # a fresh loss starts the backoff from the beginning
        elif self._retry.ready():
            try:
                # Re-resolve: a returning device may come back under a new client name or number.
                self.name = choose(self._wanted, self._ports(), "input")
                self._open()
            except PortError:
                self._retry.failed()
                return
            _log.warning(
                "MIDI input %r is back; reconnected after %.1f s (%d attempt(s))",
                self.name,
                now - self._lost_at,
                self._retry.failures + 1,
            )
            self._retry.succeeded()
            self._last_check = now


class MergedInput(MidiInput):
    """Several ports read as one stream through one queue, in the order events arrived."""

    def __init__(self, readers: Sequence[_PortReader], arrivals: _Arrivals) -> None:
        self._readers = list(readers)
        self._arrivals = arrivals

    @property
    def name(self) -> str:
        return ", ".join(reader.name for reader in self._readers)

    @property
    def dropped(self) -> int:
        return self._arrivals.dropped

    def sources(self) -> dict[str, str]:
        return {reader.source: reader.name for reader in self._readers}

    def _receive(self, timeout: float) -> MidiEvent | None:
        return self._arrivals.get(timeout)

    def _close(self) -> None:
        for reader in self._readers:
            reader.stop()  # all at once, then wait for each
        for reader in self._readers:
            reader.close()


def open_input(
    source: Path | Sequence[InputSpec], *, midi: mido.Backend | None = None, speed: float = 1.0
) -> MidiInput:
    """Open what the engine reads: a Standard MIDI File (a Path) replayed at `speed` (0: as fast
    as possible), or every port in `source` as one stream, through `midi` (rtmidi's default
    API when None). The caller owns the input and closes it."""
    if isinstance(source, Path):
        return ReplayInput(source, speed)
    return _open_ports(midi if midi is not None else backend(None), source)


def _open_ports(midi: mido.Backend, specs: Sequence[InputSpec]) -> MidiInput:
    """Open every input as one stream; when one fails, those already open are closed again."""
    if not specs:
        raise UsageError("no MIDI input to open")
    names = [spec.name for spec in specs]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise UsageError(f"MIDI input {name!r} is named twice")
    arrivals = _Arrivals()
    readers: list[_PortReader] = []
    try:
        for spec in specs:
            reader: _PortReader = (
                VirtualInput(midi, spec.name, arrivals)
                if spec.virtual
                else PortInput(midi, spec.name, spec.reconnect, arrivals)
            )
            readers.append(reader)
            twin = next(
                (
                    other
                    for other in readers[:-1]
                    if isinstance(other, PortInput)
                    and isinstance(reader, PortInput)
                    and other.name == reader.name
                ),
                None,
            )
            if twin is not None:
                raise PortError(
                    f"MIDI inputs {twin.source!r} and {reader.source!r} are the same port "
                    f"{reader.name!r}: name each port once"
                )
    except BaseException:
        for reader in readers:
            reader.close()
        raise
    return readers[0] if len(readers) == 1 else MergedInput(readers, arrivals)


class ReplayInput(MidiInput):
    """A Standard MIDI File played as input at its own tempo (`speed` 0: as fast as possible).

    The next event is computed only when the engine asks for it, so a replay never runs ahead of
    the plugins and holds nothing but the parsed file (see `smf`)."""

    lossless = True
    name = ""

    def __init__(self, path: Path, speed: float) -> None:
        if speed < 0:
            raise UsageError(f"--speed must be 0 (as fast as possible) or positive, got {speed}")
        self.song = read_song(path)
        self.name = f"replay:{path.name}"
        self._speed = speed
        self._timeline = self.song.timeline()
        self._next: tuple[float, int] | None = None
        self._started: float | None = None

    @property
    def dropped(self) -> int:
        return 0  # a file waits for the engine

    def _receive(self, timeout: float) -> MidiEvent | None:
        if self._next is None:
            self._next = next(self._timeline, None)
            if self._next is None:
                raise EndOfInput
        seconds, packed = self._next
        if self._speed > 0:
            now = time.monotonic()
            if self._started is None:
                self._started = now
            wait = self._started + seconds / self._speed - now
            if wait > timeout:
                time.sleep(timeout)
                return None
            if wait > 0:
                time.sleep(wait)
        self._next = None
        # None for a message no trigger looks at: the engine simply asks again.
        return from_bytes(
            packed & 0xFF,
            packed >> 8 & 0xFF,
            packed >> 16,
            _now_ms(),
            wall_ms(),
            self.name,
            self.name,
        )

    def sources(self) -> dict[str, str]:
        return {self.name: self.name}

    def _close(self) -> None:
        """Nothing is held but the parsed file."""
