"""Strict lowercase-hex decoding: the signature format allows exactly one spelling of each value."""

from __future__ import annotations

import re

_LOWER_HEX = re.compile(r"[0-9a-f]*")


def strict_unhex(value: object, length: int) -> bytes | None:
    """Decode `value` when it is exactly `length` bytes of lowercase hex, else return None."""
    if not isinstance(value, str) or len(value) != 2 * length:
        return None
    if _LOWER_HEX.fullmatch(value) is None:
        return None
    return bytes.fromhex(value)
