"""Typed reading of one TOML table with key-path error messages (`modes[0].mappings[2].trigger.note`),
and the warnings channel of the config being read.

Warnings (an unknown key, a value the reference tolerates but that does nothing) do not stop a
config from loading: `warn(path, message)` adds one to the config being read. They travel in a
context variable set by `collecting_warnings()` around one parse, so every reader of every
section reports to the same list without a parameter threaded through each function.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from conductor._text import visible
from conductor.errors import ConfigError


@dataclass(frozen=True)
class ConfigWarning:
    """Something in a config that loads but is likely not what its author meant."""

    path: str  # the key path, as in errors: modes[0].mappings[2].action.colour
    message: str

    def line(self, source: str) -> str:
        return f"{source}: {self.path}: {self.message}"


_collected: ContextVar[list[ConfigWarning] | None] = ContextVar("config_warnings", default=None)


@contextlib.contextmanager
def collecting_warnings() -> Iterator[list[ConfigWarning]]:
    """Collect the warnings of the config read inside this block."""
    sink: list[ConfigWarning] = []
    token = _collected.set(sink)
    try:
        yield sink
    finally:
        _collected.reset(token)


def warn(path: str, message: str) -> None:
    """Add a warning about the key at `path` to the config being read."""
    sink = _collected.get()
    if sink is None:
        raise RuntimeError("warn() outside collecting_warnings()")
    sink.append(ConfigWarning(visible(path), visible(message)))


class Fields:
    """Reads values out of `table`, remembering which keys were used so unknown ones are
    reported (as warnings: the reference ignores them)."""

    def __init__(self, table: Any, path: str, source: str) -> None:
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: {path}: expected a table, got {describe(table)}")
        self.table = table
        self.path = path
        self.source = source
        self.used: set[str] = set()

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, where=self.where(key))

    def where(self, key: str) -> str:
        """The file and key path of `key`, as config errors name it."""
        return f"{self.source}: {self.key_path(key)}"

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def raw(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        return self.table.get(key, default)

    def has(self, key: str) -> bool:
        return key in self.table

    def integer(
        self,
        key: str,
        default: int | None = None,
        low: int | None = None,
        high: int | None = None,
        what: str = "",
    ) -> int | None:
        value = self.raw(key, default)
        if value is None:
            return None
        if type(value) is not int:
            raise self.error(key, f"expected an integer, got {describe(value)}")
        if (low is not None and value < low) or (high is not None and value > high):
            label = what or "a value"
            raise self.error(key, f"{value} is not {label} ({low}-{high})")
        return value

    def required_integer(self, key: str, low: int, high: int, what: str = "") -> int:
        if key not in self.table:
            raise self.error(key, "is required")
        value = self.integer(key, None, low, high, what)
        assert value is not None
        return value

    def string(self, key: str, default: str | None = None) -> str | None:
        value = self.raw(key, default)
        if value is not None and not isinstance(value, str):
            raise self.error(key, f"expected a string, got {describe(value)}")
        return value

    def required_string(self, key: str) -> str:
        if key not in self.table:
            raise self.error(key, "is required")
        value = self.string(key)
        assert value is not None
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {describe(value)}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        value = self.string(key, default)
        if value is None:
            raise self.error(key, f"is required (one of {', '.join(choices)})")
        if value not in choices:
            raise self.error(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def table_of(self, key: str) -> dict[str, Any]:
        value = self.raw(key, {})
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table, got {describe(value)}")
        return value

    def array(self, key: str) -> list[Any]:
        value = self.raw(key, [])
        if not isinstance(value, list):
            raise self.error(key, f"expected an array, got {describe(value)}")
        return value

    def warn(self, key: str, message: str) -> None:
        warn(self.key_path(key), message)

    def done(self) -> None:
        """Warn about each key no reader asked for, naming the keys known here."""
        known = ", ".join(sorted(self.used)) or "none"
        for key in sorted(set(self.table) - self.used, key=str):
            self.warn(key, f"unknown key, ignored (known here: {known})")


def describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def tagged(value: Any, path: str, source: str, kinds: tuple[str, ...]) -> tuple[str, Fields]:
    """Both spellings of a tagged value: `{ Note = { note = 60 } }` and `{ type = "Note", note = 60 }`."""
    example = f'{{ {kinds[0]} = {{ ... }} }} or {{ type = "{kinds[0]}", ... }}'
    if not isinstance(value, dict):
        raise ConfigError(
            f"{source}: {path}: expected a table like {example}, got {describe(value)}"
        )
    if "type" in value:
        kind = value["type"]
        if kind not in kinds:
            raise ConfigError(f"{source}: {path}.type: {kind!r} is not one of {', '.join(kinds)}")
        fields = Fields(value, path, source)
        fields.used.add("type")
        return kind, fields
    if len(value) == 1:
        ((kind, body),) = value.items()
        if kind in kinds:
            return kind, Fields(body, path, source)
        raise ConfigError(f"{source}: {path}: {kind!r} is not one of {', '.join(kinds)}")
    raise ConfigError(f"{source}: {path}: expected a table like {example}")
