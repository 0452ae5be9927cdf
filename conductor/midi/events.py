"""One MIDI event as the engine sees it, with two clocks: monotonic ms for timed triggers and
wall-clock ms for the plugin's request context."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import mido


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


def from_mido(
    message: mido.Message, time_ms: float, wall_ms: int = 0, device: str = ""
) -> MidiEvent | None:
    """Translate a mido message; None for messages no trigger looks at (clock, sysex, …)."""
    kind = message.type
    if kind == "note_on" and message.velocity > 0:
        return MidiEvent(
            EventKind.NOTE_ON,
            message.channel,
            time_ms,
            wall_ms,
            device,
            note=message.note,
            velocity=message.velocity,
        )
    if kind in ("note_off", "note_on"):
        return MidiEvent(
            EventKind.NOTE_OFF,
            message.channel,
            time_ms,
            wall_ms,
            device,
            note=message.note,
            velocity=message.velocity,
        )
    if kind == "control_change":
        return MidiEvent(
            EventKind.CC,
            message.channel,
            time_ms,
            wall_ms,
            device,
            cc=message.control,
            value=message.value,
        )
    if kind == "pitchwheel":
        return MidiEvent(
            EventKind.PITCH_BEND, message.channel, time_ms, wall_ms, device, value=message.pitch
        )
    if kind == "aftertouch":
        return MidiEvent(
            EventKind.AFTERTOUCH, message.channel, time_ms, wall_ms, device, value=message.value
        )
    if kind == "polytouch":
        return MidiEvent(
            EventKind.AFTERTOUCH,
            message.channel,
            time_ms,
            wall_ms,
            device,
            note=message.note,
            value=message.value,
        )
    return None
