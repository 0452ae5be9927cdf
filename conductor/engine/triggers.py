"""Triggers (SPEC §7) and the stateful matcher that decides which one an event fires.

Pure logic: time comes from the events' own timestamps (and `due()`'s `now`), so long presses,
double taps and chords are tested without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from conductor.midi.events import EventKind, MidiEvent


@dataclass(frozen=True)
class AdvancedSettings:
    chord_timeout_ms: int = 50
    double_tap_timeout_ms: int = 300
    hold_threshold_ms: int = 2000
    shutdown_timeout_ms: int = 2000  # how long a stopping `run` lets queued calls finish


# Every MIDI trigger may name a `channel` (0-15) and a `device`: as written, the name or a unique
# part of the name of one of the inputs (`devices.resolve` turns it into the input's source once
# the ports are open; until then it matches nothing).


@dataclass(frozen=True)
class Note:
    note: int
    velocity_min: int = 1
    channel: int | None = None
    device: str | None = None


VELOCITY_LEVELS = ("soft", "medium", "hard")
ENCODER_DIRECTIONS = ("clockwise", "counterclockwise")
PITCH_BEND_CENTRE = 8192  # the reference's trigger units are 0-16383; mido's pitch is -8192-8191


@dataclass(frozen=True)
class VelocityRange:
    note: int
    level: str | None  # None: every velocity (the reference classifies but does not filter)
    soft_max: int = 40
    medium_max: int = 80
    channel: int | None = None
    device: str | None = None

    def level_of(self, velocity: int) -> str:
        if velocity <= self.soft_max:
            return "soft"
        return "medium" if velocity <= self.medium_max else "hard"


@dataclass(frozen=True)
class LongPress:
    note: int
    duration_ms: int | None = None
    channel: int | None = None
    device: str | None = None


@dataclass(frozen=True)
class DoubleTap:
    note: int
    timeout_ms: int | None = None
    channel: int | None = None
    device: str | None = None


@dataclass(frozen=True)
class NoteChord:
    notes: tuple[int, ...]
    timeout_ms: int | None = None
    channel: int | None = None
    device: str | None = None


@dataclass(frozen=True)
class CC:
    cc: int
    value_min: int = 0
    channel: int | None = None
    device: str | None = None


@dataclass(frozen=True)
class EncoderTurn:
    cc: int
    direction: str | None  # None: a turn either way
    channel: int | None = None
    device: str | None = None


@dataclass(frozen=True)
class PitchBend:
    """A bend within [value_min, value_max] in the reference's units (0-16383, centre 8192)."""

    value_min: int = 0
    value_max: int = 16383
    channel: int | None = None
    device: str | None = None


@dataclass(frozen=True)
class Aftertouch:
    pressure_min: int = 0
    channel: int | None = None
    device: str | None = None


@dataclass(frozen=True)
class ProgramChange:
    program: int
    channel: int | None = None
    device: str | None = None


# The reference implementation's gamepad triggers, with its fields and ranges (ids from 128 up,
# clear of MIDI numbers). They load and are validated so its configs run here, but Conductor
# reads no gamepad: these never fire, and `run` says how many mappings that leaves inactive.


@dataclass(frozen=True)
class GamepadButton:
    button: int  # 128-255
    velocity_min: int | None = None


@dataclass(frozen=True)
class GamepadButtonChord:
    buttons: tuple[int, ...]  # 128-255 each
    timeout_ms: int | None = None


@dataclass(frozen=True)
class GamepadAnalogStick:
    axis: int  # 128-131: left X, left Y, right X, right Y
    direction: str | None = None  # clockwise (right/up) | counterclockwise; None: either


@dataclass(frozen=True)
class GamepadTrigger:
    trigger: int  # 132 left, 133 right
    threshold: int | None = None


MidiTrigger = (
    Note
    | VelocityRange
    | LongPress
    | DoubleTap
    | NoteChord
    | CC
    | EncoderTurn
    | PitchBend
    | Aftertouch
    | ProgramChange
)
GamepadInput = GamepadButton | GamepadButtonChord | GamepadAnalogStick | GamepadTrigger
GAMEPAD_TRIGGERS = (GamepadButton, GamepadButtonChord, GamepadAnalogStick, GamepadTrigger)
Trigger = MidiTrigger | GamepadInput
TRIGGER_KINDS = (
    "Note",
    "VelocityRange",
    "LongPress",
    "DoubleTap",
    "NoteChord",
    "CC",
    "EncoderTurn",
    "PitchBend",
    "Aftertouch",
    "ProgramChange",
    *(kind.__name__ for kind in GAMEPAD_TRIGGERS),
)


def encoder_direction(value: int) -> str | None:
    """Relative encoders send 1-63 for clockwise steps and 65-127 (two's complement) for
    counter-clockwise ones; 0 and 64 are no movement."""
    if 1 <= value <= 63:
        return "clockwise"
    if 65 <= value <= 127:
        return "counterclockwise"
    return None


@dataclass
class _Press:
    at_ms: float
    velocity: int = 0
    device: str = ""
    long_press_fired: set[int] = field(default_factory=set)


_Key = tuple[str, int, int]  # (source, channel, note): the same note on two devices is two notes


class TriggerMatcher:
    """Remembers held notes, recent taps and chord notes across events, per input."""

    def __init__(self, settings: AdvancedSettings) -> None:
        self.settings = settings
        self._held: dict[_Key, _Press] = {}
        self._last_tap: dict[_Key, float] = {}
        self._double_tap_used: set[_Key] = set()

    @staticmethod
    def _from_here(trigger: MidiTrigger, channel: int, source: str) -> bool:
        """The trigger's channel and device filters (a device resolved to the input's source)."""
        return (trigger.channel is None or trigger.channel == channel) and (
            trigger.device is None or trigger.device == source
        )

    def matches(self, trigger: Trigger, event: MidiEvent) -> bool:
        """Does `event` fire `trigger`? Call before `observe(event)`."""
        if isinstance(trigger, GAMEPAD_TRIGGERS) or not self._from_here(
            trigger, event.channel, event.source
        ):
            return False
        kind = event.kind
        if kind is EventKind.NOTE_ON:
            if isinstance(trigger, Note):
                return event.note == trigger.note and (event.velocity or 0) >= trigger.velocity_min
            if isinstance(trigger, VelocityRange):
                return event.note == trigger.note and trigger.level in (
                    None,
                    trigger.level_of(event.velocity or 0),
                )
            if isinstance(trigger, DoubleTap):
                key = (event.source, event.channel, event.note or 0)
                previous = self._last_tap.get(key)
                timeout = trigger.timeout_ms or self.settings.double_tap_timeout_ms
                return (
                    event.note == trigger.note
                    and previous is not None
                    and key not in self._double_tap_used
                    and event.time_ms - previous <= timeout
                )
            if isinstance(trigger, NoteChord):
                return self._chord_complete(trigger, event)
            return False
        if kind is EventKind.NOTE_OFF:
            if isinstance(trigger, LongPress) and event.note == trigger.note:
                press = self._held.get((event.source, event.channel, trigger.note))
                duration = trigger.duration_ms or self.settings.hold_threshold_ms
                return (
                    press is not None
                    and id(trigger) not in press.long_press_fired
                    and event.time_ms - press.at_ms >= duration
                )
            return False
        if kind is EventKind.CC:
            if isinstance(trigger, CC):
                return event.cc == trigger.cc and (event.value or 0) >= trigger.value_min
            if isinstance(trigger, EncoderTurn):
                turned = encoder_direction(event.value or 0)
                return (
                    event.cc == trigger.cc
                    and turned is not None
                    and trigger.direction in (None, turned)
                )
            return False
        if kind is EventKind.PROGRAM_CHANGE:
            return isinstance(trigger, ProgramChange) and event.value == trigger.program
        if kind is EventKind.PITCH_BEND and isinstance(trigger, PitchBend):
            return trigger.value_min <= (event.value or 0) + PITCH_BEND_CENTRE <= trigger.value_max
        if kind is EventKind.AFTERTOUCH and isinstance(trigger, Aftertouch):
            return (event.value or 0) >= trigger.pressure_min
        return False

    def _chord_complete(self, trigger: NoteChord, event: MidiEvent) -> bool:
        if event.note not in trigger.notes:
            return False
        timeout = trigger.timeout_ms or self.settings.chord_timeout_ms
        for note in trigger.notes:
            if note == event.note:
                continue
            press = self._held.get((event.source, event.channel, note))
            if press is None or event.time_ms - press.at_ms > timeout:
                return False
        return True

    def observe(self, event: MidiEvent, fired: Trigger | None = None) -> None:
        """Update held notes and taps after matching; `fired` is the trigger that matched, if any."""
        if event.note is None:
            return
        key = (event.source, event.channel, event.note)
        if event.kind is EventKind.NOTE_ON:
            self._held[key] = _Press(event.time_ms, event.velocity or 0, event.device)
            if isinstance(fired, DoubleTap):
                self._double_tap_used.add(key)
                self._last_tap.pop(key, None)
            else:
                self._double_tap_used.discard(key)
                self._last_tap[key] = event.time_ms
        elif event.kind is EventKind.NOTE_OFF:
            self._held.pop(key, None)

    def due_long_presses(
        self, triggers: list[LongPress], now_ms: float, wall_ms: int = 0
    ) -> list[tuple[LongPress, MidiEvent]]:
        """Long presses whose threshold passed while still held, each fired once per press,
        with the note-on event (stamped `now_ms`) that stands for the press."""
        due = []
        for trigger in triggers:
            duration = trigger.duration_ms or self.settings.hold_threshold_ms
            for (source, channel, note), press in self._held.items():
                if (
                    note != trigger.note
                    or not self._from_here(trigger, channel, source)
                    or id(trigger) in press.long_press_fired
                    or now_ms - press.at_ms < duration
                ):
                    continue
                press.long_press_fired.add(id(trigger))
                event = MidiEvent(
                    EventKind.NOTE_ON,
                    channel,
                    now_ms,
                    wall_ms,
                    press.device,
                    note,
                    press.velocity,
                    source=source,
                )
                due.append((trigger, event))
        return due

    def mark_long_press_fired(self, trigger: LongPress, event: MidiEvent) -> None:
        press = self._held.get((event.source, event.channel, event.note or 0))
        if press is not None:
            press.long_press_fired.add(id(trigger))
