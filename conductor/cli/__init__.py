"""The `conductor` command line: a thin shell over the engine and plugin runtime."""

from __future__ import annotations

import logging
from typing import Annotated, NoReturn

import typer

from conductor import __version__
from conductor._console import run_and_exit, version_callback
from conductor._logging import configure as configure_logging
from conductor.cli import learn as learn_commands
from conductor.cli import plugin as plugin_commands
from conductor.cli import run as run_commands

app = typer.Typer(
    help="Trigger sandboxed WebAssembly plugins from a MIDI controller.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=version_callback("conductor", __version__), is_eager=True
        ),
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    ctx.obj = {"debug": debug}
    configure_logging(level=logging.DEBUG if debug else logging.WARNING)


run_commands.register(app)
learn_commands.register(app)
app.add_typer(plugin_commands.app, name="plugin")


def main() -> NoReturn:
    run_and_exit(app)
