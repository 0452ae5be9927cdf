"""Desktop notifications: notify-send (any freedesktop notification daemon); osascript on macOS."""

from __future__ import annotations

from conductor.desktop._backends import Backend, applescript_string, attempt


def notify(title: str, body: str = "", *, timeout: float) -> None:
    script = (
        f"display notification {applescript_string(body)} with title {applescript_string(title)}"
    )
    attempt(
        "notify",
        [
            Backend.command(["notify-send", "--app-name=Conductor", "--", title, body]),
            Backend.command(["osascript", "-e", script], platform="darwin"),
        ],
        timeout,
    )
