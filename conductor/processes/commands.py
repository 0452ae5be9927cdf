"""Which program a command name stands for: what is approved for a plugin is that absolute path,
so a later change of PATH or of a symlink cannot swap the program that runs."""

from __future__ import annotations

import shutil
from pathlib import Path


def resolve_command(name: str) -> str | None:
    """The absolute path, symlinks resolved, that `name` runs as on PATH; None if not found."""
    found = shutil.which(name)
    return None if found is None else str(Path(found).resolve())
