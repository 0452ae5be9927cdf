"""Output ports for SendMidi actions, by name or as virtual ports: `run` opens those its config
names when it starts (`open_ahead`); one that could not be opened then is tried on each send."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import mido

from conductor.errors import PortError
from conductor.midi.ports import CLIENT_NAME, choose, output_names


class OutputPorts:
    def __init__(self, midi: mido.Backend) -> None:
        self._midi = midi
        self._ports: dict[tuple[str, bool], mido.ports.BaseOutput] = {}
        self._lock = threading.Lock()

    def send(self, port: str, virtual: bool, message: mido.Message) -> None:
        with self._lock:
            self._opened(port, virtual).send(message)

    def open_ahead(self, targets: Iterable[tuple[str, bool]]) -> list[PortError]:
        """Open these (port, virtual) outputs now, before anything is sent: a port opened on
        the first send costs that event its latency, and under JACK the connection is only
        live a cycle later, so the first message would be lost. What cannot be opened yet is
        returned and tried again on its first send."""
        failed = []
        with self._lock:
            for port, virtual in targets:
                try:
                    self._opened(port, virtual)
                except PortError as exc:
                    failed.append(exc)
        return failed

    def _opened(self, port: str, virtual: bool) -> mido.ports.BaseOutput:
        key = (port, virtual)
        output = self._ports.get(key)
        if output is None:
            output = self._ports[key] = self._open(port, virtual)
        return output

    def _open(self, port: str, virtual: bool) -> mido.ports.BaseOutput:
        try:
            if virtual:
                return self._midi.open_output(port, virtual=True, client_name=CLIENT_NAME)
            # No client_name here: with it, rtmidi's JACK API leaves the new port unconnected.
            return self._midi.open_output(choose(port, output_names(self._midi), "output"))
        except PortError:
            raise
        except Exception as exc:
            raise PortError(f"cannot open MIDI output {port!r}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            for output in self._ports.values():
                output.close()
            self._ports.clear()
