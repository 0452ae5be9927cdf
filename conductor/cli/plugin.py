"""`conductor plugin …`: run, inspect, install and grant single plugins (for plugin authors).

Each command imports the library it drives in its own body: declaring the commands has to stay
cheap, since every `conductor` invocation (even `--version`) declares all of them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from conductor._console import print_json, reports_errors, shown, stderr, stdout
from conductor._redact import Redactor
from conductor._shell import JsonOption, TrustStoreOption
from conductor._text import visible
from conductor.cli._options import PolicyOption
from conductor.errors import (
    CapabilityError,
    EventSpecError,
    LimitError,
    PatternError,
    PolicyError,
    UsageError,
)
from conductor.plugins.bundled import spotify_app
from conductor.plugins.capabilities import Capability, Risk, parse_all
from conductor.plugins.limits import MIB
from conductor.plugins.network.patterns import HostPattern

if TYPE_CHECKING:
    from conductor.plugins.abi import EventContext
    from conductor.plugins.execution import Execution
    from conductor.plugins.grants import Grant
    from conductor.plugins.inspection import Inspection
    from conductor.signing import SignaturePolicy

app = typer.Typer(help="Run, inspect, install and grant single plugins.", no_args_is_help=True)


def _policy(value: str | None) -> SignaturePolicy:
    from conductor.signing import SignaturePolicy

    try:
        return SignaturePolicy.parse(value or "trusted", "--policy")
    except PolicyError as exc:
        raise UsageError(exc.diagnostics(), cause=exc) from exc


def _capabilities(names: list[str] | None) -> frozenset[Capability]:
    try:
        return parse_all(names or [])
    except CapabilityError as exc:
        raise UsageError(exc.diagnostics(), cause=exc) from exc


def _event(spec: str | None) -> EventContext:
    """`--event` as the request's context, stamped now."""
    from conductor.plugins.abi import EventContext

    try:
        return EventContext.from_spec(spec, int(time.time() * 1000), "conductor plugin exec")
    except EventSpecError as exc:
        raise UsageError(f"--event {exc.diagnostics()}", cause=exc) from exc


def _params(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--params is not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(params, dict):
        raise UsageError('--params must be a JSON object, as in \'{"action": "play"}\'')
    if "context" in params:
        raise UsageError("--params: the key 'context' is reserved for the event context")
    return params


def _limit_overrides(
    fuel: int | None, memory_mb: int | None, timeout_ms: int | None
) -> dict[str, int]:
    given = {"max_fuel": fuel, "timeout_ms": timeout_ms}
    given["max_memory_bytes"] = None if memory_mb is None else memory_mb * MIB
    return {key: value for key, value in given.items() if value is not None}


def _host_patterns(patterns: list[str] | None) -> tuple[str, ...]:
    """`--host` values, each checked to be a pattern."""
    for pattern in patterns or []:
        try:
            HostPattern.parse(pattern)
        except PatternError as exc:
            raise UsageError.at("--host", exc) from exc
    return tuple(patterns or ())


@app.command("exec")
@reports_errors
def exec_command(
    plugin: Annotated[str, typer.Argument(help="A .wasm file or the name of an installed plugin.")],
    params: Annotated[str | None, typer.Option("--params", help="Params as a JSON object.")] = None,
    event: Annotated[
        str | None, typer.Option("--event", help="note:60:100 or cc:7:64 (fills the context).")
    ] = None,
    fuel: Annotated[
        int | None, typer.Option("--fuel", help="Fuel (instructions) per call.")
    ] = None,
    memory_mb: Annotated[
        int | None, typer.Option("--memory-mb", help="Memory limit in MiB.")
    ] = None,
    timeout_ms: Annotated[
        int | None, typer.Option("--timeout-ms", help="Wall-clock limit per call.")
    ] = None,
    grant: Annotated[
        list[str] | None, typer.Option("--grant", help="Approve a capability (repeatable).")
    ] = None,
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="Approve a host pattern the plugin declares, for this run."),
    ] = None,
    command: Annotated[
        list[str] | None,
        typer.Option("--command", help="Approve a command the plugin declares, for this run."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Take [plugins] config, hosts, commands, grants and limits from this file.",
        ),
    ] = None,
    policy: PolicyOption = None,
    trust_store: TrustStoreOption = None,
    json_output: JsonOption = False,
    *,
    redactor: Redactor,
) -> None:
    """Load, verify, initialise and execute a plugin once, then shut it down."""
    from conductor.engine.config import load_config
    from conductor.engine.plugins import options_for_one
    from conductor.paths import module_cache_dir
    from conductor.plugins.abi import RequestTemplate
    from conductor.plugins.execution import execute_once
    from conductor.plugins.loader import resolve_plugin

    request = RequestTemplate(_params(params)).render(_event(event))
    approved_hosts = _host_patterns(host)
    path = resolve_plugin(plugin, Path.cwd())
    plugins = load_config(config).plugins if config is not None else None
    if plugins is not None:
        redactor.add(plugins.all_secrets)
    try:
        options = options_for_one(
            path,
            plugins,
            trust_store=trust_store,
            policy=_policy(policy) if policy else None,
            limits=_limit_overrides(fuel, memory_mb, timeout_ms),
            approvals=_capabilities(grant),
            approved_hosts=approved_hosts,
            approved_commands=tuple(command or ()),
        )
    except LimitError as exc:
        raise UsageError(exc.diagnostics(), cause=exc) from exc
    done = execute_once(path, request, options, module_cache_dir())
    if json_output:
        print_json(done.to_json())
    else:
        _print_execution(done)
    raise typer.Exit(0 if done.ok else 1)


def _print_execution(done: Execution) -> None:
    from conductor.plugins.sandbox import LOG_LEVELS

    # Everything below but our own labels and numbers is the plugin's (or its signer's) text.
    loaded, result, ended = done.loaded, done.result, done.shutdown
    meta = loaded.metadata
    stdout.print(
        f"[bold]{shown(loaded.plugin.name)}[/] {shown(meta.version)}  {shown(str(loaded.path))}"
    )
    stdout.print(f"  signature  {shown(loaded.verdict.summary())}")
    granted = ", ".join(sorted(cap.value for cap in loaded.plugin.granted)) or "none"
    stdout.print(f"  granted    {granted}")
    timing = " · ".join(f"{name} {ms:.2f} ms" for name, ms in done.phases_ms.items())
    cache = " (compiled module from cache)" if loaded.compiled_from_cache else ""
    stdout.print(f"  phases     {timing}{cache}")
    status = "[green]ok[/]" if result.ok else f"[red]{shown(result.error or 'failed')}[/]"
    stdout.print(f"  result     code {result.code} · fuel {result.fuel} · {status}")
    for level, text in result.output.logs:
        level_name = LOG_LEVELS.get(level, str(level))
        stdout.print(f"  log        {escape(f'[{level_name}]')} {shown(text)}")
    for stream, text in (("stdout", result.output.stdout), ("stderr", result.output.stderr)):
        for line in text.splitlines()[:50]:
            stdout.print(f"  {stream:<10} {shown(line)}")
    if result.output.dropped:
        stdout.print(f"  output     {result.output.dropped} bytes dropped over the per-call limit")
    if ended.error:
        stdout.print(f"  shutdown   [red]{shown(ended.error)}[/]")


@app.command("inspect")
@reports_errors
def inspect_command(
    plugin: Annotated[str, typer.Argument(help="A .wasm file or the name of an installed plugin.")],
    trust_store: TrustStoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show imports, exports, ABI, metadata, capabilities and signature status."""
    from conductor.paths import trust_store_path
    from conductor.plugins.inspection import inspect_plugin
    from conductor.plugins.loader import resolve_plugin
    from conductor.signing import TrustStore

    found = inspect_plugin(
        resolve_plugin(plugin, Path.cwd()), TrustStore(trust_store_path(trust_store))
    )
    if json_output:
        print_json(found.to_json())
    else:
        _print_inspection(found)
    raise typer.Exit(0 if found.ok else 1)


def _print_inspection(found: Inspection) -> None:
    # Import and export names, metadata, hosts, commands and the signer are the plugin's text.
    abi, metadata, verdict = found.abi, found.metadata, found.verdict
    stdout.print(f"[bold]{shown(found.plugin)}[/]  {shown(str(found.path))}  {found.size} bytes")
    abi_line = "[green]ok[/]" if abi.ok else "[red]" + shown("; ".join(abi.problems)) + "[/]"
    stdout.print(f"  ABI          {abi_line}")
    for item in abi.imports:
        stdout.print(f"  import       {shown(item.qualified)}: {shown(item.kind)}")
    for name, kind in abi.exports:
        stdout.print(f"  export       {shown(name)}: {shown(kind)}")
    if metadata:
        stdout.print(
            f"  metadata     {shown(metadata.name)} {shown(metadata.version)} — {shown(metadata.description)}"
        )
    if found.metadata_error:
        stdout.print(f"  metadata     [red]{shown(found.metadata_error)}[/]")
    for cap in found.capabilities:
        stdout.print(f"  capability   {cap.value} ({cap.risk.value} risk)")
    for pattern in metadata.hosts if metadata else ():
        stdout.print(f"  host         {shown(pattern)}")
    for name in metadata.commands if metadata else ():
        stdout.print(f"  command      {shown(name)}")
    for action in metadata.actions if metadata else ():
        aliases = f" (also: {', '.join(action.aliases)})" if action.aliases else ""
        line = f"{action.usage} — {action.description}{aliases}"
        stdout.print(f"  action       {shown(line)}")
    for warning in found.warnings:
        stdout.print(f"  [yellow]warning[/]      {shown(warning.describe())}")
    reason = f" — {verdict.reason}" if verdict.reason else ""
    stdout.print(f"  signature    {shown(verdict.summary() + reason)}")


@app.command("install")
@reports_errors
def install_command(
    plugin: Annotated[
        Path, typer.Argument(help="The .wasm file to install (its .sig is copied too).")
    ],
    policy: PolicyOption = None,
    trust_store: TrustStoreOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an installed plugin of the same name.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Verify a plugin, then copy it and its signature into the plugins directory."""
    from conductor.paths import trust_store_path
    from conductor.plugins import installed
    from conductor.signing import TrustStore

    done = installed.install(
        plugin, _policy(policy), TrustStore(trust_store_path(trust_store)), force=force
    )
    if json_output:
        print_json(done.to_json())
        return
    for warning in done.warnings:
        stderr.print(f"warning: {visible(warning)}", markup=False)
    what = "installed" if done.changed else "already installed, identical:"
    stdout.print(
        f"{what} {escape(done.plugin)} -> {escape(str(done.path))} "
        f"({escape(visible(done.verdict.summary()))})"
    )


@app.command("list")
@reports_errors
def list_command(
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            help="Read metadata (by running init) only from plugins this policy accepts: "
            "trusted (default), self-signed or unsigned.",
        ),
    ] = None,
    trust_store: TrustStoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Installed plugins with version, signer and grants."""
    from rich.table import Table

    from conductor.paths import grants_file, module_cache_dir, plugins_dir, trust_store_path
    from conductor.plugins import installed
    from conductor.plugins.grants import GrantStore
    from conductor.plugins.interrupts import main_thread_host
    from conductor.signing import TrustStore

    directory = plugins_dir()
    with main_thread_host(module_cache_dir()) as host:
        found = installed.list_installed(
            host,
            _policy(policy),
            TrustStore(trust_store_path(trust_store)),
            GrantStore(grants_file()),
            directory,
        )
    rows = [item.to_json() for item in found]
    if json_output:
        print_json({"plugins_dir": str(directory), "plugins": rows})
        return
    if not rows:
        stdout.print(f"no plugins installed in {escape(str(directory))}")
        return
    table = Table("plugin", "version", "signature", "requested", "granted", title=str(directory))
    for row in rows:
        signature = row["signature"] or {}
        signer = signature.get("signer") or {}
        status = signature.get("status", "unreadable")
        table.add_row(
            shown(row["plugin"]),
            shown(row["version"] or "?"),
            shown(f"{status} {signer.get('name', '')}".strip()),
            ", ".join(row["requested"] or []),
            ", ".join(row["granted"]),
        )
    stdout.print(table)
    for row in rows:
        if row["error"]:
            stderr.print(
                f"warning: {visible(row['plugin'])}: metadata not read: {visible(row['error'])}",
                markup=False,
            )


def _granted_line(grant: Grant) -> str:
    granted = ", ".join(sorted(c.value for c in grant.capabilities)) or "nothing"
    return f"{escape(grant.plugin)}: granted {granted}"


@app.command("grant")
@reports_errors
def grant_command(
    name: Annotated[str, typer.Argument(help="Installed plugin name (or a .wasm path).")],
    capabilities: Annotated[
        list[str], typer.Argument(help="Network, Filesystem, Subprocess, SystemControl.")
    ],
    host: Annotated[
        list[str] | None, typer.Option("--host", help="Approve a host pattern (with Network).")
    ] = None,
    command: Annotated[
        list[str] | None, typer.Option("--command", help="Approve a command (with Subprocess).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Approve capabilities, hosts and commands for a plugin (remembered per plugin name and signing key)."""
    from conductor.paths import grants_file, trust_store_path
    from conductor.plugins import installed
    from conductor.plugins.grants import GrantStore
    from conductor.processes import resolve_command
    from conductor.signing import TrustStore

    caps = _capabilities(capabilities)
    hosts = _host_patterns(host)
    resolved: dict[str, str] = {}
    for item in command or []:
        found = resolve_command(item)
        if found is None:
            raise UsageError(f"--command {item!r}: not found on PATH")
        resolved[item] = found
    result = installed.grant(
        name,
        TrustStore(trust_store_path()),
        GrantStore(grants_file()),
        capabilities=caps,
        hosts=hosts,
        commands=resolved,
        base_dir=Path.cwd(),
    )
    plugin = result.plugin
    if json_output:
        print_json(result.to_json())
        return
    for cap in sorted(caps, key=lambda c: c.value):
        if cap.risk is Risk.HIGH:
            stdout.print(
                f"[yellow]warning:[/] {cap.value} is high risk: {escape(plugin)} may act outside its sandbox"
            )
    for item, path in resolved.items():
        stdout.print(f"{escape(plugin)}: command {escape(item)} approved as {escape(path)}")
    for pattern in hosts:
        stdout.print(f"{escape(plugin)}: host {escape(pattern)} approved")
    stdout.print(_granted_line(result))


@app.command("revoke")
@reports_errors
def revoke_command(
    name: Annotated[str, typer.Argument(help="Installed plugin name (or a .wasm path).")],
    capabilities: Annotated[
        list[str] | None, typer.Argument(help="Capabilities to withdraw.")
    ] = None,
    host: Annotated[
        list[str] | None, typer.Option("--host", help="Withdraw a host approval.")
    ] = None,
    command: Annotated[
        list[str] | None, typer.Option("--command", help="Withdraw a command approval.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Withdraw approved capabilities, hosts or commands."""
    from conductor.paths import grants_file, trust_store_path
    from conductor.plugins import installed
    from conductor.plugins.grants import GrantStore
    from conductor.signing import TrustStore

    result = installed.revoke(
        name,
        TrustStore(trust_store_path()),
        GrantStore(grants_file()),
        capabilities=_capabilities(capabilities),
        hosts=tuple(host or ()),
        commands=tuple(command or ()),
        base_dir=Path.cwd(),
    )
    if json_output:
        print_json(result.to_json())
    else:
        stdout.print(_granted_line(result))


@app.command("new")
@reports_errors
def new_command(
    name: Annotated[str, typer.Argument(help="Plugin name (lower-case, - and _ allowed).")],
    lang: Annotated[str, typer.Option("--lang", help="rust, c or wat.")] = "c",
    directory: Annotated[Path, typer.Option("--dir", help="Where to create the project.")] = Path(
        "."
    ),
    json_output: JsonOption = False,
) -> None:
    """Create a plugin project that builds with one command and runs with `plugin exec`."""
    from conductor.plugins.scaffold import new_plugin

    project = new_plugin(name, lang, directory)
    if json_output:
        print_json(
            {
                "project": str(project.directory),
                "language": lang,
                "build": project.build,
                "artifact": str(project.artifact),
                "notes": list(project.notes),
            }
        )
    else:
        for note in project.notes:
            stdout.print(escape(note))
        stdout.print(
            f"created {escape(str(project.directory))}; build it with: "
            f"cd {escape(str(project.directory))} && {project.build} (makes {escape(project.artifact.name)})"
        )


@app.command("setup")
@reports_errors
def setup_command(
    name: Annotated[str, typer.Argument(help="The plugin to set up (spotify).")],
    client_id: Annotated[str, typer.Option("--client-id", help="Your Spotify app's client ID.")],
    accounts_base: Annotated[
        str, typer.Option("--accounts-base", help="Authorization server.")
    ] = spotify_app.ACCOUNTS,
    port: Annotated[
        int,
        typer.Option(
            "--port",
            help="Loopback port of the redirect URI registered in your Spotify app "
            "(http://127.0.0.1:PORT/callback; 0: any free port).",
        ),
    ] = spotify_app.CALLBACK_PORT,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Only print the address to open.")
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", help="Seconds (wall time) to wait for the authorization."),
    ] = 300,
) -> None:
    """Authorize an official plugin once (Spotify: authorization code with PKCE, loopback redirect)."""
    from conductor.plugins.bundled import spotify_setup

    if name != "spotify":
        raise UsageError(f"plugin setup: only spotify needs a set-up step, not {name!r}")

    result = spotify_setup.run_setup(
        client_id, accounts_base, port, not no_browser, timeout, typer.echo
    )
    typer.echo(f"Saved the refresh token to {result.token_file} (mode 0600).")
    typer.echo("Add to your config:\n")
    typer.echo(result.config_lines)
    typer.echo(
        f'and before `conductor run`: export {spotify_app.TOKEN_ENV}="$(cat {result.token_file})"'
    )
