"""Key names as the reference's configs write them (`space`, `Return`, `cmd`…), parsed into key
combinations, and the one table that says what each key is on X11/Wayland and on macOS.

Names are case-insensitive. `cmd` is the platform's command key: ⌘ on macOS, Super on Linux
unless a `KeyMap` says Ctrl or Alt (what a user moving macOS shortcuts to Linux usually wants).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from conductor.errors import DesktopError, DesktopFailure


@dataclass(frozen=True)
class Key:
    """One key: the name users see, its X keysym (xdotool, wtype) and its macOS form (a virtual
    key code, a character for `keystroke`, or None where a Mac keyboard has no such key)."""

    name: str
    keysym: str
    mac: int | str | None


class Modifier(Enum):
    CMD = "cmd"
    CTRL = "ctrl"
    ALT = "alt"
    SHIFT = "shift"
    SUPER = "super"


# name → (keysym, macOS virtual key code); the aliases are the reference's.
_NAMED: dict[tuple[str, ...], tuple[str, int | None]] = {
    ("space",): ("space", 49),
    ("return", "enter"): ("Return", 36),
    ("tab",): ("Tab", 48),
    ("escape", "esc"): ("Escape", 53),
    ("backspace",): ("BackSpace", 51),
    ("delete", "del"): ("Delete", 117),
    ("up", "uparrow"): ("Up", 126),
    ("down", "downarrow"): ("Down", 125),
    ("left", "leftarrow"): ("Left", 123),
    ("right", "rightarrow"): ("Right", 124),
    ("home",): ("Home", 115),
    ("end",): ("End", 119),
    ("pageup", "pgup"): ("Prior", 116),
    ("pagedown", "pgdn"): ("Next", 121),
    ("volumeup", "volup"): ("XF86AudioRaiseVolume", 72),
    ("volumedown", "voldown"): ("XF86AudioLowerVolume", 73),
    ("mute",): ("XF86AudioMute", 74),
    ("playpause", "play"): ("XF86AudioPlay", None),
    ("stop",): ("XF86AudioStop", None),
    ("nexttrack", "next"): ("XF86AudioNext", None),
    ("previoustrack", "previous", "prev"): ("XF86AudioPrev", None),
    ("insert", "ins"): ("Insert", 114),  # the Help key sits where Insert is on Mac keyboards
    ("printscreen", "prtsc"): ("Print", None),
    ("scrolllock", "scrlk"): ("Scroll_Lock", None),
    ("pause",): ("Pause", None),
    ("capslock", "caps"): ("Caps_Lock", 57),
    ("numlock", "numlk"): ("Num_Lock", None),
}
# macOS virtual key codes of F1-F20.
_F_KEY_CODES: tuple[int, ...] = (122, 120, 99, 118, 96, 97, 98, 100, 101, 109, 103, 111)
_F_KEY_CODES += (105, 107, 113, 106, 64, 79, 80, 90)
_MODIFIERS: dict[str, Modifier | None] = {
    "cmd": Modifier.CMD,
    "command": Modifier.CMD,
    "meta": Modifier.CMD,
    "ctrl": Modifier.CTRL,
    "control": Modifier.CTRL,
    "alt": Modifier.ALT,
    "option": Modifier.ALT,
    "shift": Modifier.SHIFT,
    "super": Modifier.SUPER,
    "win": Modifier.SUPER,
    "fn": None,  # a hardware key no program can press; the reference accepts and ignores it
}
# X keysym names of the printable ASCII characters that are not letters or digits.
_PUNCTUATION_NAMES = (  # noqa: SIM905 (a list literal would take 33 lines)
    "space exclam quotedbl numbersign dollar percent ampersand apostrophe parenleft parenright "
    "asterisk plus comma minus period slash colon semicolon less equal greater question at "
    "bracketleft backslash bracketright asciicircum underscore grave braceleft bar braceright "
    "asciitilde"
).split()
_PUNCTUATION = dict(zip(" !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", _PUNCTUATION_NAMES, strict=True))

MAX_KEYS = 64  # pressed in one go; longer input is typing, for type_text
KEYS: dict[str, Key] = {}
for _aliases, (_keysym, _code) in _NAMED.items():
    for _alias in _aliases:
        KEYS[_alias] = Key(_aliases[0], _keysym, _code)
for _number, _code in enumerate(_F_KEY_CODES, start=1):
    KEYS[f"f{_number}"] = Key(f"f{_number}", f"F{_number}", _code)

KNOWN_NAMES = (
    "space, Return/Enter, Tab, Escape/Esc, Backspace, Delete/Del, Up/Down/Left/Right (or "
    "UpArrow…), Home, End, PageUp/PgUp, PageDown/PgDn, F1-F20, VolumeUp, VolumeDown, Mute, "
    "PlayPause, Stop, Next/NextTrack, Previous/Prev, Insert, PrintScreen, ScrollLock, Pause, "
    "CapsLock, NumLock, any single character; modifiers cmd/command/meta, ctrl/control, "
    "alt/option, shift, super/win, fn (ignored)"
)


def _character_key(char: str) -> Key:
    """A key that types one character: letters and digits are their own keysyms, other ASCII has
    its X name, anything else its Unicode keysym (xdotool and wtype map it to a spare key)."""
    if char in string.ascii_letters or char in string.digits:
        keysym = char
    elif char in _PUNCTUATION:
        keysym = _PUNCTUATION[char]
    else:
        keysym = f"U{ord(char):04X}"
    return Key(char, keysym, char)


def _lookup(name: str) -> Key | Modifier | None:
    """The key or modifier a name means (case-insensitive); None for `fn` and unknown names,
    which `_is_known` tells apart."""
    lowered = name.strip().lower()
    if lowered in _MODIFIERS:
        return _MODIFIERS[lowered]
    if lowered in KEYS:
        return KEYS[lowered]
    if len(lowered) == 1:
        # The reference lowercases every name before matching, so "A" is the key a.
        return _character_key(lowered)
    return None


def _is_known(name: str) -> bool:
    return _lookup(name) is not None or name.strip().lower() == "fn"


@dataclass(frozen=True)
class KeyCombo:
    """Modifiers held down while the keys are pressed one after another."""

    modifiers: tuple[Modifier, ...]
    keys: tuple[Key, ...]

    def __str__(self) -> str:
        return "+".join([*(m.value for m in self.modifiers), *(k.name for k in self.keys)])


def _split(combo: str) -> list[str]:
    """`ctrl+shift+m` → names; `+` alone and a trailing `++` mean the plus key."""
    if combo.strip() == "+":
        return ["+"]
    if combo.endswith("++"):
        return [*combo[:-2].split("+"), "+"]
    return combo.split("+")


def _build(names: Sequence[str]) -> tuple[KeyCombo, tuple[str, ...]]:
    modifiers: list[Modifier] = []
    keys: list[Key] = []
    unknown: list[str] = []
    for name in names:
        found = _lookup(name)
        if isinstance(found, Modifier):
            if found not in modifiers:
                modifiers.append(found)
        elif isinstance(found, Key):
            keys.append(found)
        elif not _is_known(name):
            unknown.append(name)
    return KeyCombo(tuple(modifiers), tuple(keys)), tuple(unknown)


def parse_combo(combo: str) -> KeyCombo:
    """A combination such as `ctrl+shift+m`; an unknown name is INVALID, listing the known."""
    names = _split(combo)
    if len(names) > MAX_KEYS:
        raise DesktopError(DesktopFailure.INVALID, f"a combination has at most {MAX_KEYS} keys")
    parsed, unknown = _build(names)
    if unknown:
        raise DesktopError(DesktopFailure.INVALID, unknown_keys_message(unknown))
    if not parsed.keys and not parsed.modifiers:
        raise DesktopError(DesktopFailure.INVALID, f"no key in {combo!r}")
    return parsed


def parse_keystroke(keys: str, modifiers: Sequence[str]) -> tuple[KeyCombo, tuple[str, ...]]:
    """The reference's Keystroke {keys, modifiers}: `keys` may itself be a `+` combination.
    Unknown names are returned rather than raised: the reference ignores them, so the config
    check decides whether they are warnings or errors."""
    return _build([*_split(keys), *modifiers])


def unknown_keys_message(unknown: Sequence[str]) -> str:
    """The one line naming unknown keys and the known ones (a config check prints it too)."""
    names = ", ".join(repr(name) for name in unknown)
    return f"unknown key {names} (known: {KNOWN_NAMES})"


CMD_TARGETS = {"super": Modifier.SUPER, "ctrl": Modifier.CTRL, "alt": Modifier.ALT}


@dataclass(frozen=True)
class KeyMap:
    """What `cmd` presses off macOS: Super by default; Ctrl makes macOS shortcuts (cmd+c) do
    the same on Linux."""

    cmd: Modifier = Modifier.SUPER

    @classmethod
    def from_setting(cls, value: str) -> KeyMap:
        target = CMD_TARGETS.get(value.strip().lower())
        if target is None:
            raise DesktopError(
                DesktopFailure.INVALID,
                f"cmd_key must be one of {', '.join(CMD_TARGETS)}, not {value!r}",
            )
        return cls(target)

    def resolve(self, modifier: Modifier) -> Modifier:
        return self.cmd if modifier is Modifier.CMD else modifier


DEFAULT_KEYMAP = KeyMap()
