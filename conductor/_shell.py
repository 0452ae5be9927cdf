"""What both command lines are made of: a Typer app with the root options every command takes
(`--version`, `--debug`), the options several commands of both apps share, and running an app
to its exit code. `conductor` and `conductor-sign` are each one call to `make_app` away.

No `from __future__ import annotations` here: Typer reads the root callback's annotations, and
they must be evaluated where the callback is made.
"""

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from conductor import __version__
from conductor._logging import configure as configure_logging
from conductor.errors import ExitCode

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
TrustStoreOption = Annotated[
    Path | None,
    typer.Option(
        "--trust-store",
        help="Trust store file (default: $CONDUCTOR_TRUST_STORE, else the user config dir).",
        show_default=False,
    ),
]


def _version_callback(name: str) -> Callable[[bool], None]:
    def show(value: bool) -> None:
        if value:
            typer.echo(f"{name} {__version__}")
            raise typer.Exit()

    return show


def _root_callback(name: str) -> Callable[..., None]:
    def root(
        ctx: typer.Context,
        version: Annotated[
            bool, typer.Option("--version", callback=_version_callback(name), is_eager=True)
        ] = False,
        debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    ) -> None:
        # `reports_errors` finds --debug here; the log shows debug records with it.
        ctx.obj = {"debug": debug}
        configure_logging(level=logging.DEBUG if debug else logging.WARNING)

    return root


def make_app(name: str, help_text: str) -> typer.Typer:
    """The app called `name`, with the root options; tracebacks only with --debug."""
    app = typer.Typer(help=help_text, no_args_is_help=True, pretty_exceptions_enable=False)
    app.callback()(_root_callback(name))
    return app


def run_and_exit(app: typer.Typer) -> NoReturn:
    """Run a CLI app, flush what it printed, and end the process at once with its exit code.

    Ending with `os._exit` skips interpreter teardown: wasmtime's native worker threads can
    still be running then, and tearing the runtime down under them aborts the process now and
    then ("panic in a function that cannot unwind", exit 134) after the command itself succeeded.
    """
    code: int = 0
    try:
        app()
    except SystemExit as exc:
        if isinstance(exc.code, int):
            code = exc.code
        elif exc.code is not None:
            print(exc.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        code = ExitCode.INTERRUPTED
    finally:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    os._exit(code)
