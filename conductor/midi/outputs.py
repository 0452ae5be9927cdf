"""Output ports for SendMidi actions: opened on first use, by name or as virtual ports."""

from __future__ import annotations

import threading

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
            key = (port, virtual)
            output = self._ports.get(key)
            if output is None:
                output = self._open(port, virtual)
                self._ports[key] = output
            output.send(message)

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
