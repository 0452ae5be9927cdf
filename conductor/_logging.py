"""Log output for the CLIs: `level: message` lines on stderr, or one JSON object per line.

Every record passes the invocation's redactor, and a text line shows control characters as
escapes, so neither a secret nor a plugin's terminal escapes reach stderr through the log.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from conductor._redact import Redactor
from conductor._text import visible, visible_json

_LEVEL_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
}


class _RedactingFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor


class TextFormatter(_RedactingFormatter):
    def format(self, record: logging.LogRecord) -> str:
        level = _LEVEL_NAMES.get(record.levelno, record.levelname.lower())
        source = record.name.removeprefix("conductor.plugin.")
        prefix = f"[{source}] " if record.name.startswith("conductor.plugin.") else ""
        return visible(self.redactor(f"{level}: {prefix}{record.getMessage()}"))


class JsonFormatter(_RedactingFormatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": round(time.time(), 3),
            "level": _LEVEL_NAMES.get(record.levelno, record.levelname.lower()),
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update(getattr(record, "fields", {}))
        return visible_json(json.dumps(self.redactor.document(document), ensure_ascii=False))


def _handlers() -> list[logging.Handler]:
    return logging.getLogger("conductor").handlers


def configure(
    log_format: str = "text", level: int = logging.WARNING, redactor: Redactor | None = None
) -> None:
    """Send Conductor's log records to stderr in the chosen format (idempotent). Without a
    `redactor`, the one installed by an earlier call is kept."""
    root = logging.getLogger("conductor")
    if redactor is None:
        redactor = next(
            (
                handler.formatter.redactor
                for handler in root.handlers
                if isinstance(handler.formatter, _RedactingFormatter)
            ),
            Redactor(),
        )
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(redactor) if log_format == "json" else TextFormatter(redactor)
    )
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    # A plugin's own log lines reach the user through the command's report (run, plugin exec),
    # which attributes them; logging them here too would print each twice. Denials are logged
    # by the host under `conductor.denials`, so they still show.
    logging.getLogger("conductor.plugin").setLevel(logging.CRITICAL)


def use_redactor(redactor: Redactor) -> None:
    """Install `redactor` into the log output configured for this invocation."""
    for handler in _handlers():
        if isinstance(handler.formatter, _RedactingFormatter):
            handler.formatter.redactor = redactor
