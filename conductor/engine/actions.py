"""Actions a mapping can run (SPEC §7). Plain data; the dispatcher gives them effect."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conductor.plugins.limits import Limits


@dataclass(frozen=True)
class WasmPlugin:
    path: str
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    limits: Limits | None = None


@dataclass(frozen=True)
class ModeChange:
    mode: str


@dataclass(frozen=True)
class Sequence:
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class Delay:
    ms: int


@dataclass(frozen=True)
class SendMidi:
    port: str
    message_type: str
    channel: int = 0
    fields: tuple[tuple[str, int], ...] = ()
    virtual: bool = False


Action = WasmPlugin | ModeChange | Sequence | Delay | SendMidi
ACTION_KINDS = ("WasmPlugin", "ModeChange", "Sequence", "Delay", "SendMidi")

# SendMidi message types and their fields with valid ranges (mido's names).
SEND_MIDI_FIELDS: dict[str, dict[str, tuple[int, int]]] = {
    "note_on": {"note": (0, 127), "velocity": (0, 127)},
    "note_off": {"note": (0, 127), "velocity": (0, 127)},
    "control_change": {"control": (0, 127), "value": (0, 127)},
    "program_change": {"program": (0, 127)},
    "pitchwheel": {"pitch": (-8192, 8191)},
    "aftertouch": {"value": (0, 127)},
    "polytouch": {"note": (0, 127), "value": (0, 127)},
}


def flatten(action: Action) -> list[Action]:
    """`action` and every action nested in it (sequences included)."""
    if isinstance(action, Sequence):
        return [inner for child in action.actions for inner in flatten(child)]
    return [action]


def plugin_actions(action: Action) -> list[WasmPlugin]:
    """Every WasmPlugin action inside `action`."""
    return [inner for inner in flatten(action) if isinstance(inner, WasmPlugin)]
