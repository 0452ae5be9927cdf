"""`system`: a fixed set of desktop operations for plugins with SystemControl (SPEC §8).

Each op has fixed arguments per backend tool; the first installed tool wins, and a missing one
is UNSUPPORTED naming the tools tried. Plugins never pass a command line here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conductor.plugins.host._process import Completed, run_bounded
from conductor.plugins.host._state import HostCallError, InstanceState
from conductor.plugins.host.codes import Code

MAX_TEXT = 1024 * 1024
MEDIA_ACTIONS = ("play-pause", "next", "previous", "stop")


@dataclass(frozen=True)
class Backend:
    tool: str
    argv: Callable[[dict[str, Any]], list[str]]
    stdin: Callable[[dict[str, Any]], bytes | None] = lambda _: None
    parse: Callable[[Completed], dict[str, Any]] = lambda _: {}
    capture: bool = True
    needs: str | None = None  # an environment variable the tool needs (DISPLAY, WAYLAND_DISPLAY)
    platform: str = "linux"


def _text(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str):
        raise HostCallError(Code.INVALID, f"{key} must be a string")
    if len(value.encode("utf-8")) > MAX_TEXT:
        raise HostCallError(Code.TOO_BIG, f"{key} is over {MAX_TEXT} bytes")
    return value


def _applescript_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _percent(args: dict[str, Any]) -> int:
    value = args.get("percent")
    if type(value) is not int:
        raise HostCallError(Code.INVALID, "percent must be an integer 0-100")
    return max(0, min(100, value))  # pactl accepts over 100 %: clamp


def _mute(args: dict[str, Any]) -> str:
    value = args.get("mute", "toggle")
    if value is True:
        return "1"
    if value is False:
        return "0"
    if value == "toggle":
        return "toggle"
    raise HostCallError(Code.INVALID, 'mute must be true, false or "toggle"')


def _clip_text(done: Completed) -> dict[str, Any]:
    return {"text": done.stdout.decode("utf-8", "replace")}


def _wpctl_volume(done: Completed) -> dict[str, Any]:
    match = re.search(r"Volume:\s*([0-9.]+)", done.stdout.decode())
    if not match:
        raise HostCallError(Code.IO, "wpctl printed no volume")
    return {"percent": round(float(match.group(1)) * 100), "muted": "MUTED" in done.stdout.decode()}


def _amixer_volume(done: Completed) -> dict[str, Any]:
    text = done.stdout.decode()
    match = re.search(r"\[(\d+)%\]", text)
    if not match:
        raise HostCallError(Code.IO, "amixer printed no volume")
    return {"percent": int(match.group(1)), "muted": "[off]" in text}


def _osascript_volume(done: Completed) -> dict[str, Any]:
    volume, _, muted = done.stdout.decode().strip().partition(",")
    return {"percent": int(volume or 0), "muted": muted.strip() == "true"}


OPS: dict[str, list[Backend]] = {
    "notify": [
        Backend(
            "notify-send",
            lambda a: [
                "notify-send",
                "--app-name=Conductor",
                "--",
                _text(a, "title"),
                a.get("body", "") if isinstance(a.get("body", ""), str) else "",
            ],
        ),
        Backend(
            "osascript",
            lambda a: [
                "osascript",
                "-e",
                f"display notification {_applescript_string(a.get('body', ''))} "
                f"with title {_applescript_string(_text(a, 'title'))}",
            ],
            platform="darwin",
        ),
    ],
    "clipboard.get": [
        Backend(
            "wl-paste",
            lambda a: ["wl-paste", "--no-newline"],
            parse=_clip_text,
            needs="WAYLAND_DISPLAY",
        ),
        Backend(
            "xclip",
            lambda a: ["xclip", "-selection", "clipboard", "-o"],
            parse=_clip_text,
            needs="DISPLAY",
        ),
        Backend(
            "xsel", lambda a: ["xsel", "--clipboard", "--output"], parse=_clip_text, needs="DISPLAY"
        ),
        Backend("pbpaste", lambda a: ["pbpaste"], parse=_clip_text, platform="darwin"),
    ],
    "clipboard.set": [
        # The X tools fork a process that holds the selection and keeps their stdout: no capture.
        Backend(
            "wl-copy",
            lambda a: ["wl-copy"],
            stdin=lambda a: _text(a, "text").encode(),
            capture=False,
            needs="WAYLAND_DISPLAY",
        ),
        Backend(
            "xclip",
            lambda a: ["xclip", "-selection", "clipboard", "-i"],
            stdin=lambda a: _text(a, "text").encode(),
            capture=False,
            needs="DISPLAY",
        ),
        Backend(
            "xsel",
            lambda a: ["xsel", "--clipboard", "--input"],
            stdin=lambda a: _text(a, "text").encode(),
            capture=False,
            needs="DISPLAY",
        ),
        Backend(
            "pbcopy",
            lambda a: ["pbcopy"],
            stdin=lambda a: _text(a, "text").encode(),
            capture=False,
            platform="darwin",
        ),
    ],
    "volume.get": [
        Backend(
            "wpctl", lambda a: ["wpctl", "get-volume", "@DEFAULT_AUDIO_SINK@"], parse=_wpctl_volume
        ),
        Backend(
            "pactl", lambda a: ["pactl", "get-sink-volume", "@DEFAULT_SINK@"]
        ),  # mute read separately
        Backend("amixer", lambda a: ["amixer", "get", "Master"], parse=_amixer_volume),
        Backend(
            "osascript",
            lambda a: [
                "osascript",
                "-e",
                "set s to get volume settings",
                "-e",
                'return (output volume of s as text) & "," & (output muted of s as text)',
            ],
            parse=_osascript_volume,
            platform="darwin",
        ),
    ],
    "volume.set": [
        Backend(
            "wpctl",
            lambda a: ["wpctl", "set-volume", "@DEFAULT_AUDIO_SINK@", f"{_percent(a) / 100:.2f}"],
        ),
        Backend(
            "pactl", lambda a: ["pactl", "set-sink-volume", "@DEFAULT_SINK@", f"{_percent(a)}%"]
        ),
        Backend("amixer", lambda a: ["amixer", "set", "Master", f"{_percent(a)}%"]),
        Backend(
            "osascript",
            lambda a: ["osascript", "-e", f"set volume output volume {_percent(a)}"],
            platform="darwin",
        ),
    ],
    "volume.mute": [
        Backend("wpctl", lambda a: ["wpctl", "set-mute", "@DEFAULT_AUDIO_SINK@", _mute(a)]),
        Backend("pactl", lambda a: ["pactl", "set-sink-mute", "@DEFAULT_SINK@", _mute(a)]),
        Backend(
            "amixer",
            lambda a: [
                "amixer",
                "set",
                "Master",
                {"1": "mute", "0": "unmute"}.get(_mute(a), "toggle"),
            ],
        ),
        Backend(
            "osascript",
            lambda a: [
                "osascript",
                "-e",
                "set volume output muted "
                + {"1": "true", "0": "false"}.get(
                    _mute(a), "(not (output muted of (get volume settings)))"
                ),
            ],
            platform="darwin",
        ),
    ],
    "screenshot": [
        Backend("grim", lambda a: ["grim", a["_path"]], needs="WAYLAND_DISPLAY"),
        Backend("scrot", lambda a: ["scrot", "--overwrite", a["_path"]], needs="DISPLAY"),
        Backend("import", lambda a: ["import", "-window", "root", a["_path"]], needs="DISPLAY"),
        Backend("screencapture", lambda a: ["screencapture", "-x", a["_path"]], platform="darwin"),
    ],
    "lock_screen": [
        Backend("xdg-screensaver", lambda a: ["xdg-screensaver", "lock"]),
        Backend("loginctl", lambda a: ["loginctl", "lock-session"]),
        Backend("pmset", lambda a: ["pmset", "displaysleepnow"], platform="darwin"),
    ],
    "media": [
        Backend("playerctl", lambda a: ["playerctl", _media(a)]),
        Backend(
            "osascript",
            lambda a: ["osascript", "-e", f'tell application "Music" to {_apple_media(a)}'],
            platform="darwin",
        ),
    ],
}


def _media(args: dict[str, Any]) -> str:
    action = args.get("action")
    if action not in MEDIA_ACTIONS:
        raise HostCallError(Code.INVALID, f"media action must be one of {', '.join(MEDIA_ACTIONS)}")
    return str(action)


def _apple_media(args: dict[str, Any]) -> str:
    return {
        "play-pause": "playpause",
        "next": "next track",
        "previous": "previous track",
        "stop": "stop",
    }[_media(args)]


def _available(backend: Backend) -> bool:
    platform = "darwin" if sys.platform == "darwin" else "linux"
    if backend.platform != platform or shutil.which(backend.tool) is None:
        return False
    return backend.needs is None or bool(os.environ.get(backend.needs))


def _run(
    state: InstanceState, op: str, args: dict[str, Any], timeout: int | None
) -> tuple[Backend, Completed]:
    candidates = OPS[op]
    backend = next((b for b in candidates if _available(b)), None)
    if backend is None:
        tried = ", ".join(dict.fromkeys(b.tool for b in candidates))
        raise HostCallError(
            Code.UNSUPPORTED, f"{op}: no backend tool available here (tried {tried})"
        )
    argv = backend.argv(args)
    stdin = backend.stdin(args)
    try:
        done = run_bounded(argv, state.budget(timeout), stdin=stdin, capture=backend.capture)
    except OSError as exc:
        raise HostCallError(
            Code.IO, f"{op}: cannot run {backend.tool}: {exc.strerror or exc}"
        ) from None
    if done.timed_out:
        raise HostCallError(
            Code.TIMEOUT, f"{op}: {backend.tool} ran past the call's budget and was killed"
        )
    if done.status != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [
            f"exit status {done.status}"
        ]
        raise HostCallError(Code.IO, f"{op}: {backend.tool} failed: {detail[0][:200]}")
    return backend, done


def _pactl_state(state: InstanceState, timeout: int | None) -> dict[str, Any]:
    volume = run_bounded(["pactl", "get-sink-volume", "@DEFAULT_SINK@"], state.budget(timeout))
    mute = run_bounded(["pactl", "get-sink-mute", "@DEFAULT_SINK@"], state.budget(timeout))
    match = re.search(r"(\d+)%", volume.stdout.decode())
    if volume.status != 0 or mute.status != 0 or not match:
        raise HostCallError(Code.IO, "volume.get: pactl could not read the default sink")
    return {"percent": int(match.group(1)), "muted": "yes" in mute.stdout.decode().lower()}


def _screenshot_path(state: InstanceState, args: dict[str, Any]) -> tuple[Path, str]:
    directory = state.plugin.data_dir
    if directory is None:
        raise HostCallError(Code.UNSUPPORTED, "screenshot: the plugin has no data directory")
    requested = args.get("filename")
    if requested is not None and not isinstance(requested, str):
        raise HostCallError(Code.INVALID, "filename must be a string")
    name = Path(requested).name if requested else time.strftime("screenshot-%Y%m%d-%H%M%S.png")
    if not name or name.startswith("."):
        raise HostCallError(Code.INVALID, "filename must be a plain file name")
    if not name.lower().endswith(".png"):
        name += ".png"
    directory.mkdir(parents=True, exist_ok=True)
    return directory / name, name


def _open_url(args: dict[str, Any]) -> dict[str, Any]:
    url = _text(args, "url")
    if urlsplit(url).scheme.lower() not in ("http", "https") or not urlsplit(url).hostname:
        raise HostCallError(Code.INVALID, "open_url takes http and https URLs only")
    tool = "open" if sys.platform == "darwin" else "xdg-open"
    if shutil.which(tool) is None:
        raise HostCallError(
            Code.UNSUPPORTED, f"open_url: no backend tool available here (tried {tool})"
        )
    # The opener waits for the browser; launch it detached and do not wait.
    subprocess.Popen(
        [tool, url],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    return {"opened": url}


def system(state: InstanceState, pointer: int, length: int) -> int:
    request = state.read_json(pointer, length)
    op = request.get("op")
    timeout = request.get("timeout_ms")
    if timeout is not None and (type(timeout) is not int or timeout <= 0):
        raise HostCallError(Code.INVALID, "timeout_ms must be a positive integer")
    if op == "open_url":
        return state.answer_json({"ok": True, **_open_url(request)})
    if op not in OPS:
        known = ", ".join([*OPS, "open_url"])
        raise HostCallError(Code.INVALID, f"unknown op {op!r} (known: {known})")
    extra: dict[str, Any] = {}
    if op == "screenshot":
        path, name = _screenshot_path(state, request)
        request = {**request, "_path": str(path)}
        extra = {"file": name}
    backend, done = _run(state, op, request, timeout)
    result = backend.parse(done)
    if op == "volume.get" and backend.tool == "pactl":
        result = _pactl_state(state, timeout)
    if op == "screenshot" and not Path(request["_path"]).is_file():
        raise HostCallError(Code.IO, f"screenshot: {backend.tool} wrote no file")
    return state.answer_json({"ok": True, **result, **extra})
