"""Reading the TOML stores Conductor owns (the trust store, the grants file): a missing file is
an empty document, and one that does not parse is reported and never overwritten."""

from __future__ import annotations

from pathlib import Path

import tomlkit
import tomlkit.exceptions

from conductor._files import TEXT_FILE_LIMIT, read_if_present
from conductor.errors import ConductorError


def read_store(path: Path, what: str, error: type[ConductorError]) -> tomlkit.TOMLDocument:
    """The document at `path` (`what` names it in errors), with its formatting kept for the
    next write; `error` when it is not UTF-8 TOML."""
    data = read_if_present(path, what, TEXT_FILE_LIMIT)
    if data is None:
        return tomlkit.document()
    try:
        return tomlkit.parse(data.decode("utf-8"))
    except (UnicodeDecodeError, RecursionError, tomlkit.exceptions.TOMLKitError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise error(f"{path}: {what} is corrupt ({reason}); left untouched") from exc
