"""One MIDI event as the engine sees it, with two clocks: monotonic ms for timed triggers and
wall-clock ms for the plugin's request context."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EventKind(StrEnum):
    NOTE_ON = "note_on"
    NOTE_OFF = "note_off"
    CC = "control_change"
    PITCH_BEND = "pitchwheel"
    AFTERTOUCH = "aftertouch"
    PROGRAM_CHANGE = "program_change"


@dataclass(slots=True)
class MidiEvent:
    """`device` is the port's name as the MIDI system reports it now (what a plugin's context
    shows); `source` is the name the input was opened by (`--port`, `[[devices]] name`,
    `--virtual`), which stays the same when a port comes back under another name: a trigger's
    `device` filter is resolved to it. A program change carries its program number in `value`."""

    kind: EventKind
    channel: int
    time_ms: float
    wall_ms: int = 0
    device: str = ""
    note: int | None = None
    velocity: int | None = None
    cc: int | None = None
    value: int | None = None
    source: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "type": self.kind.value,
            "channel": self.channel,
            "note": self.note,
            "velocity": self.velocity,
            "cc": self.cc,
            "value": self.value,
            "device": self.device,
        }

    def describe(self) -> str:
        if self.kind in (EventKind.NOTE_ON, EventKind.NOTE_OFF):
            return f"{self.kind.value} ch{self.channel} note {self.note} vel {self.velocity}"
        if self.kind is EventKind.CC:
            return f"cc ch{self.channel} #{self.cc} = {self.value}"
        if self.kind is EventKind.PROGRAM_CHANGE:
            return f"program_change ch{self.channel} program {self.value}"
        return f"{self.kind.value} ch{self.channel} {self.value}"


def from_bytes(
    status: int,
    data1: int,
    data2: int,
    time_ms: float,
    wall_ms: int = 0,
    device: str = "",
    source: str = "",
) -> MidiEvent | None:
    """Translate one channel message; None for messages no trigger looks at (clock, sysex, …).
    A note_on with velocity 0 is a note_off, as MIDI's running status uses it."""
    kind, channel = status & 0xF0, status & 0x0F
    # Spelled out per kind: this runs for every message a port or a replay delivers.
    if kind == 0x90 and data2 > 0:
        return MidiEvent(
            EventKind.NOTE_ON, channel, time_ms, wall_ms, device, data1, data2, source=source
        )
    if kind in (0x80, 0x90):
        return MidiEvent(
            EventKind.NOTE_OFF, channel, time_ms, wall_ms, device, data1, data2, source=source
        )
    if kind == 0xB0:
        return MidiEvent(
            EventKind.CC, channel, time_ms, wall_ms, device, cc=data1, value=data2, source=source
        )
    if kind == 0xE0:
        pitch = (data1 | data2 << 7) - 8192
        return MidiEvent(
            EventKind.PITCH_BEND, channel, time_ms, wall_ms, device, value=pitch, source=source
        )
    if kind == 0xD0:
        return MidiEvent(
            EventKind.AFTERTOUCH, channel, time_ms, wall_ms, device, value=data1, source=source
        )
    if kind == 0xA0:
        return MidiEvent(
            EventKind.AFTERTOUCH,
            channel,
            time_ms,
            wall_ms,
            device,
            note=data1,
            value=data2,
            source=source,
        )
    if kind == 0xC0:
        return MidiEvent(
            EventKind.PROGRAM_CHANGE, channel, time_ms, wall_ms, device, value=data1, source=source
        )
    return None
