"""Secrets never leave the process: the one rule that turns a secret into `***` wherever it shows.

A secret is a config value that came from the environment (`${VAR}`). Every string Conductor
prints — console lines, error lines, log records, `--json` documents — passes a `Redactor`, which
also catches a secret in the spellings the output layer gives it (JSON-escaped, control
characters made visible). Values under MIN_SECRET_LENGTH characters are not redacted: they would
turn ordinary text into asterisks, so the config warns about them instead.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any

from conductor._text import visible

REDACTED = "***"
MIN_SECRET_LENGTH = 4


def _spellings(secret: str) -> set[str]:
    """The secret as printed raw, inside a JSON string (either encoding), and made visible."""
    return {
        secret,
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1],
        visible(secret),
        visible(secret, multiline=True),
    }


class Redactor:
    """Replaces every known secret with `***`. Secrets can be added as configs load (a reload may
    bring new ones); reading is lock-free, so log formatting on any thread stays cheap."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()
        self._patterns: tuple[str, ...] = ()  # longest first, so no secret is half-replaced
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        usable = {secret for secret in secrets if len(secret) >= MIN_SECRET_LENGTH}
        with self._lock:
            if usable <= self._secrets:
                return
            self._secrets = self._secrets | usable
            patterns = set().union(*(_spellings(secret) for secret in self._secrets))
            self._patterns = tuple(sorted(patterns, key=lambda text: (-len(text), text)))

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def __call__(self, text: str) -> str:
        for pattern in self._patterns:
            if pattern in text:
                text = text.replace(pattern, REDACTED)
        return text

    def document(self, value: Any) -> Any:
        """A JSON-like document with every string in it (keys too) redacted."""
        if not self._patterns:
            return value
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self.document(key): self.document(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.document(item) for item in value]
        return value
