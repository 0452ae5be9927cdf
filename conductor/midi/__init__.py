"""MIDI in and out: events, inputs (ports, virtual ports, a replayed file) behind one interface
(`open_input`), and output ports.

Names are imported on first use: `import conductor.midi.events` loads no MIDI library."""

from typing import TYPE_CHECKING

from conductor._lazy import exports as _exports

if TYPE_CHECKING:
    from conductor.midi.events import EventKind, MidiEvent, from_bytes
    from conductor.midi.inputs import EndOfInput, InputSpec, MidiInput, ReplayInput, open_input
    from conductor.midi.outputs import OutputPorts
    from conductor.midi.ports import backend, input_names, output_names
    from conductor.midi.smf import Song, read_song

__all__ = [
    "EndOfInput",
    "EventKind",
    "InputSpec",
    "MidiEvent",
    "MidiInput",
    "OutputPorts",
    "ReplayInput",
    "Song",
    "backend",
    "from_bytes",
    "input_names",
    "open_input",
    "output_names",
    "read_song",
]

__getattr__ = _exports(
    __name__,
    {
        "events": ("EventKind", "MidiEvent", "from_bytes"),
        "inputs": ("EndOfInput", "InputSpec", "MidiInput", "ReplayInput", "open_input"),
        "outputs": ("OutputPorts",),
        "ports": ("backend", "input_names", "output_names"),
        "smf": ("Song", "read_song"),
    },
)
