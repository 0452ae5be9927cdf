"""Actions a mapping can run (SPEC §7). Plain data; the dispatcher gives them effect.

Besides plugin calls, mode changes, sequences, delays and MIDI output, the reference's native
actions: keystrokes, text, clicks, volume, launching applications, shell commands, repetition and
conditions. Native actions come from the user's own config, so they run with the user's rights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conductor._text import visible
from conductor.desktop import DEFAULT_KEYMAP, KeyCombo, KeyMap, MouseButton
from conductor.engine.conditions import Condition
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
    message_type: str  # mido's name
    channel: int = 0
    fields: tuple[tuple[str, int], ...] = ()  # mido's keyword arguments
    virtual: bool = False


@dataclass(frozen=True)
class Keystroke:
    combo: KeyCombo


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Launch:
    app: str


@dataclass(frozen=True)
class Shell:
    command: str


@dataclass(frozen=True)
class MouseClick:
    button: MouseButton
    x: int | None = None
    y: int | None = None


@dataclass(frozen=True)
class VolumeControl:
    operation: str  # one of VOLUME_OPERATIONS
    value: int  # the level for Set, the step for Up and Down; unused otherwise


@dataclass(frozen=True)
class Repeat:
    action: Action
    count: int
    delay_ms: int = 0  # between repetitions, not after the last


@dataclass(frozen=True)
class Conditional:
    condition: Condition
    then_action: Action
    else_action: Action | None = None


Action = (
    WasmPlugin
    | ModeChange
    | Sequence
    | Delay
    | SendMidi
    | Keystroke
    | Text
    | Launch
    | Shell
    | MouseClick
    | VolumeControl
    | Repeat
    | Conditional
)
ACTION_KINDS = (
    "WasmPlugin",
    "ModeChange",
    "Sequence",
    "Delay",
    "SendMidi",
    "Keystroke",
    "Text",
    "Launch",
    "Shell",
    "MouseClick",
    "VolumeControl",
    "Repeat",
    "Conditional",
)
# Actions the engine performs on the desktop or the system itself, on its action workers.
NATIVE = (Keystroke, Text, Launch, Shell, MouseClick, VolumeControl)
# Actions that act with the user's rights beyond the desktop: `check` lists them.
USER_RIGHTS = (Shell, Launch)
VOLUME_OPERATIONS = ("Up", "Down", "Mute", "Unmute", "Set")
VOLUME_STEP = 10  # percentage points of Up and Down without a value, as the reference
VOLUME_SET_DEFAULT = 50  # what the reference sets when Set has no value
MAX_ACTIONS_PER_EVENT = 10_000  # what one event may run, repetitions multiplied out


@dataclass(frozen=True)
class NativeSettings:
    """What `[advanced_settings]` says about native actions."""

    keymap: KeyMap = DEFAULT_KEYMAP  # what `cmd` presses off macOS
    shell_timeout_ms: int = 60_000  # a Shell command still running then is killed


def children(action: Action) -> tuple[Action, ...]:
    """The actions directly inside `action`."""
    if isinstance(action, Sequence):
        return action.actions
    if isinstance(action, Repeat):
        return (action.action,)
    if isinstance(action, Conditional):
        return (action.then_action,) + ((action.else_action,) if action.else_action else ())
    return ()


def flatten(action: Action) -> list[Action]:
    """Every action that `action` may run: itself unless it only holds others, and everything
    inside it (sequences, repetitions and both branches of conditionals)."""
    inner = children(action)
    if not inner:
        return [action]
    own = [] if isinstance(action, (Sequence, Repeat)) else [action]
    return own + [leaf for child in inner for leaf in flatten(child)]


def plugin_actions(action: Action) -> list[WasmPlugin]:
    """Every WasmPlugin action inside `action`."""
    return [inner for inner in flatten(action) if isinstance(inner, WasmPlugin)]


def weight(action: Action) -> int:
    """How many actions one run of `action` starts at most, repetitions multiplied out."""
    if isinstance(action, Sequence):
        return sum(weight(child) for child in action.actions)
    if isinstance(action, Repeat):
        return action.count * weight(action.action)
    if isinstance(action, Conditional):
        return 1 + max(weight(child) for child in children(action))
    return 1


def label(action: Action) -> str:
    """A short name for an action in results and warnings: its kind and what it acts on. It
    always holds a space, so it can never be taken for a plugin's name."""
    detail: str
    if isinstance(action, Keystroke):
        detail = str(action.combo) or "(nothing)"
    elif isinstance(action, Text):
        detail = _quoted(action.text)
    elif isinstance(action, Launch):
        detail = _quoted(action.app)
    elif isinstance(action, Shell):
        detail = _quoted(action.command)
    elif isinstance(action, MouseClick):
        where = f" at {action.x},{action.y}" if action.x is not None else ""
        detail = action.button.name.lower() + where
    elif isinstance(action, VolumeControl):
        detail = action.operation + (
            f" {action.value}" if action.operation in ("Set", "Up", "Down") else ""
        )
    elif isinstance(action, WasmPlugin):
        detail = _quoted(action.path)
    elif isinstance(action, ModeChange):
        detail = _quoted(action.mode)
    else:
        detail = "…"
    return f"{type(action).__name__} {detail}"


def _quoted(text: str, limit: int = 40) -> str:
    shown = visible(text)
    return repr(shown if len(shown) <= limit else shown[: limit - 1] + "…")


@dataclass(frozen=True)
class MidiField:
    """One field of a SendMidi message: how a config may spell it (the reference's name first,
    then mido's), mido's keyword for it, its range and its default."""

    names: tuple[str, ...]
    keyword: str
    low: int = 0
    high: int = 127
    default: int = 0


_NOTE = MidiField(("note",), "note", default=60)  # the reference's defaults
_VELOCITY = MidiField(("velocity",), "velocity", default=100)
_PRESSURE = MidiField(("pressure", "value"), "value")
# SendMidi message types by mido's name, with their fields.
SEND_MIDI_FIELDS: dict[str, tuple[MidiField, ...]] = {
    "note_on": (_NOTE, _VELOCITY),
    "note_off": (_NOTE, _VELOCITY),
    "control_change": (
        MidiField(("controller", "control"), "control"),
        MidiField(("value",), "value"),
    ),
    "program_change": (MidiField(("program",), "program"),),
    "pitchwheel": (MidiField(("pitch",), "pitch", -8192, 8191),),
    "aftertouch": (_PRESSURE,),
    "polytouch": (_NOTE, _PRESSURE),
}
# Every spelling of a message type, lower-cased without `_` and `-` (as the reference compares
# them): the reference's NoteOn, NoteOff, CC, ControlChange, ProgramChange, PitchBend and
# Aftertouch, and mido's names.
SEND_MIDI_TYPES: dict[str, str] = {
    "noteon": "note_on",
    "noteoff": "note_off",
    "cc": "control_change",
    "controlchange": "control_change",
    "programchange": "program_change",
    "pitchbend": "pitchwheel",
    "pitchwheel": "pitchwheel",
    "aftertouch": "aftertouch",
    "polytouch": "polytouch",
}
SEND_MIDI_TYPE_NAMES = (
    "NoteOn, NoteOff, CC, ProgramChange, PitchBend, Aftertouch (or mido's note_on, note_off, "
    "control_change, program_change, pitchwheel, aftertouch, polytouch)"
)


def send_midi_type(spelling: str) -> str | None:
    """mido's name for a message type in any accepted spelling; None when unknown."""
    return SEND_MIDI_TYPES.get(spelling.lower().replace("_", "").replace("-", ""))
