"""Pressing keys, typing text and clicking, as the user would: xdotool on X11, wtype on Wayland,
System Events (osascript) and cliclick on macOS."""

from __future__ import annotations

from enum import Enum

from conductor.desktop._backends import Backend, Runner, applescript_string, attempt
from conductor.desktop.keys import DEFAULT_KEYMAP, KeyCombo, KeyMap, Modifier
from conductor.errors import DesktopError, DesktopFailure

_X11_MODIFIERS = {
    Modifier.CTRL: "Control_L",
    Modifier.SHIFT: "Shift_L",
    Modifier.ALT: "Alt_L",
    Modifier.SUPER: "Super_L",
}
_WTYPE_MODIFIERS = {
    Modifier.CTRL: "ctrl",
    Modifier.SHIFT: "shift",
    Modifier.ALT: "alt",
    Modifier.SUPER: "logo",
}
# On macOS cmd is always ⌘, whatever the key map says; a Mac has no separate Super.
_MAC_MODIFIERS = {
    Modifier.CMD: ("command", 55),
    Modifier.SUPER: ("command", 55),
    Modifier.CTRL: ("control", 59),
    Modifier.ALT: ("option", 58),
    Modifier.SHIFT: ("shift", 56),
}
TYPE_DELAY_MS = 12  # between typed keys; some applications drop keys sent faster


class MouseButton(Enum):
    LEFT = 1  # the values are X button numbers
    MIDDLE = 2
    RIGHT = 3

    @classmethod
    def parse(cls, name: str) -> MouseButton:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise DesktopError(
                DesktopFailure.INVALID, f"mouse button must be left, right or middle, not {name!r}"
            ) from None


def _linux_modifiers(combo: KeyCombo, keymap: KeyMap) -> list[Modifier]:
    return list(dict.fromkeys(keymap.resolve(modifier) for modifier in combo.modifiers))


def press_keys(combo: KeyCombo, *, timeout: float, keymap: KeyMap = DEFAULT_KEYMAP) -> None:
    """Hold the combination's modifiers and press its keys in order, then release."""
    if not combo.keys and not combo.modifiers:
        raise DesktopError(DesktopFailure.INVALID, "keys: nothing to press")
    modifiers = _linux_modifiers(combo, keymap)

    def xdotool(run: Runner) -> None:
        held = [_X11_MODIFIERS[m] for m in modifiers]
        strokes = ["+".join([*held, key.keysym]) for key in combo.keys] or ["+".join(held)]
        run.run(["xdotool", "key", "--delay", str(TYPE_DELAY_MS), *strokes])

    def wtype(run: Runner) -> None:
        if not combo.keys:
            run.run(["wtype", *(a for m in modifiers for a in ("-k", _X11_MODIFIERS[m]))])
            return
        down = [a for m in modifiers for a in ("-M", _WTYPE_MODIFIERS[m])]
        up = [a for m in reversed(modifiers) for a in ("-m", _WTYPE_MODIFIERS[m])]
        run.run(["wtype", *down, *(a for key in combo.keys for a in ("-k", key.keysym)), *up])

    def osascript(run: Runner) -> None:
        held = list(dict.fromkeys(_MAC_MODIFIERS[m][0] for m in combo.modifiers))
        using = f" using {{{', '.join(f'{name} down' for name in held)}}}" if held else ""
        lines = (
            [f"key code {_MAC_MODIFIERS[m][1]}" for m in combo.modifiers] if not combo.keys else []
        )
        for key in combo.keys:
            if key.mac is None:
                raise DesktopError(
                    DesktopFailure.UNSUPPORTED, f"keys: {key.name} has no key on macOS keyboards"
                )
            if isinstance(key.mac, int):
                lines.append(f"key code {key.mac}{using}")
            else:
                lines.append(f"keystroke {applescript_string(key.mac)}{using}")
        run.run(_system_events(lines))

    attempt(
        f"keys {combo}",
        [
            Backend("wtype", wtype, needs="WAYLAND_DISPLAY"),
            Backend("xdotool", xdotool, needs="DISPLAY", not_under_wayland=True),
            Backend("osascript", osascript, platform="darwin"),
        ],
        timeout,
    )


def type_text(text: str, *, timeout: float) -> None:
    """Type `text` into whatever has the keyboard focus, as if typed on a keyboard."""
    if not text:
        return
    data = text.encode("utf-8")
    attempt(
        "type",
        [
            Backend.command(["wtype", "-"], stdin=data, needs="WAYLAND_DISPLAY"),
            Backend.command(
                ["xdotool", "type", "--delay", str(TYPE_DELAY_MS), "--file", "-"],
                stdin=data,
                needs="DISPLAY",
                not_under_wayland=True,
            ),
            Backend.command(
                _system_events([f"keystroke {applescript_string(text)}"]), platform="darwin"
            ),
        ],
        timeout,
    )


def click(
    button: MouseButton, *, timeout: float, x: int | None = None, y: int | None = None
) -> None:
    """Click `button`, first moving the pointer to (x, y) on the screen when both are given."""
    if (x is None) != (y is None):
        raise DesktopError(DesktopFailure.INVALID, "click: give both x and y, or neither")

    def xdotool(run: Runner) -> None:
        move = ["mousemove", "--", str(x), str(y)] if x is not None else []  # x may be < 0
        run.run(["xdotool", *move, "click", str(button.value)])

    def cliclick(run: Runner) -> None:
        verb = {MouseButton.LEFT: "c", MouseButton.RIGHT: "rc"}.get(button)
        if verb is None:
            raise DesktopError(DesktopFailure.UNSUPPORTED, "click: cliclick has no middle button")
        run.run(["cliclick", f"{verb}:{x},{y}" if x is not None else f"{verb}:."])

    attempt(
        f"click {button.name.lower()}",
        [
            Backend("xdotool", xdotool, needs="DISPLAY", not_under_wayland=True),
            Backend("cliclick", cliclick, platform="darwin"),
        ],
        timeout,
    )


def _system_events(lines: list[str]) -> list[str]:
    script = ['tell application "System Events"', *lines, "end tell"]
    return ["osascript", *(a for line in script for a in ("-e", line))]
