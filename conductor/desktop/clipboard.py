"""The clipboard: wl-copy/wl-paste on Wayland, xclip or xsel on X11, pbcopy/pbpaste on macOS."""

from __future__ import annotations

from collections.abc import Callable

from conductor.desktop._backends import Backend, Runner, attempt


def _reads(argv: list[str]) -> Callable[[Runner], str]:
    return lambda run: run.run(argv).stdout.decode("utf-8", "replace")


def clipboard_get(*, timeout: float) -> str:
    return attempt(
        "clipboard.get",
        [
            Backend("wl-paste", _reads(["wl-paste", "--no-newline"]), needs="WAYLAND_DISPLAY"),
            Backend("xclip", _reads(["xclip", "-selection", "clipboard", "-o"]), needs="DISPLAY"),
            Backend("xsel", _reads(["xsel", "--clipboard", "--output"]), needs="DISPLAY"),
            Backend("pbpaste", _reads(["pbpaste"]), platform="darwin"),
        ],
        timeout,
    )


def clipboard_set(text: str, *, timeout: float) -> None:
    data = text.encode("utf-8")
    # The X tools fork a process that holds the selection and keeps their stdout: no capture.
    attempt(
        "clipboard.set",
        [
            Backend.command(["wl-copy"], stdin=data, capture=False, needs="WAYLAND_DISPLAY"),
            Backend.command(
                ["xclip", "-selection", "clipboard", "-i"],
                stdin=data,
                capture=False,
                needs="DISPLAY",
            ),
            Backend.command(
                ["xsel", "--clipboard", "--input"], stdin=data, capture=False, needs="DISPLAY"
            ),
            Backend.command(["pbcopy"], stdin=data, capture=False, platform="darwin"),
        ],
        timeout,
    )
