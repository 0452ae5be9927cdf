"""Where both console scripts (and `python -m conductor`, `python -m conductor_sign`) start.

The app is imported inside the entry point, not by the script before it: a Ctrl-C in the tens
of milliseconds that import takes then ends the process as any other Ctrl-C does (exit 130,
nothing printed), not with a traceback from deep inside the import.
"""

from __future__ import annotations

import importlib
import os
from typing import NoReturn

from conductor.errors import ExitCode


def start(module: str) -> NoReturn:
    """Import the Typer `app` of `module` and run it to its exit code."""
    try:
        app = importlib.import_module(module).app
        from conductor._shell import run_and_exit
    except KeyboardInterrupt:
        os._exit(ExitCode.INTERRUPTED)
    run_and_exit(app)


def conductor() -> NoReturn:
    start("conductor.cli")


def conductor_sign() -> NoReturn:
    start("conductor_sign.cli")
