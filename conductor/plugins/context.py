"""What host functions know about one plugin, across all its instances: grants, allow-lists,
its config table and secrets, its data directory, and rate-limited denial logging."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conductor._redact import Redactor
from conductor.plugins.capabilities import Capability
from conductor.plugins.network.patterns import HostRules

DENIAL_LOG_INTERVAL_S = 60.0
# Not under `conductor.plugin.*`: those carry the plugin's own log lines, which the commands
# report themselves and keep out of the log; a denial is the host's word and must be seen.
_denials_log = logging.getLogger("conductor.denials")


@dataclass
class PluginContext:
    name: str
    granted: frozenset[Capability] = frozenset()
    config: dict[str, Any] = field(default_factory=dict)
    secrets: frozenset[str] = frozenset()
    hosts: HostRules = field(default_factory=HostRules)
    commands: dict[str, str] = field(default_factory=dict)  # approved command name -> absolute path
    declared_commands: frozenset[str] = frozenset()
    data_dir: Path | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("conductor.plugin"))
    _denials: dict[str, float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _redactor: Redactor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._redactor = Redactor(self.secrets)

    def redact(self, text: str) -> str:
        """This plugin's secrets replaced with *** in text it produced (output, host errors)."""
        return self._redactor(text)

    def log_denial(self, function: str, reason: str, fix: str) -> None:
        """One warning per plugin, function and minute, naming the command that fixes it."""
        now = time.monotonic()
        with self._lock:
            last = self._denials.get(function)
            if last is not None and now - last < DENIAL_LOG_INTERVAL_S:
                return
            self._denials[function] = now
        _denials_log.warning(
            "%s: %s denied: %s; to allow it: %s",
            self.name,
            function,
            self.redact(reason),
            self.redact(fix),
        )
