"""`conductor run`, `conductor check` and `conductor devices`.

The engine and MIDI modules are imported where they are used (see `conductor.cli.plugin`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO, cast

import typer
from rich.markup import escape

from conductor._console import (
    RedactingConsole,
    RedactingStream,
    print_json,
    reports_errors,
    shown,
    stdout,
)
from conductor._logging import configure as configure_logging
from conductor._redact import Redactor
from conductor._shell import JsonOption, TrustStoreOption
from conductor._text import visible
from conductor.cli._options import ApiOption, PortOption, VirtualOption
from conductor.errors import UsageError
from conductor.plugins.capabilities import Risk

if TYPE_CHECKING:
    from conductor.engine.config import Config
    from conductor.plugins.loader import Approval


def _terminal_prompt(name: str, approval: Approval) -> bool:
    """Ask on the terminal; high-risk approvals need their name typed in full. What is asked
    about comes from the plugin's metadata, so it is shown with control characters visible."""
    if approval.risk is Risk.HIGH:
        stdout.print(
            f"[yellow]warning:[/] plugin {shown(name)} asks for {shown(approval.describe())} "
            f"({approval.risk.value} risk): it could act outside its sandbox."
        )
        answer: str = typer.prompt(
            f"Type {visible(approval.value)} to allow it, anything else to refuse",
            default="",
            show_default=False,
        )
        return answer.strip() == approval.value
    question = stdout.redactor(
        f"Allow plugin {visible(name)} to use {visible(approval.describe())} "
        f"({approval.risk.value} risk)?"
    )
    return bool(typer.confirm(question, default=False))


def _protect(redactor: Redactor) -> Callable[[Config], None]:
    """Feed each loaded config's secrets to the invocation's redactor."""

    def add(config: Config) -> None:
        redactor.add(config.plugins.all_secrets)

    return add


def run_command(
    config: Annotated[Path, typer.Argument(help="The config file (TOML).")],
    port: PortOption = None,
    virtual: VirtualOption = None,
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
    *,
    redactor: Redactor,
) -> None:
    """Listen to MIDI inputs and run the config's mappings until Ctrl-C, the end of a replay or --duration."""
    from conductor.engine.report import JsonReporter, LineReporter, LiveReporter
    from conductor.engine.runner import RunOptions, run_engine

    if log_format not in ("text", "json"):
        raise UsageError(f"--log-format: {log_format!r} is not text or json")
    # --debug (the root option) already lowered the level: keep it.
    configure_logging(
        log_format, min(logging.WARNING, logging.getLogger("conductor").getEffectiveLevel())
    )
    logging.getLogger("conductor.engine").setLevel(logging.INFO)  # start-up, reloads, reconnects
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    live = interactive and log_format == "text"
    options = RunOptions(
        tuple(port or ()),
        virtual,
        replay,
        speed,
        api,
        duration,
        trust_store,
        _terminal_prompt if interactive else None,
        on_config=_protect(redactor),
    )
    # The event output passes the invocation's redactor like every other output.
    reporter: LiveReporter | LineReporter | JsonReporter
    if live:
        reporter = LiveReporter(console=RedactingConsole(redactor))
    else:
        stream = cast(TextIO, RedactingStream(sys.stdout, redactor))
        reporter = JsonReporter(stream) if log_format == "json" else LineReporter(stream)

    def start_live_view(_: object) -> None:
        if isinstance(reporter, LiveReporter):
            reporter.start()

    try:
        run_engine(config, options, reporter, on_ready=start_live_view)
    finally:
        printed = reporter.close()
    if not printed:
        # The reader of stdout stopped taking our output: the output thread is stuck in a write,
        # and the usual final flush of stdout would wait for it forever. Leave without it.
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os._exit(0)


def check_command(
    config: Annotated[Path, typer.Argument(help="The config file (TOML).")],
    trust_store: TrustStoreOption = None,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Treat the config's warnings (unknown keys, …) as errors."),
    ] = False,
    json_output: JsonOption = False,
    *,
    redactor: Redactor,
) -> None:
    """Validate a config and load, verify and initialise every plugin it names, without listening.

    Warnings (unknown keys, values that do nothing) do not fail the check unless --strict;
    mappings that run commands or programs with your rights (Shell, Launch) are pointed out."""
    from rich.table import Table

    from conductor.engine.check import check_config
    from conductor.paths import module_cache_dir

    report = check_config(
        config,
        trust_store,
        strict=strict,
        cache_dir=module_cache_dir(),
        on_config=_protect(redactor),
    )
    summary = report.to_json()
    if json_output:
        print_json(summary)
    else:
        warnings, rows = summary["warnings"], summary["plugins"]
        verdict = "invalid under --strict" if report.failed_on_warnings else "valid config"
        stdout.print(
            f"{escape(str(config))}: {verdict}, {len(summary['modes'])} mode(s) "
            f"({escape(', '.join(summary['modes']))}), {summary['mappings']} mapping(s)"
            + (f", {len(warnings)} warning(s)" if warnings else "")
        )
        _print_warnings(warnings, summary["user_rights"], strict)
        table = Table("plugin", "used at", "status", "version", "signature", "granted")
        for row in rows:
            # Names, versions and errors may carry a plugin's own text: shown on one line, escaped.
            status = "[green]ok[/]" if row["ok"] else f"[red]{shown(row['error'])}[/]"
            table.add_row(
                shown(row["plugin"]),
                escape(row["used_at"]),
                status,
                shown(row.get("version") or ""),
                row.get("signature", ""),
                ", ".join(row.get("granted", [])),
            )
        if rows:
            stdout.print(table)
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def _print_warnings(
    warnings: list[dict[str, str]], user_rights: list[dict[str, str]], strict: bool
) -> None:
    """The config's warnings (errors under --strict), then the mappings that act with the
    user's rights; everything in them came from the config file, so it is shown escaped."""
    if not warnings and not user_rights:
        return
    from rich.table import Table

    table = Table("where", "finding")
    kind = "[red]error[/]" if strict else "[yellow]warning[/]"
    for warning in warnings:
        table.add_row(shown(warning["path"]), f"{kind}: {shown(warning['message'])}")
    for entry in user_rights:
        table.add_row(
            shown(entry["path"]),
            f"[yellow]note[/]: {shown(entry['action'])} runs with your rights (your user, "
            "your files, your environment)",
        )
    stdout.print(table)


def devices_command(api: ApiOption = None, json_output: JsonOption = False) -> None:
    """List MIDI input and output ports."""
    from conductor.midi.ports import backend, input_names, output_names

    midi = backend(api)
    inputs, outputs = input_names(midi), output_names(midi)
    if json_output:
        print_json({"api": api or "default", "inputs": inputs, "outputs": outputs})
        return
    for title, names in (("inputs", inputs), ("outputs", outputs)):
        stdout.print(f"[bold]{title}[/]")
        for name in names or ["(none)"]:
            stdout.print(f"  {shown(name)}")


def register(app: typer.Typer) -> None:
    app.command("run")(reports_errors(run_command))
    app.command("check")(reports_errors(check_command))
    app.command("devices")(reports_errors(devices_command))
