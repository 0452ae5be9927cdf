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


@dataclass(slots=True)
class MidiEvent:
    kind: EventKind
    channel: int
    time_ms: float
    wall_ms: int = 0
    device: str = ""
    note: int | None = None
    velocity: int | None = None
    cc: int | None = None
    value: int | None = None

    def describe(self) -> str:
        if self.kind in (EventKind.NOTE_ON, EventKind.NOTE_OFF):
            return f"{self.kind.value} ch{self.channel} note {self.note} vel {self.velocity}"
        if self.kind is EventKind.CC:
            return f"cc ch{self.channel} #{self.cc} = {self.value}"
        return f"{self.kind.value} ch{self.channel} {self.value}"


def from_bytes(
    status: int, data1: int, data2: int, time_ms: float, wall_ms: int = 0, device: str = ""
) -> MidiEvent | None:
    """Translate one channel message; None for messages no trigger looks at (program change,
    clock, sysex, …). A note_on with velocity 0 is a note_off, as MIDI's running status uses it."""
    kind, channel = status & 0xF0, status & 0x0F
    if kind == 0x90 and data2 > 0:
        return MidiEvent(
            EventKind.NOTE_ON, channel, time_ms, wall_ms, device, note=data1, velocity=data2
        )
    if kind in (0x80, 0x90):
        return MidiEvent(
            EventKind.NOTE_OFF, channel, time_ms, wall_ms, device, note=data1, velocity=data2
        )
    if kind == 0xB0:
        return MidiEvent(EventKind.CC, channel, time_ms, wall_ms, device, cc=data1, value=data2)
    if kind == 0xE0:
        pitch = (data1 | data2 << 7) - 8192
        return MidiEvent(EventKind.PITCH_BEND, channel, time_ms, wall_ms, device, value=pitch)
    if kind == 0xD0:
        return MidiEvent(EventKind.AFTERTOUCH, channel, time_ms, wall_ms, device, value=data1)
    if kind == 0xA0:
        return MidiEvent(
            EventKind.AFTERTOUCH, channel, time_ms, wall_ms, device, note=data1, value=data2
        )
    return None
