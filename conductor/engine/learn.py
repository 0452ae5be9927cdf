"""MIDI learn: for each event, the trigger that matches it as one TOML line ready to paste, what
the control looks like so far (an encoder, a fader, a button), and, with a config, the mapping it
would fire in the current mode (chosen by the engine's own rule, `MappingSelector`).

A single control change cannot tell a relative encoder from a fader: both send CC messages. The
values a control has sent so far can. An encoder sends small steps around zero, coded 1-63 for
clockwise and 65-127 for counter-clockwise, and repeats them as it turns (1, 1, 1 or 127, 127);
a fader or absolute knob walks through 0-127 one value after another and never sends the same
value twice in a row; a button sends 0 on release and one value (usually 127) when pressed.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from conductor.engine import actions as act
from conductor.engine.config import Config, Mapping
from conductor.engine.selection import MappingSelector
from conductor.engine.triggers import PITCH_BEND_CENTRE, encoder_direction
from conductor.midi.events import EventKind, MidiEvent
from conductor.midi.inputs import EndOfInput, MidiInput

HISTORY = 16  # values remembered per control
ENCODER_STEPS = (range(1, 16), range(113, 128))  # small steps either way, two's complement
RECEIVE_TIMEOUT_S = 0.02


class Control(StrEnum):
    """What a CC control looks like from the values it sent."""

    UNKNOWN = "unknown"  # one message so far
    ENCODER = "encoder"  # relative: EncoderTurn
    FADER = "fader"  # absolute (fader or knob): CC
    BUTTON = "button"  # 0 and one other value: CC


def classify(values: list[int]) -> Control:
    """The control behind these values (oldest first); see the module docstring."""
    if len(values) < 2:
        return Control.UNKNOWN
    distinct = set(values)
    if len(distinct) == 2 and 0 in distinct:
        return Control.BUTTON
    small_steps = all(any(v in steps for steps in ENCODER_STEPS) for v in values)
    repeats = any(a == b for a, b in itertools.pairwise(values))
    both_ways = any(v < 64 for v in values) and any(v > 64 for v in values)
    if small_steps and (repeats or both_ways):
        return Control.ENCODER
    return Control.FADER


def _values_seen(values: list[int]) -> str:
    distinct = sorted(set(values))
    if len(distinct) == 1:
        return f"value {distinct[0]}"
    if len(distinct) <= 4:
        return "values " + ", ".join(map(str, distinct))
    return f"values {distinct[0]}-{distinct[-1]}"


def _control_note(control: Control, values: list[int]) -> str:
    last = "last " if len(values) == HISTORY else ""
    seen = f"{last}{len(values)} messages, {_values_seen(values)}"
    if control is Control.UNKNOWN:
        return f"first message, value {values[-1]}: move it again to tell an encoder from a fader"
    if control is Control.ENCODER:
        return f"relative encoder ({seen}): one EncoderTurn per direction"
    if control is Control.BUTTON:
        return f"button ({seen}): add value_min = 64 to fire on press only"
    return f"fader or knob ({seen}): add value_min = N to fire from N up"


def toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, except that TOML also escapes DEL."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value: int | str) -> str:
    return toml_string(value) if isinstance(value, str) else str(value)


@dataclass(frozen=True)
class Learned:
    """One event as learned: its trigger (`kind` and `fields`), a note on the control, and, with
    a config, the mapping it fires (`held`: a long press that fired while the note is held)."""

    event: MidiEvent
    kind: str
    fields: dict[str, int | str]
    note: str = ""
    control: Control | None = None
    mode: str | None = None
    mapping: Mapping | None = None
    held: bool = False

    @property
    def line(self) -> str:
        """`trigger = { Note = { note = 60 } }`, ready to paste into a mapping."""
        body = ", ".join(f"{key} = {_toml_value(value)}" for key, value in self.fields.items())
        return f"trigger = {{ {self.kind} = {{ {body} }} }}".replace("{  }", "{}")

    @property
    def fires(self) -> str | None:
        """With a config: what fires, in words; None without one."""
        if self.mode is None:
            return None
        if self.mapping is None:
            return f"no mapping fires in mode {self.mode}"
        described = f" {toml_string(self.mapping.description)}" if self.mapping.description else ""
        return f"fires {self.mapping.where}{described} in mode {self.mode}"

    def to_json(self) -> dict[str, Any]:
        return {
            "event": {**self.event.to_json(), "source": self.event.source},
            "trigger": {self.kind: dict(self.fields)},
            "line": self.line,
            "control": self.control.value if self.control else None,
            "note": self.note or None,
            "held": self.held,
            "mode": self.mode,
            "mapping": None
            if self.mapping is None
            else {"where": self.mapping.where, "description": self.mapping.description},
        }


@dataclass
class Learner:
    """Learns events in order. `config` (with its triggers' devices resolved against the open
    inputs) names the mappings; `several_devices` adds `device` to every trigger line."""

    config: Config | None = None
    several_devices: bool = False
    _history: dict[tuple[str, int, int], deque[int]] = field(default_factory=dict)
    _selector: MappingSelector | None = None
    _mode_index: int = 0

    def __post_init__(self) -> None:
        if self.config is not None:
            self._selector = MappingSelector(self.config)

    @property
    def mode(self) -> str | None:
        return None if self.config is None else self.config.modes[self._mode_index].name

    def learn(self, event: MidiEvent) -> Learned | None:
        """The trigger for `event`; None for a note-off (the end of a press learned already),
        unless it fires a mapping (a long press released)."""
        mode = self.mode
        mapping = self._select(event)
        if event.kind is EventKind.NOTE_OFF:
            if mapping is None:
                return None
            return self._learned(event, "LongPress", {"note": event.note or 0}, mode, mapping)
        kind, fields, note, control = self._trigger(event)
        return self._learned(event, kind, fields, mode, mapping, note, control)

    def held(self, now_ms: float, wall_ms: int = 0) -> list[Learned]:
        """Long presses of the config that fire now, the note still held."""
        if self._selector is None:
            return []
        fired = []
        for mapping, event in self._selector.due(self._mode_index, now_ms, wall_ms):
            mode = self.mode
            self._follow(mapping)
            fields: dict[str, int | str] = {"note": event.note or 0}
            fired.append(self._learned(event, "LongPress", fields, mode, mapping, held=True))
        return fired

    def _select(self, event: MidiEvent) -> Mapping | None:
        if self._selector is None:
            return None
        mapping = self._selector.select(event, self._mode_index)
        if mapping is not None:
            self._follow(mapping)
        return mapping

    def _follow(self, mapping: Mapping) -> None:
        """Mode changes take effect as in `run` (a delayed one at once: learn runs no actions)."""
        assert self.config is not None
        for action in act.flatten(mapping.action):
            if isinstance(action, act.ModeChange):
                index = self.config.mode_index(action.mode)
                if index is not None:
                    self._mode_index = index

    def _learned(
        self,
        event: MidiEvent,
        kind: str,
        fields: dict[str, int | str],
        mode: str | None,
        mapping: Mapping | None,
        note: str = "",
        control: Control | None = None,
        held: bool = False,
    ) -> Learned:
        if event.channel:
            fields["channel"] = event.channel
        if self.several_devices:
            fields["device"] = event.source
        return Learned(event, kind, fields, note, control, mode, mapping, held)

    def _trigger(self, event: MidiEvent) -> tuple[str, dict[str, int | str], str, Control | None]:
        value = event.value or 0
        if event.kind is EventKind.NOTE_ON:
            return "Note", {"note": event.note or 0}, f"velocity {event.velocity}", None
        if event.kind is EventKind.CC:
            return self._control_change(event)
        if event.kind is EventKind.PROGRAM_CHANGE:
            return "ProgramChange", {"program": value}, "", None
        if event.kind is EventKind.PITCH_BEND:
            centre = PITCH_BEND_CENTRE
            bend = value + centre  # the trigger's units, as the reference writes them
            if value > 0:
                return "PitchBend", {"value_min": centre + 1}, f"bend {bend} (up)", None
            if value < 0:
                return "PitchBend", {"value_max": centre - 1}, f"bend {bend} (down)", None
            return "PitchBend", {"value_min": centre, "value_max": centre}, "centre", None
        return "Aftertouch", {}, f"pressure {value}", None

    def _control_change(
        self, event: MidiEvent
    ) -> tuple[str, dict[str, int | str], str, Control | None]:
        cc, value = event.cc or 0, event.value or 0
        history = self._history.setdefault((event.source, event.channel, cc), deque(maxlen=HISTORY))
        history.append(value)
        values = list(history)
        control = classify(values)
        note = _control_note(control, values)
        direction = encoder_direction(value)
        if control is Control.ENCODER and direction is not None:
            return "EncoderTurn", {"cc": cc, "direction": direction}, note, control
        return "CC", {"cc": cc}, note, control


def listen(
    source: MidiInput,
    learner: Learner,
    count: int | None,
    emit: Callable[[Learned], None],
    clock: Callable[[], float],
) -> int:
    """Learn from `source` until `count` events were learned (None: until interrupted or the
    input ends), handing each to `emit`; returns how many were learned. `clock` is monotonic
    seconds, the events' own clock."""
    learned = 0
    while count is None or learned < count:
        try:
            event = source.receive(RECEIVE_TIMEOUT_S)
        except EndOfInput:
            break
        results = [] if event is None else [learner.learn(event)]
        results += learner.held(clock() * 1000.0)
        for result in results:
            if result is None:
                continue
            emit(result)
            learned += 1
            if count is not None and learned >= count:
                break
    return learned
