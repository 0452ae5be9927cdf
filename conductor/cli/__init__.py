"""The `conductor` command line: a thin shell over the engine and plugin runtime."""

from __future__ import annotations

from conductor._shell import make_app
from conductor.cli import learn as learn_commands
from conductor.cli import plugin as plugin_commands
from conductor.cli import run as run_commands

__all__ = ["app"]

app = make_app("conductor", "Trigger sandboxed WebAssembly plugins from a MIDI controller.")

run_commands.register(app)
learn_commands.register(app)
app.add_typer(plugin_commands.app, name="plugin")
