"""Media player control: playerctl (any MPRIS player); the Music app through osascript on macOS."""

from __future__ import annotations

from conductor.desktop._backends import Backend, attempt
from conductor.errors import DesktopError, DesktopFailure

MEDIA_ACTIONS = ("play-pause", "next", "previous", "stop")
_APPLE = {
    "play-pause": "playpause",
    "next": "next track",
    "previous": "previous track",
    "stop": "stop",
}


def media(action: str, *, timeout: float) -> None:
    """One of MEDIA_ACTIONS on the current player."""
    if action not in MEDIA_ACTIONS:
        raise DesktopError(
            DesktopFailure.INVALID, f"media action must be one of {', '.join(MEDIA_ACTIONS)}"
        )
    script = f'tell application "Music" to {_APPLE[action]}'
    attempt(
        "media",
        [
            Backend.command(["playerctl", action]),
            Backend.command(["osascript", "-e", script], platform="darwin"),
        ],
        timeout,
    )
