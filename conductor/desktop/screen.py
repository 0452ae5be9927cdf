"""The screen: brightness (a backlight through brightnessctl, else the X outputs' gamma through
xrandr; `brightness` on macOS), screenshots, and locking."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from conductor._files import read_bytes
from conductor.desktop._backends import Backend, Runner, ToolFailed, attempt
from conductor.desktop._place import place_file
from conductor.desktop.audio import clamp_percent
from conductor.errors import DesktopError, DesktopFailure, FileError

MAX_SCREENSHOT = 256 * 1024 * 1024  # an 8K screen as an uncompressed PNG is ~130 MiB
_ACTIVE_OUTPUT = re.compile(r"^(\S+) connected (?:primary )?\d+x\d+\+", re.MULTILINE)


def _xrandr_outputs(run: Runner) -> dict[str, float | None]:
    """Active outputs of the X display and their software brightness (None when unreported)."""
    text = run.run(["xrandr", "--verbose"]).stdout.decode("utf-8", "replace")
    outputs: dict[str, float | None] = {}
    blocks = re.split(r"^(?=\S)", text, flags=re.MULTILINE)
    for block in blocks:
        match = _ACTIVE_OUTPUT.match(block)
        if match:
            level = re.search(r"^\s+Brightness:\s*(\d+(?:\.\d+)?)", block, re.MULTILINE)
            outputs[match.group(1)] = float(level.group(1)) if level else None
    if not outputs:
        raise ToolFailed("no active output on this X display")
    return outputs


def _brightnessctl_get(run: Runner) -> int:
    fields = run.run(["brightnessctl", "--class=backlight", "-m", "info"]).stdout.decode()
    parts = fields.strip().splitlines()[0].split(",") if fields.strip() else []
    if len(parts) < 4 or not parts[3].rstrip("%").isdigit():
        raise ToolFailed("printed no backlight level")
    return int(parts[3].rstrip("%"))


def _xrandr_get(run: Runner) -> int:
    levels = [level for level in _xrandr_outputs(run).values() if level is not None]
    if not levels:
        raise ToolFailed("reported no brightness for the active outputs")
    return clamp_percent(round(levels[0] * 100))


def _macos_get(run: Runner) -> int:
    text = run.run(["brightness", "-l"]).stdout.decode()
    match = re.search(r"brightness (\d+(?:\.\d+)?)", text)
    if not match:
        raise ToolFailed("printed no brightness")
    return clamp_percent(round(float(match.group(1)) * 100))


def brightness_get(*, timeout: float) -> int:
    """The screen's brightness in percent (the first active output's, where there are several)."""
    return attempt(
        "brightness.get",
        [
            Backend("brightnessctl", _brightnessctl_get),
            Backend("xrandr", _xrandr_get, needs="DISPLAY", not_under_wayland=True),
            Backend("brightness", _macos_get, platform="darwin"),
        ],
        timeout,
    )


def brightness_set(percent: int, *, timeout: float) -> None:
    """Set every screen's brightness to `percent`, clamped to 0-100."""
    value = clamp_percent(percent)

    def xrandr(run: Runner) -> None:
        argv = ["xrandr"]
        for output in _xrandr_outputs(run):
            argv += ["--output", output, "--brightness", f"{value / 100:.2f}"]
        run.run(argv)

    attempt(
        "brightness.set",
        [
            Backend.command(["brightnessctl", "--class=backlight", "-q", "set", f"{value}%"]),
            Backend("xrandr", xrandr, needs="DISPLAY", not_under_wayland=True),
            Backend.command(["brightness", f"{value / 100:.2f}"], platform="darwin"),
        ],
        timeout,
    )


def screenshot(directory: Path, name: str, *, timeout: float) -> None:
    """A PNG of the whole screen saved as `directory/name`.

    The tool writes into a private directory of ours; only the finished file is put in place,
    and never through a symlink (`directory` may be a plugin's data directory).
    """
    with tempfile.TemporaryDirectory(prefix="conductor-screenshot-") as private:
        path = Path(private) / "screen.png"
        attempt(
            "screenshot",
            [
                _writer(path, ["grim", str(path)], needs="WAYLAND_DISPLAY"),
                _writer(path, ["scrot", "--overwrite", str(path)], needs="DISPLAY"),
                _writer(path, ["import", "-window", "root", str(path)], needs="DISPLAY"),
                _writer(path, ["screencapture", "-x", str(path)], platform="darwin"),
            ],
            timeout,
        )
        try:
            data = read_bytes(path, "screenshot", MAX_SCREENSHOT)
        except FileError as exc:
            raise DesktopError(DesktopFailure.IO, f"screenshot: {exc.diagnostics()}") from None
    place_file(directory, name, data, "screenshot")


def _writer(path: Path, argv: list[str], **where: Any) -> Backend[None]:
    def act(run: Runner) -> None:
        run.run(argv)
        if not path.is_file():
            raise ToolFailed("wrote no file")

    return Backend(argv[0], act, **where)


def lock_screen(*, timeout: float) -> None:
    """Lock the session; every locker is tried until one succeeds."""
    attempt(
        "lock_screen",
        [
            Backend.command(["xdg-screensaver", "lock"]),
            Backend.command(["loginctl", "lock-session"]),
            Backend.command(["pmset", "displaysleepnow"], platform="darwin"),
        ],
        timeout,
    )
