"""`conductor learn`: press a pad, turn a knob, get the trigger line to paste into a config.

The engine and MIDI modules are imported where they are used (see `conductor.cli.plugin`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from conductor._console import print_json, reports_errors, stderr, stdout
from conductor._redact import Redactor
from conductor._shell import JsonOption
from conductor.cli._options import ApiOption, PortOption, VirtualOption
from conductor.errors import UsageError

if TYPE_CHECKING:
    import mido

    from conductor.engine.config import Config
    from conductor.engine.learn import Learned
    from conductor.midi.inputs import InputSpec


def _inputs(
    midi: mido.Backend, config: Config | None, ports: list[str], virtual: list[str]
) -> list[InputSpec]:
    """`--port`/`--virtual`, else the config's devices, else every input port there is (the
    usual MIDI learn: press anything on any controller)."""
    from conductor.engine.devices import input_specs
    from conductor.midi.inputs import InputSpec
    from conductor.midi.ports import input_names

    if ports or virtual:
        if config is None:
            return [InputSpec(name) for name in ports] + [
                InputSpec(name, virtual=True) for name in virtual
            ]
        return input_specs(config, ports, virtual)
    if config is not None and any(device.name for device in config.devices):
        return input_specs(config, ports, virtual)
    everything = input_names(midi)
    if not everything:
        raise UsageError(
            "no MIDI input ports to listen to (`conductor devices` lists them); "
            "create one for your controller's software with --virtual NAME"
        )
    return [InputSpec(name) for name in everything]


def _stop_on_sigterm() -> None:
    """SIGTERM ends learning like Ctrl-C: what was learned is still printed, exit 0."""

    def interrupt(_signum: int, _frame: object) -> NoReturn:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def _text(item: Learned) -> str:
    comments = [text for text in ("held" if item.held else "", item.note, item.fires) if text]
    return item.line + ("  # " + "; ".join(comments) if comments else "")


def learn_command(
    port: PortOption = None,
    virtual: VirtualOption = None,
    api: ApiOption = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Also name the mapping each event fires in this config."),
    ] = None,
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="Stop after this many events.")
    ] = None,
    json_output: JsonOption = False,
    *,
    redactor: Redactor,
) -> None:
    """MIDI learn: print the trigger for each event as a TOML line ready to paste."""
    from conductor.engine.config import load_config
    from conductor.engine.devices import resolve_devices
    from conductor.engine.learn import Learner, listen
    from conductor.midi.inputs import open_input
    from conductor.midi.ports import backend

    loaded = load_config(config) if config is not None else None
    if loaded is not None:
        redactor.add(loaded.plugins.all_secrets)
    midi = backend(api)
    specs = _inputs(midi, loaded, port or [], [virtual] if virtual else [])
    learned: list[Learned] = []

    def emit(item: Learned) -> None:
        learned.append(item)
        if not json_output:
            stdout.print(_text(item), markup=False)

    with open_input(specs, midi=midi) as source:
        sources = source.sources()
        learner = Learner(
            resolve_devices(loaded, sources) if loaded is not None else None,
            several_devices=len(sources) > 1,
        )
        names = ", ".join(repr(name) for name in sources.values())
        stderr.print(
            f"listening on {names}: press a pad, turn a knob, move a fader (Ctrl-C to stop)",
            markup=False,
        )
        _stop_on_sigterm()
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends learning: exit 0
            listen(source, learner, count, emit, time.monotonic)
    if json_output:
        print_json(
            {
                "inputs": [{"source": name, "port": port} for name, port in sources.items()],
                "config": str(config) if config is not None else None,
                "events": [item.to_json() for item in learned],
            }
        )


def register(app: typer.Typer) -> None:
    app.command("learn")(reports_errors(learn_command))
