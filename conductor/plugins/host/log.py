"""`conductor.log(level, ptr, len) -> i32`: a plugin's log line, attributed to it (hot path)."""

from __future__ import annotations

import logging

from conductor.plugins.host._state import GuestFault, InstanceState
from conductor.plugins.host.codes import Code

PARAMS, RESULTS = ("i32", "i32", "i32"), ("i32",)
MAX_LINE = 4096
_PYTHON_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR}


def log(state: InstanceState, level: int, pointer: int, length: int) -> int:
    """Record the line in the call's captured output and the plugin's logger.

    Lines over 4 KiB are cut, not refused; past the per-call output budget they are counted as
    dropped. A bad pointer is FAULT and becomes the instance's last error.
    """
    try:
        text = state.read(pointer, min(length & 0xFFFFFFFF, MAX_LINE)).decode("utf-8", "replace")
    except GuestFault as fault:
        state.last_error = f"log: {fault}"
        return Code.FAULT
    if state.capture.write_log(level, text):
        state.logger.log(_PYTHON_LEVELS.get(level, logging.INFO), "%s", text)
    return Code.OK
