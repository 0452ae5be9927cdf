"""Text from outside (a plugin's logs, output, errors and metadata; a peer's error page) made safe
to print: control characters become visible escapes, so such text can never drive the terminal
(move the cursor, rewrite earlier lines, set the clipboard through OSC 52, ring the bell).
"""

from __future__ import annotations

# C0 controls, DEL and C1 controls, plus the Unicode bidirectional overrides and isolates that
# reorder what a line appears to say.
_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
_BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


_ONE_LINE = {code: _escape(code) for code in (*_CONTROLS, *_BIDI)}
_MULTI_LINE = {code: text for code, text in _ONE_LINE.items() if code not in (0x09, 0x0A)}


def visible(text: str, *, multiline: bool = False) -> str:
    """`text` with every control character shown as an escape (`\\x1b`); with `multiline`,
    newlines and tabs are kept as they are."""
    return text.translate(_MULTI_LINE if multiline else _ONE_LINE)


# json.dumps escapes C0 controls but leaves DEL, C1 and the bidi characters raw; `\uXXXX` is the
# same JSON, so a document printed to a terminal cannot carry them either.
_JSON = {code: f"\\u{code:04x}" for code in (0x7F, *range(0x80, 0xA0), *_BIDI)}


def visible_json(serialized: str) -> str:
    """Serialized JSON with every control character escaped; it decodes to the same document."""
    return serialized.translate(_JSON)
