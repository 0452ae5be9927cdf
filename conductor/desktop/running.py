"""Is an application running, and is it the one in front? For the reference's `AppRunning` and
`AppFrontmost` conditions.

Running: a process whose name contains `app_name`, ignoring case (the reference's `pgrep -i`).
Frontmost: the active window's application is `app_name`, ignoring case: on X11 its WM_CLASS
(instance or class) or its process's name; on macOS the frontmost process's name. Under Wayland
no client may ask which window is active, so the answer is `Unknown`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from conductor._files import read_bytes
from conductor.desktop._backends import (
    Backend,
    Runner,
    ToolFailed,
    attempt,
    current_platform,
    on_wayland,
)
from conductor.errors import FileError

_PROC = Path("/proc")


@dataclass(frozen=True)
class Unknown:
    """The answer cannot be known here; `reason` says why (for one warning)."""

    reason: str


def _process_names(pid: int) -> set[str]:
    """A Linux process's names, lower-cased: its comm (15 characters at most) and the file
    name of its argv[0]; empty when it is gone or unreadable."""
    names: set[str] = set()
    for file in ("comm", "cmdline"):
        try:
            data = read_bytes(_PROC / str(pid) / file, f"process {file}", 64 * 1024)
        except FileError:
            continue
        first = data.split(b"\0", 1)[0].strip().decode("utf-8", "replace")
        if first:
            names.add(os.path.basename(first).lower())
    return names


def _running_names(timeout: float) -> list[set[str]]:
    if current_platform() == "linux" and _PROC.is_dir():
        own = os.getpid()
        return [
            _process_names(int(entry.name))
            for entry in _PROC.iterdir()
            if entry.name.isdigit() and int(entry.name) != own
        ]

    def ps(run: Runner) -> list[set[str]]:
        text = run.run(["ps", "-axco", "comm="]).stdout.decode("utf-8", "replace")
        return [{line.strip().lower()} for line in text.splitlines() if line.strip()]

    return attempt("app_running", [Backend("ps", ps, platform="darwin")], timeout)


def app_running(app_name: str, *, timeout: float) -> bool:
    wanted = app_name.strip().lower()
    if not wanted:
        return False
    return any(wanted in name for names in _running_names(timeout) for name in names)


_WINDOW_ID = re.compile(r"window id # (0x[0-9a-fA-F]+)")


def _x11_focus(run: Runner) -> str | None:
    """The active window (EWMH), or without a window manager the input focus; None for none."""
    active = run.run(["xprop", "-root", "_NET_ACTIVE_WINDOW"]).stdout.decode()
    match = _WINDOW_ID.search(active)
    if match and int(match.group(1), 16) != 0:
        return match.group(1)
    # No window manager: ask for the input focus as it is (-f; without it xdotool fails when
    # the focus is PointerRoot). Toolkits focus their top-level window, which has WM_CLASS.
    try:
        focus = run.run(["xdotool", "getwindowfocus", "-f"]).stdout.decode().strip()
    except ToolFailed as failed:
        raise ToolFailed(
            f"no active window reported, and xdotool could not say: {failed}"
        ) from None
    return focus if focus.isdigit() and int(focus) > 1 else None  # 0 is None, 1 PointerRoot


def _x11_names(run: Runner, window: str) -> set[str]:
    text = run.run(["xprop", "-id", window, "WM_CLASS", "_NET_WM_PID"]).stdout.decode()
    names = {value.lower() for value in re.findall(r'"([^"]*)"', text.split("\n", 1)[0])}
    pid = re.search(r"_NET_WM_PID\(CARDINAL\) = (\d+)", text)
    if pid:
        names |= _process_names(int(pid.group(1)))
    return names


def app_frontmost(app_name: str, *, timeout: float) -> bool | Unknown:
    wanted = app_name.strip().lower()
    if current_platform() == "darwin":
        script = (
            'tell application "System Events" to get name of first application process '
            "whose frontmost is true"
        )

        def osascript(run: Runner) -> bool:
            front = run.run(["osascript", "-e", script]).stdout.decode().strip()
            return front.lower() == wanted

        return attempt(
            f"app_frontmost {app_name}",
            [Backend("osascript", osascript, platform="darwin")],
            timeout,
        )
    if on_wayland():
        return Unknown("the frontmost application cannot be known under Wayland")
    if not os.environ.get("DISPLAY"):
        return Unknown("no graphical session here (DISPLAY and WAYLAND_DISPLAY are unset)")

    def xprop(run: Runner) -> bool:
        window = _x11_focus(run)
        return window is not None and wanted in _x11_names(run, window)

    return attempt(f"app_frontmost {app_name}", [Backend("xprop", xprop)], timeout)
