"""One desktop backend for everything Conductor does to the user's desktop: the `system` host
function's ops and the engine's native actions (keystrokes, text, clicks, volume, launching).

Every operation takes a time budget in seconds (`timeout=`), tries the tools it can use in
order (the first installed one that succeeds wins), and raises `DesktopError`, whose `failure`
says UNSUPPORTED (no tool here), TIMEOUT, IO (every tool failed) or INVALID; its message is one
line naming each tool tried and why it did not do it.
"""

from conductor.desktop.audio import (
    VolumeState,
    volume_change,
    volume_get,
    volume_mute,
    volume_set,
)
from conductor.desktop.clipboard import clipboard_get, clipboard_set
from conductor.desktop.input import MouseButton, click, press_keys, type_text
from conductor.desktop.keys import (
    DEFAULT_KEYMAP,
    KNOWN_NAMES,
    Key,
    KeyCombo,
    KeyMap,
    Modifier,
    parse_combo,
    parse_keystroke,
    unknown_keys_message,
)
from conductor.desktop.launch import launch, open_url
from conductor.desktop.media import MEDIA_ACTIONS, media
from conductor.desktop.notify import notify
from conductor.desktop.power import sleep
from conductor.desktop.running import Unknown, app_frontmost, app_running
from conductor.desktop.screen import brightness_get, brightness_set, lock_screen, screenshot
from conductor.errors import DesktopError, DesktopFailure

__all__ = [
    "DEFAULT_KEYMAP",
    "KNOWN_NAMES",
    "MEDIA_ACTIONS",
    "DesktopError",
    "DesktopFailure",
    "Key",
    "KeyCombo",
    "KeyMap",
    "Modifier",
    "MouseButton",
    "Unknown",
    "VolumeState",
    "app_frontmost",
    "app_running",
    "brightness_get",
    "brightness_set",
    "click",
    "clipboard_get",
    "clipboard_set",
    "launch",
    "lock_screen",
    "media",
    "notify",
    "open_url",
    "parse_combo",
    "parse_keystroke",
    "press_keys",
    "screenshot",
    "sleep",
    "type_text",
    "unknown_keys_message",
    "volume_change",
    "volume_get",
    "volume_mute",
    "volume_set",
]
