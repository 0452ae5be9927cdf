"""Log output for the CLIs: `level: message` lines on stderr, or one JSON object per line."""

from __future__ import annotations

import json
import logging
import sys
import time

_LEVEL_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
}


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = _LEVEL_NAMES.get(record.levelno, record.levelname.lower())
        source = record.name.removeprefix("conductor.plugin.")
        prefix = f"[{source}] " if record.name.startswith("conductor.plugin.") else ""
        return f"{level}: {prefix}{record.getMessage()}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": round(time.time(), 3),
            "level": _LEVEL_NAMES.get(record.levelno, record.levelname.lower()),
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update(getattr(record, "fields", {}))
        return json.dumps(document, ensure_ascii=False)


def configure(log_format: str = "text", level: int = logging.WARNING) -> None:
    """Send Conductor's log records to stderr in the chosen format (idempotent)."""
    root = logging.getLogger("conductor")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    # A plugin's own log lines reach the user through the command's report (run, plugin exec),
    # which attributes them; logging them here too would print each twice.
    logging.getLogger("conductor.plugin").setLevel(logging.CRITICAL)
