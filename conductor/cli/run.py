"""`conductor run`, `conductor check` and `conductor devices`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from conductor._console import print_json, reports_errors, stdout
from conductor._logging import configure as configure_logging
from conductor.cli._options import JsonOption, TrustStoreOption
from conductor.engine.config import load_config
from conductor.engine.plugins import load_config_plugins
from conductor.engine.report import LineReporter, LiveReporter
from conductor.engine.runner import RunOptions, run_engine
from conductor.midi.ports import backend, input_names, output_names
from conductor.paths import module_cache_dir
from conductor.plugins.capabilities import Risk
from conductor.plugins.loader import Approval
from conductor.plugins.runtime import PluginHost

ApiOption = Annotated[
    str | None, typer.Option("--api", help="MIDI API: alsa or jack (default: rtmidi's choice).")
]


def _terminal_prompt(name: str, approval: Approval) -> bool:
    """Ask on the terminal; high-risk approvals need their name typed in full."""
    if approval.risk is Risk.HIGH:
        stdout.print(
            f"[yellow]warning:[/] plugin {escape(name)} asks for {escape(approval.describe())} "
            f"({approval.risk.value} risk): it could act outside its sandbox."
        )
        answer = typer.prompt(
            f"Type {approval.value} to allow it, anything else to refuse",
            default="",
            show_default=False,
        )
        return answer.strip() == approval.value
    return typer.confirm(
        f"Allow plugin {name} to use {approval.describe()} ({approval.risk.value} risk)?",
        default=False,
    )


def run_command(
    config: Annotated[Path, typer.Argument(help="The config file (TOML).")],
    port: Annotated[
        str | None,
        typer.Option("--port", help="Existing input port: exact name or unique substring."),
    ] = None,
    virtual: Annotated[
        str | None, typer.Option("--virtual", help="Create a virtual input port with this name.")
    ] = None,
    replay: Annotated[
        Path | None, typer.Option("--replay", help="Play a Standard MIDI File as the input.")
    ] = None,
    speed: Annotated[
        float, typer.Option("--speed", help="Replay speed factor; 0 plays as fast as possible.")
    ] = 1.0,
    api: ApiOption = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds.")
    ] = None,
    trust_store: TrustStoreOption = None,
    log_format: Annotated[
        str, typer.Option("--log-format", help="text or json (one object per event).")
    ] = "text",
) -> None:
    """Listen to a MIDI input and run the config's mappings until Ctrl-C, the end of a replay or --duration."""
    if log_format not in ("text", "json"):
        raise typer.BadParameter("must be text or json", param_hint="--log-format")
    configure_logging(log_format, logging.WARNING)
    logging.getLogger("conductor.engine").setLevel(logging.INFO)  # start-up, reloads, reconnects
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    live = interactive and log_format == "text"
    options = RunOptions(
        port,
        virtual,
        replay,
        speed,
        api,
        duration,
        trust_store,
        _terminal_prompt if interactive else None,
    )
    reporter = LiveReporter() if live else LineReporter(as_json=log_format == "json")
    try:
        run_engine(config, options, reporter, on_ready=lambda _: reporter.start() if live else None)
    finally:
        reporter.close()


def check_command(
    config: Annotated[Path, typer.Argument(help="The config file (TOML).")],
    trust_store: TrustStoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Validate a config and load, verify and initialise every plugin it names, without listening."""
    loaded_config = load_config(config)
    host = PluginHost(module_cache_dir())
    try:
        findings = load_config_plugins(host, loaded_config, trust_store, None)
        for finding in findings:
            if finding.loaded is not None:
                finding.loaded.plugin.shutdown()
    finally:
        host.close()
    rows = []
    for finding in findings:
        path = finding.key[0]
        if finding.loaded is not None:
            loaded = finding.loaded
            rows.append(
                {
                    "plugin": loaded.plugin.name,
                    "path": str(path),
                    "used_at": finding.where,
                    "ok": True,
                    "version": loaded.metadata.version,
                    "signature": loaded.verdict.status.value,
                    "granted": sorted(c.value for c in loaded.plugin.granted),
                    "error": None,
                }
            )
        else:
            assert finding.error is not None
            rows.append(
                {
                    "plugin": path.name.removesuffix(".wasm"),
                    "path": str(path),
                    "used_at": finding.where,
                    "ok": False,
                    "error": finding.error.diagnostics(),
                }
            )
    ok = all(row["ok"] for row in rows)
    summary = {
        "config": str(config),
        "ok": ok,
        "modes": [mode.name for mode in loaded_config.modes],
        "mappings": len(loaded_config.all_mappings()),
        "plugins": rows,
    }
    if json_output:
        print_json(summary)
    else:
        stdout.print(
            f"{escape(str(config))}: valid config, {len(loaded_config.modes)} mode(s) "
            f"({escape(', '.join(summary['modes']))}), {summary['mappings']} mapping(s)"
        )
        table = Table("plugin", "used at", "status", "version", "signature", "granted")
        for row in rows:
            status = "[green]ok[/]" if row["ok"] else f"[red]{escape(row['error'])}[/]"
            table.add_row(
                escape(row["plugin"]),
                escape(row["used_at"]),
                status,
                escape(row.get("version") or ""),
                row.get("signature", ""),
                ", ".join(row.get("granted", [])),
            )
        if rows:
            stdout.print(table)
    if not ok:
        raise typer.Exit(1)


def devices_command(api: ApiOption = None, json_output: JsonOption = False) -> None:
    """List MIDI input and output ports."""
    midi = backend(api)
    inputs, outputs = input_names(midi), output_names(midi)
    if json_output:
        print_json({"api": api or "default", "inputs": inputs, "outputs": outputs})
        return
    for title, names in (("inputs", inputs), ("outputs", outputs)):
        stdout.print(f"[bold]{title}[/]")
        for name in names or ["(none)"]:
            stdout.print(f"  {escape(name)}")


def register(app: typer.Typer) -> None:
    app.command("run")(reports_errors(run_command))
    app.command("check")(reports_errors(check_command))
    app.command("devices")(reports_errors(devices_command))
