"""Resource limits of one plugin (SPEC §5): defaults, and overrides from config or flags."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from conductor.errors import LimitError

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_fuel: int = 100_000_000
    max_memory_bytes: int = 128 * MIB
    max_table_elements: int = 10_000
    timeout_ms: int = 5_000
    max_output_bytes: int = 64 * 1024
    max_json_bytes: int = 1 * MIB

    def with_overrides(self, overrides: dict[str, Any], where: str) -> Limits:
        """Return a copy with `overrides` (from the limits at `where`) applied; an unknown key or
        a value that is not a positive integer raises LimitError."""
        known = {field.name for field in fields(self)}
        changes: dict[str, int] = {}
        for key, value in overrides.items():
            if key not in known:
                raise LimitError(
                    where, key, value, f"unknown limit (known: {', '.join(sorted(known))})"
                )
            if type(value) is not int or value <= 0:
                raise LimitError(where, key, value, f"must be a positive integer, got {value!r}")
            changes[key] = value
        return replace(self, **changes)

    def describe_memory(self) -> str:
        if self.max_memory_bytes % MIB == 0:
            return f"{self.max_memory_bytes // MIB} MiB"
        return f"{self.max_memory_bytes} bytes"
