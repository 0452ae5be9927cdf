"""`system`: a fixed set of desktop operations for plugins with SystemControl (SPEC §8).

This layer only reads the plugin's request, calls the desktop backend (`conductor.desktop`,
which picks and runs the tools) and maps its failures to error codes. Plugins never pass a
command line here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conductor import desktop
from conductor.desktop import DesktopError, DesktopFailure
from conductor.desktop.audio import Mute
from conductor.plugins.host._state import HostCallError, InstanceState
from conductor.plugins.host.codes import Code

MAX_TEXT = 1024 * 1024
_CODES = {
    DesktopFailure.UNSUPPORTED: Code.UNSUPPORTED,
    DesktopFailure.TIMEOUT: Code.TIMEOUT,
    DesktopFailure.IO: Code.IO,
    DesktopFailure.INVALID: Code.INVALID,
}
Request = dict[str, Any]
Answer = dict[str, Any]


def _text(request: Request, key: str, default: str | None = None) -> str:
    value = request.get(key, default)
    if not isinstance(value, str):
        raise HostCallError(Code.INVALID, f"{key} must be a string")
    if len(value.encode("utf-8")) > MAX_TEXT:
        raise HostCallError(Code.TOO_BIG, f"{key} is over {MAX_TEXT} bytes")
    return value


def _percent(request: Request) -> int:
    value = request.get("percent")
    if type(value) is not int:
        raise HostCallError(Code.INVALID, "percent must be an integer 0-100")
    return value  # the backend clamps to 0-100


def _mute(request: Request) -> Mute:
    value = request.get("mute", "toggle")
    if value is True or value is False or value == "toggle":
        return value  # type: ignore[no-any-return]
    raise HostCallError(Code.INVALID, 'mute must be true, false or "toggle"')


def _screenshot_name(request: Request) -> str:
    requested = request.get("filename")
    if requested is not None and not isinstance(requested, str):
        raise HostCallError(Code.INVALID, "filename must be a string")
    name = Path(requested).name if requested else time.strftime("screenshot-%Y%m%d-%H%M%S.png")
    if not name or name.startswith(".") or "\0" in name:
        raise HostCallError(Code.INVALID, "filename must be a plain file name")
    return name if name.lower().endswith(".png") else f"{name}.png"


def _notify(state: InstanceState, request: Request, budget: float) -> Answer:
    desktop.notify(_text(request, "title"), _text(request, "body", ""), timeout=budget)
    return {}


def _clipboard_get(state: InstanceState, request: Request, budget: float) -> Answer:
    return {"text": desktop.clipboard_get(timeout=budget)}


def _clipboard_set(state: InstanceState, request: Request, budget: float) -> Answer:
    desktop.clipboard_set(_text(request, "text"), timeout=budget)
    return {}


def _volume_get(state: InstanceState, request: Request, budget: float) -> Answer:
    volume = desktop.volume_get(timeout=budget)
    return {"percent": volume.percent, "muted": volume.muted}


def _volume_set(state: InstanceState, request: Request, budget: float) -> Answer:
    desktop.volume_set(_percent(request), timeout=budget)
    return {}


def _volume_mute(state: InstanceState, request: Request, budget: float) -> Answer:
    desktop.volume_mute(_mute(request), timeout=budget)
    return {}


def _screenshot(state: InstanceState, request: Request, budget: float) -> Answer:
    directory = state.plugin.data_dir
    if directory is None:
        raise HostCallError(Code.UNSUPPORTED, "screenshot: the plugin has no data directory")
    name = _screenshot_name(request)
    directory.mkdir(parents=True, exist_ok=True)
    desktop.screenshot(directory, name, timeout=budget)
    return {"file": name}


def _open_url(state: InstanceState, request: Request, budget: float) -> Answer:
    url = _text(request, "url")
    desktop.open_url(url, timeout=budget)
    return {"opened": url}


def _lock_screen(state: InstanceState, request: Request, budget: float) -> Answer:
    desktop.lock_screen(timeout=budget)
    return {}


def _media(state: InstanceState, request: Request, budget: float) -> Answer:
    action = request.get("action")
    if action not in desktop.MEDIA_ACTIONS:
        raise HostCallError(
            Code.INVALID, f"media action must be one of {', '.join(desktop.MEDIA_ACTIONS)}"
        )
    desktop.media(str(action), timeout=budget)
    return {}


def _brightness_get(state: InstanceState, request: Request, budget: float) -> Answer:
    return {"percent": desktop.brightness_get(timeout=budget)}


def _brightness_set(state: InstanceState, request: Request, budget: float) -> Answer:
    desktop.brightness_set(_percent(request), timeout=budget)
    return {}


def _sleep(state: InstanceState, request: Request, budget: float) -> Answer:
    desktop.sleep(timeout=budget)
    return {}


def _keys(state: InstanceState, request: Request, budget: float) -> Answer:
    desktop.press_keys(desktop.parse_combo(_text(request, "combo")), timeout=budget)
    return {}


def _type(state: InstanceState, request: Request, budget: float) -> Answer:
    desktop.type_text(_text(request, "text"), timeout=budget)
    return {}


OPS: dict[str, Callable[[InstanceState, Request, float], Answer]] = {
    "notify": _notify,
    "clipboard.get": _clipboard_get,
    "clipboard.set": _clipboard_set,
    "volume.get": _volume_get,
    "volume.set": _volume_set,
    "volume.mute": _volume_mute,
    "screenshot": _screenshot,
    "open_url": _open_url,
    "lock_screen": _lock_screen,
    "media": _media,
    "brightness.get": _brightness_get,
    "brightness.set": _brightness_set,
    "sleep": _sleep,
    "keys": _keys,
    "type": _type,
}


def system(state: InstanceState, pointer: int, length: int) -> int:
    request = state.read_json(pointer, length)
    op = request.get("op")
    timeout = request.get("timeout_ms")
    if timeout is not None and (type(timeout) is not int or timeout <= 0):
        raise HostCallError(Code.INVALID, "timeout_ms must be a positive integer")
    handler = OPS.get(op) if isinstance(op, str) else None
    if handler is None:
        raise HostCallError(Code.INVALID, f"unknown op {op!r} (known: {', '.join(OPS)})")
    try:
        answer = handler(state, request, state.budget(timeout))
    except DesktopError as failed:
        raise HostCallError(_CODES[failed.failure], str(failed)) from None
    return state.answer_json({"ok": True, **answer})
