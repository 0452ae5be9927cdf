"""The `conductor-sign` command line: argument parsing and output over `conductor.signing`."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from conductor._console import (
    error_line,
    print_json,
    reports_errors,
    shown,
    stdout,
)
from conductor._files import (
    PLUGIN_LIMIT,
    read_bytes,
    write_atomic,
)
from conductor._shell import JsonOption, TrustStoreOption, make_app
from conductor.errors import FileError, KeyFileError, UsageError, overall_exit_code
from conductor.paths import trust_store_path
from conductor.signing import (
    Developer,
    SignaturePolicy,
    Status,
    TrustedKey,
    TrustRoots,
    TrustStore,
    Verdict,
    generate_key,
    load_signing_key,
    sign_plugin,
    signature_path_of,
    signing_key_from_env,
    verify_file,
)
from conductor.signing.keys import PASSPHRASE_ENV, require_passphrase

app = make_app(
    "conductor-sign",
    "Create signing keys, sign Conductor WASM plugins, verify them and manage trusted keys.",
)
trust_app = typer.Typer(help="Manage the keys whose signatures are trusted.", no_args_is_help=True)
app.add_typer(trust_app, name="trust")


def _passphrase(confirm: bool) -> str:
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env is not None:
        return require_passphrase(from_env, f"{PASSPHRASE_ENV} is set but empty")
    if not sys.stdin.isatty():
        raise KeyFileError(
            f"the key is encrypted: set {PASSPHRASE_ENV} or run on a terminal to be asked"
        )
    value = typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
    return require_passphrase(value, "typed at the prompt")


@app.command("generate-key")
@reports_errors
def generate_key_command(
    prefix: Annotated[Path, typer.Argument(help="Writes PREFIX.private (0600) and PREFIX.public.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing key files.")] = False,
    passphrase: Annotated[
        bool,
        typer.Option(
            "--passphrase",
            help=f"Encrypt the private key (passphrase from ${PASSPHRASE_ENV} or a prompt).",
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Generate an Ed25519 key pair and print its public key."""
    secret = _passphrase(confirm=True) if passphrase else None
    key = generate_key(prefix.expanduser(), force=force, passphrase=secret)
    public_hex = bytes(key.verify_key).hex()
    if json_output:
        print_json(
            {
                "public_key": public_hex,
                "private": f"{prefix}.private",
                "public": f"{prefix}.public",
                "encrypted": passphrase,
            }
        )
    else:
        typer.echo(public_hex)


def _signed_at() -> datetime:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch:
        return datetime.now(UTC)
    try:
        return datetime.fromtimestamp(int(epoch), UTC)
    except (ValueError, OverflowError, OSError):
        raise UsageError(f"SOURCE_DATE_EPOCH={epoch!r} is not a Unix timestamp") from None


@app.command("sign")
@reports_errors
def sign_command(
    arguments: Annotated[
        list[Path],
        typer.Argument(
            help="PLUGIN... KEY (KEY is omitted with --key-env).", metavar="PLUGIN... KEY"
        ),
    ],
    name: Annotated[str, typer.Option("--name", help="Developer name recorded in the signature.")],
    email: Annotated[
        str, typer.Option("--email", help="Developer email recorded in the signature.")
    ],
    key_env: Annotated[
        str | None,
        typer.Option("--key-env", help="Read the 64-hex seed from this environment variable."),
    ] = None,
    signature_format: Annotated[
        str, typer.Option("--format", help="v2 (signs all fields) or v1.")
    ] = "v2",
    json_output: JsonOption = False,
) -> None:
    """Write PLUGIN.sig next to each plugin."""
    if signature_format not in ("v1", "v2"):
        raise UsageError(f"--format: {signature_format!r} is not v1 or v2")
    if key_env is not None:
        plugins, key = arguments, signing_key_from_env(key_env)
    else:
        if len(arguments) < 2:
            raise UsageError("sign needs at least one PLUGIN and a KEY (or --key-env VAR)")
        plugins = arguments[:-1]
        key = load_signing_key(arguments[-1].expanduser(), lambda: _passphrase(confirm=False))
    developer = Developer(name=name, email=email)
    signed_at = _signed_at()
    contents = {plugin: read_bytes(plugin, "plugin", PLUGIN_LIMIT) for plugin in plugins}
    results = []
    for plugin, data in contents.items():
        signature = sign_plugin(data, key, developer, signed_at, version=int(signature_format[1]))
        sig_path = signature_path_of(plugin)
        write_atomic(sig_path, signature.to_json().encode("utf-8"))
        results.append(
            {
                "plugin": str(plugin),
                "signature": str(sig_path),
                "sha256": signature.plugin_hash.hex(),
            }
        )
    if json_output:
        print_json(
            {
                "public_key": bytes(key.verify_key).hex(),
                "format": signature_format,
                "signed": results,
            }
        )
    else:
        for result in results:
            stdout.print(f"signed {shown(result['plugin'])} -> {shown(result['signature'])}")


_STATUS_STYLE = {
    Status.TRUSTED: "[green]✓ trusted[/]",
    Status.SELF_SIGNED: "[yellow]✓ valid (self-signed)[/]",
    Status.UNSIGNED: "[yellow]! unsigned[/]",
    Status.UNTRUSTED: "[yellow]✗ untrusted key[/]",
    Status.MISSING: "[red]✗ unsigned[/]",
    Status.INVALID: "[red]✗ invalid[/]",
    Status.REFUSED: "[red]✗ refused (format version)[/]",
}


def _print_verdict(plugin: Path, verdict: Verdict) -> None:
    if verdict.status is Status.UNREADABLE:  # not a verdict on a signature: a file error
        error_line(verdict.reason)
        return
    stdout.print(f"{shown(str(plugin))}: {_STATUS_STYLE[verdict.status]}")
    for label, text in verdict.details():
        tag = "[yellow]note:[/]" if label == "note" else f"{label}:"
        stdout.print(f"  {tag}{' ' * (8 - len(label))}{shown(text)}")


def _verify_one(
    plugin: Path,
    sig_path: Path | None,
    policy: SignaturePolicy,
    roots: TrustRoots,
    min_version: int,
) -> Verdict:
    """The verdict on one plugin; an unreadable plugin or signature file is a verdict too, so
    one bad file never hides the others' results."""
    try:
        checked = verify_file(
            plugin, policy, roots, min_version=min_version, signature_path=sig_path
        )
    except FileError as exc:
        return Verdict(Status.UNREADABLE, exc.diagnostics())
    return checked.verdict


@app.command("verify")
@reports_errors
def verify_command(
    plugins: Annotated[list[Path], typer.Argument(help="Plugins to check.")],
    sig: Annotated[
        Path | None, typer.Option("--sig", help="Signature file (one plugin only).")
    ] = None,
    trust_store: TrustStoreOption = None,
    allow_self_signed: Annotated[
        bool, typer.Option("--allow-self-signed", help="Accept a valid signature by any key.")
    ] = False,
    min_version: Annotated[
        int,
        typer.Option(
            "--min-version",
            min=1,
            max=2,
            help="Lowest signature format accepted: 2 refuses v1, whose developer fields are unauthenticated.",
        ),
    ] = 1,
    json_output: JsonOption = False,
) -> None:
    """Verify plugin signatures: exit 0 all trusted, 1 any failure, 3 valid but untrusted key."""
    if sig is not None and len(plugins) != 1:
        raise UsageError("--sig names the signature of a single plugin")
    store = TrustStore(trust_store_path(trust_store))
    policy = SignaturePolicy.SELF_SIGNED if allow_self_signed else SignaturePolicy.TRUSTED
    roots = TrustRoots(store)  # conductor-sign judges signatures: no file is bundled here
    verdicts = [
        (plugin, _verify_one(plugin, sig, policy, roots, min_version)) for plugin in plugins
    ]
    code = overall_exit_code(verdict.exit_code for _, verdict in verdicts)
    if json_output:
        print_json(
            {
                "ok": code == 0,
                "trust_store": str(store.path),
                "policy": policy.value,
                "min_version": min_version,
                "plugins": [
                    {"plugin": str(plugin), **verdict.to_json()} for plugin, verdict in verdicts
                ],
            }
        )
    else:
        for plugin, verdict in verdicts:
            _print_verdict(plugin, verdict)
    raise typer.Exit(code)


@trust_app.command("add")
@reports_errors
def trust_add(
    public_key: Annotated[str, typer.Argument(help="64 hex characters.")],
    name: Annotated[str, typer.Argument(help="Who the key belongs to.")],
    email: Annotated[str, typer.Option("--email", help="Contact address.")] = "",
    trust_store: TrustStoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Trust signatures made by PUBLIC_KEY."""
    store = TrustStore(trust_store_path(trust_store))
    entry = store.add(public_key, name, email)
    if json_output:
        print_json({"added": _entry_json(entry), "trust_store": str(store.path)})
    else:
        stdout.print(f"trusted {entry.hex} as {shown(entry.name)} in {shown(str(store.path))}")


def _entry_json(entry: TrustedKey) -> dict[str, str]:
    return {
        "public_key": entry.hex,
        "name": entry.name,
        "email": entry.email,
        "added_at": entry.added_at,
    }


@trust_app.command("list")
@reports_errors
def trust_list(trust_store: TrustStoreOption = None, json_output: JsonOption = False) -> None:
    """List trusted keys."""
    store = TrustStore(trust_store_path(trust_store))
    entries = store.keys()
    if json_output:
        print_json(
            {"trust_store": str(store.path), "keys": [_entry_json(entry) for entry in entries]}
        )
        return
    if not entries:
        stdout.print(f"no trusted keys in {shown(str(store.path))}")
        return
    from rich.table import Table  # only this listing draws a table

    table = Table("name", "email", "public key", "added", title=shown(str(store.path)))
    for entry in entries:
        table.add_row(shown(entry.name), shown(entry.email), entry.hex, shown(entry.added_at))
    stdout.print(table)


@trust_app.command("remove")
@reports_errors
def trust_remove(
    public_key: Annotated[str, typer.Argument(help="The key to stop trusting.")],
    trust_store: TrustStoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Stop trusting PUBLIC_KEY; every other entry is kept."""
    store = TrustStore(trust_store_path(trust_store))
    entry = store.remove(public_key)
    if json_output:
        print_json({"removed": _entry_json(entry), "trust_store": str(store.path)})
    else:
        stdout.print(f"removed {entry.hex} ({shown(entry.name)}) from {shown(str(store.path))}")
