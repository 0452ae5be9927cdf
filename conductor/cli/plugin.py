"""`conductor plugin …`: run, inspect, install and grant single plugins (for plugin authors)."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from conductor._console import print_json, reports_errors, shown, stderr, stdout
from conductor._redact import Redactor
from conductor._text import visible
from conductor.cli._options import JsonOption, PolicyOption, TrustStoreOption
from conductor.engine.config import load_config
from conductor.engine.plugins import plugin_options
from conductor.errors import (
    CapabilityError,
    ConductorError,
    FileError,
    LimitError,
    PatternError,
    PolicyError,
    UsageError,
)
from conductor.paths import default_trust_store, grants_file, module_cache_dir, plugins_dir
from conductor.plugins import bundled, installed
from conductor.plugins.abi import EventContext, RequestTemplate
from conductor.plugins.bundled import spotify_setup
from conductor.plugins.capabilities import Capability, Risk, parse_all
from conductor.plugins.grants import GrantStore
from conductor.plugins.host import HOST_FUNCTIONS
from conductor.plugins.limits import MIB, Limits
from conductor.plugins.loader import (
    LoadOptions,
    load_plugin,
    plugin_name,
    resolve_plugin,
)
from conductor.plugins.network.patterns import HostPattern
from conductor.plugins.runtime import Plugin, PluginHost
from conductor.plugins.sandbox import LOG_LEVELS
from conductor.plugins.scaffold import new_plugin
from conductor.signing import SignaturePolicy, TrustStore, verify_file

app = typer.Typer(help="Run, inspect, install and grant single plugins.", no_args_is_help=True)


def _policy(value: str | None) -> SignaturePolicy:
    try:
        return SignaturePolicy.parse(value or "trusted", "--policy")
    except PolicyError as exc:
        raise UsageError(exc.diagnostics(), cause=exc) from exc


def _capabilities(names: list[str] | None) -> frozenset[Capability]:
    try:
        return parse_all(names or [])
    except CapabilityError as exc:
        raise UsageError(exc.diagnostics(), cause=exc) from exc


def parse_event(spec: str | None) -> EventContext:
    """`note:60:100[:channel]` or `cc:7:64[:channel]` into a request context."""
    timestamp = int(time.time() * 1000)
    if spec is None:
        return EventContext(trigger="Manual", timestamp=timestamp, device="conductor plugin exec")
    parts = spec.split(":")
    kind = parts[0].lower()
    try:
        numbers = [int(part) for part in parts[1:]]
    except ValueError:
        raise UsageError(
            f"--event {spec!r}: numbers expected, as in note:60:100 or cc:7:64"
        ) from None
    if (
        kind not in ("note", "cc")
        or not 2 <= len(parts) <= 4
        or not all(0 <= n <= 127 for n in numbers[:2])
    ):
        raise UsageError(
            f"--event {spec!r}: expected note:NOTE[:VELOCITY[:CHANNEL]] or cc:CC[:VALUE[:CHANNEL]]"
        )
    first, second = numbers[0], numbers[1] if len(numbers) > 1 else (100 if kind == "note" else 0)
    channel = numbers[2] if len(numbers) > 2 else 0
    if not 0 <= channel <= 15:
        raise UsageError(f"--event {spec!r}: channel must be 0-15")
    device = "conductor plugin exec"
    if kind == "note":
        return EventContext(
            "Note", note=first, velocity=second, channel=channel, timestamp=timestamp, device=device
        )
    return EventContext(
        "CC", cc=first, value=second, channel=channel, timestamp=timestamp, device=device
    )


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


def _limits(
    fuel: int | None, memory_mb: int | None, timeout_ms: int | None, base: Limits | None = None
) -> Limits:
    overrides: dict[str, int] = {}
    if fuel is not None:
        overrides["max_fuel"] = fuel
    if memory_mb is not None:
        overrides["max_memory_bytes"] = memory_mb * MIB
    if timeout_ms is not None:
        overrides["timeout_ms"] = timeout_ms
    try:
        return (base or Limits()).with_overrides(overrides, "limits")
    except LimitError as exc:
        raise UsageError(exc.diagnostics(), cause=exc) from exc


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
    request = RequestTemplate(_params(params)).render(parse_event(event))
    for pattern in host or []:
        try:
            HostPattern.parse(pattern)
        except PatternError as exc:
            raise UsageError.at("--host", exc) from exc
    path = resolve_plugin(plugin, Path.cwd())
    grants = GrantStore(grants_file())
    if config is not None:
        plugins = load_config(config).plugins
        redactor.add(plugins.all_secrets)
        store = TrustStore(trust_store or plugins.trust_store or default_trust_store())
        base = plugin_options(plugins, plugin_name(path), store, plugins.limits, grants, None)
        options = replace(
            base,
            policy=_policy(policy) if policy else base.policy,
            limits=_limits(fuel, memory_mb, timeout_ms, base.limits),
            approvals=base.approvals | _capabilities(grant),
        )
    else:
        options = LoadOptions(
            policy=_policy(policy),
            trust_store=TrustStore(default_trust_store(trust_store)),
            limits=_limits(fuel, memory_mb, timeout_ms),
            approvals=_capabilities(grant),
            grants=grants,
        )
    # The loader's approver takes them like remembered grants, for this load only.
    options = replace(
        options, approved_hosts=tuple(host or ()), approved_commands=tuple(command or ())
    )
    with PluginHost(module_cache_dir()) as plugin_host:
        loaded = load_plugin(plugin_host, path, options)
        result = loaded.plugin.execute(request)
        ended = loaded.plugin.shutdown()
    phases = {**loaded.phases_ms, "execute": result.wall_ms, "shutdown": ended.wall_ms}
    if json_output:
        print_json(
            {
                "plugin": loaded.plugin.name,
                "path": str(path),
                "metadata": loaded.metadata.to_json(),
                "signature": loaded.verdict.to_json(),
                "granted": sorted(cap.value for cap in loaded.plugin.granted),
                "compiled_from_cache": loaded.compiled_from_cache,
                "phases_ms": {name: round(ms, 3) for name, ms in phases.items()},
                "result": result.to_json(),
                "shutdown": ended.to_json(),
            }
        )
    else:
        # Everything below but our own labels and numbers is the plugin's (or its signer's) text.
        meta = loaded.metadata
        stdout.print(
            f"[bold]{shown(loaded.plugin.name)}[/] {shown(meta.version)}  {shown(str(path))}"
        )
        stdout.print(f"  signature  {shown(loaded.verdict.summary())}")
        granted = ", ".join(sorted(cap.value for cap in loaded.plugin.granted)) or "none"
        stdout.print(f"  granted    {granted}")
        timing = " · ".join(f"{name} {ms:.2f} ms" for name, ms in phases.items())
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
            stdout.print(
                f"  output     {result.output.dropped} bytes dropped over the per-call limit"
            )
        if ended.error:
            stdout.print(f"  shutdown   [red]{shown(ended.error)}[/]")
    raise typer.Exit(0 if result.ok else 1)


@app.command("inspect")
@reports_errors
def inspect_command(
    plugin: Annotated[str, typer.Argument(help="A .wasm file or the name of an installed plugin.")],
    trust_store: TrustStoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show imports, exports, ABI, metadata, capabilities and signature status."""
    path = resolve_plugin(plugin, Path.cwd())
    store = TrustStore(default_trust_store(trust_store))
    checked = verify_file(path, SignaturePolicy.TRUSTED, bundled.trust_roots(store))
    wasm, verdict = checked.data, checked.verdict
    with PluginHost(None) as host:
        module, _ = host.compile(plugin_name(path), wasm, hashlib.sha256(wasm).digest())
        abi = host.inspect(module)
        metadata, metadata_error = None, None
        if abi.ok:
            with Plugin(host, plugin_name(path), module, abi, Limits()) as candidate:
                try:
                    metadata = candidate.start()
                except ConductorError as exc:
                    metadata_error = exc.diagnostics()
    capabilities = sorted(metadata.capabilities, key=lambda c: c.value) if metadata else []
    gated = {
        function.name: function.capability for function in HOST_FUNCTIONS if function.capability
    }
    import_warnings = [
        f"imports {item.qualified}, which needs {gated[item.name].value}, but the metadata does not request it"
        for item in abi.imports
        if item.module == "conductor"
        and item.name in gated
        and metadata is not None
        and gated[item.name] not in metadata.capabilities
    ]
    report: dict[str, Any] = {
        "plugin": plugin_name(path),
        "path": str(path),
        "size": len(wasm),
        "abi": {
            "ok": abi.ok,
            "problems": list(abi.problems),
            "init_metadata": abi.init_returns_metadata,
            "dealloc": abi.has_dealloc,
            "reactor_initialize": abi.has_initialize,
        },
        "imports": [{"module": i.module, "name": i.name, "type": i.kind} for i in abi.imports],
        "exports": [{"name": name, "type": kind} for name, kind in abi.exports],
        "metadata": metadata.to_json() if metadata else None,
        "metadata_error": metadata_error,
        "capabilities": [{"name": c.value, "risk": c.risk.value} for c in capabilities],
        "hosts": list(metadata.hosts) if metadata else [],
        "commands": list(metadata.commands) if metadata else [],
        "actions": [action.to_json() for action in metadata.actions] if metadata else [],
        "import_warnings": import_warnings,
        "signature": verdict.to_json(),
    }
    if json_output:
        print_json(report)
    else:
        # Import and export names, metadata, hosts, commands and the signer are the plugin's text.
        stdout.print(f"[bold]{shown(report['plugin'])}[/]  {shown(str(path))}  {len(wasm)} bytes")
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
        if metadata_error:
            stdout.print(f"  metadata     [red]{shown(metadata_error)}[/]")
        for cap in capabilities:
            stdout.print(f"  capability   {cap.value} ({cap.risk.value} risk)")
        for pattern in report["hosts"]:
            stdout.print(f"  host         {shown(pattern)}")
        for name in report["commands"]:
            stdout.print(f"  command      {shown(name)}")
        for action in metadata.actions if metadata else ():
            aliases = f" (also: {', '.join(action.aliases)})" if action.aliases else ""
            line = f"{action.usage} — {action.description}{aliases}"
            stdout.print(f"  action       {shown(line)}")
        for warning in import_warnings:
            stdout.print(f"  [yellow]warning[/]      {shown(warning)}")
        reason = f" — {verdict.reason}" if verdict.reason else ""
        stdout.print(f"  signature    {shown(verdict.summary() + reason)}")
    raise typer.Exit(0 if abi.ok and metadata_error is None else 1)


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
    done = installed.install(
        plugin, _policy(policy), TrustStore(default_trust_store(trust_store)), force=force
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
    directory = plugins_dir()
    with PluginHost(module_cache_dir()) as host:
        found = installed.list_installed(
            host,
            _policy(policy),
            TrustStore(default_trust_store(trust_store)),
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


def _grant_target(name: str) -> tuple[str, str]:
    return installed.grant_target(name, TrustStore(default_trust_store()), Path.cwd())


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
    caps = _capabilities(capabilities)
    for pattern in host or []:
        try:
            HostPattern.parse(pattern)
        except PatternError as exc:
            raise UsageError.at("--host", exc) from exc
    resolved: dict[str, str] = {}
    for item in command or []:
        found = shutil.which(item)
        if found is None:
            raise UsageError(f"--command {item!r}: not found on PATH")
        resolved[item] = str(Path(found).resolve())
    plugin, key = _grant_target(name)
    result = GrantStore(grants_file()).update(
        plugin, key, add=caps, hosts=tuple(host or ()), commands=resolved
    )
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
    for pattern in host or []:
        stdout.print(f"{escape(plugin)}: host {escape(pattern)} approved")
    stdout.print(
        f"{escape(plugin)}: granted {', '.join(sorted(c.value for c in result.capabilities)) or 'nothing'}"
    )


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
    plugin, key = _grant_target(name)
    store = GrantStore(grants_file())
    if not any(g.plugin == plugin and g.key == key for g in store.all()):
        raise FileError(f"{store.path}: no grants recorded for plugin {plugin!r}")
    result = store.update(
        plugin,
        key,
        remove=_capabilities(capabilities),
        remove_hosts=tuple(host or ()),
        remove_commands=tuple(command or ()),
    )
    if json_output:
        print_json(result.to_json())
    else:
        stdout.print(
            f"{escape(plugin)}: granted {', '.join(sorted(c.value for c in result.capabilities)) or 'nothing'}"
        )


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
    ] = spotify_setup.ACCOUNTS,
    port: Annotated[
        int,
        typer.Option(
            "--port",
            help="Loopback port of the redirect URI registered in your Spotify app "
            "(http://127.0.0.1:PORT/callback; 0: any free port).",
        ),
    ] = spotify_setup.CALLBACK_PORT,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Only print the address to open.")
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", help="Seconds (wall time) to wait for the authorization."),
    ] = 300,
) -> None:
    """Authorize an official plugin once (Spotify: authorization code with PKCE, loopback redirect)."""
    if name != "spotify":
        raise UsageError(f"plugin setup: only spotify needs a set-up step, not {name!r}")

    result = spotify_setup.run_setup(
        client_id, accounts_base, port, not no_browser, timeout, typer.echo
    )
    typer.echo(f"Saved the refresh token to {result.token_file} (mode 0600).")
    typer.echo("Add to your config:\n")
    typer.echo(result.config_lines)
    typer.echo(
        f'and before `conductor run`: export {spotify_setup.TOKEN_ENV}="$(cat {result.token_file})"'
    )
