"""The plugin name rule (SPEC §2). A plugin's name is its file name without `.wasm`; it names the
plugin's data directory, its grants and its config table, so it must be a plain, bounded word:
never `..`, empty, hidden, spaced or carrying control characters."""

from __future__ import annotations

import re

from conductor._text import visible
from conductor.errors import PluginNameError

NAME_RULE = "[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_NAME = re.compile(NAME_RULE)


def check_plugin_name(name: str, where: str) -> str:
    """`name` when it follows the rule; otherwise a PluginNameError naming `where` and the rule."""
    if _NAME.fullmatch(name) is None:
        raise PluginNameError(
            f"{where}: '{visible(name)}' is not a valid plugin name: the file name without .wasm "
            f"must match {NAME_RULE} (letters, digits, - and _, at most 64, no leading dot)"
        )
    return name
