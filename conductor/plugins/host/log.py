"""The ungated host functions: `log`, `config_get` and `error_message`.

`log` sits on the execute hot path, so it does as little as possible.
"""

from __future__ import annotations

import json
import logging

from conductor.plugins.host._state import GuestFault, HostCallError, InstanceState
from conductor.plugins.host.codes import Code

MAX_LINE = 4096
_PYTHON_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR}


def log(state: InstanceState, level: int, pointer: int, length: int) -> int:
    """`log(level, ptr, len) -> i32`: record a line in the call's output and the plugin's logger.

    Lines over 4 KiB are cut, not refused; past the per-call output budget they are counted as
    dropped. Secrets are redacted.
    """
    try:
        text = state.read(pointer, min(length & 0xFFFFFFFF, MAX_LINE)).decode("utf-8", "replace")
    except GuestFault as fault:
        state.last_error = f"log: {fault}"
        return Code.FAULT
    if state.plugin.secrets:
        text = state.plugin.redact(text)
    if state.capture.write_log(level, text):
        state.plugin.logger.log(_PYTHON_LEVELS.get(level, logging.INFO), "%s", text)
    return Code.OK


def config_get(state: InstanceState, pointer: int, length: int) -> int:
    """`config_get(ptr, len) -> i64`: the value of a key in `[plugins.config.<plugin>]`.

    Strings come back as their UTF-8 text, anything else (numbers, lists, tables) as JSON.
    """
    key = state.read(pointer, length, limit=1024).decode("utf-8", "replace")
    if key not in state.plugin.config:
        raise HostCallError(
            Code.NOT_FOUND, f"config key {key!r} is not set in [plugins.config.{state.name}]"
        )
    value = state.plugin.config[key]
    if isinstance(value, str):
        return state.answer(value.encode("utf-8"))
    return state.answer(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8"))


def error_message(state: InstanceState) -> int:
    """`error_message() -> i64`: the text of this instance's last host-function error."""
    return state.answer(state.last_error.encode("utf-8"))
