"""The `conductor` command line: a thin shell over the engine and plugin runtime."""

from __future__ import annotations

from typing import NoReturn

from conductor._shell import make_app, run_and_exit
from conductor.cli import learn as learn_commands
from conductor.cli import plugin as plugin_commands
from conductor.cli import run as run_commands

__all__ = ["app", "main"]

app = make_app("conductor", "Trigger sandboxed WebAssembly plugins from a MIDI controller.")

run_commands.register(app)
learn_commands.register(app)
app.add_typer(plugin_commands.app, name="plugin")


def main() -> NoReturn:
    run_and_exit(app)
