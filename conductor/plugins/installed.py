"""Installed plugins (`~/.conductor/wasm-plugins/`): installing one from the very bytes that were
verified, listing them without running unverified code, and the plugin and key that `plugin
grant`/`revoke` record approvals under.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conductor._files import PLUGIN_LIMIT, SIGNATURE_LIMIT, read_bytes, write_atomic
from conductor.errors import ConductorError, FileError, PluginError, SignatureError
from conductor.paths import plugins_dir
from conductor.plugins import bundled
from conductor.plugins.abi import Metadata
from conductor.plugins.capabilities import Capability
from conductor.plugins.grants import Grant, GrantStore
from conductor.plugins.inspection import start_ungranted
from conductor.plugins.loader import plugin_name, resolve_plugin
from conductor.plugins.runtime import PluginHost
from conductor.signing import (
    SignaturePolicy,
    Status,
    TrustStore,
    Verdict,
    signature_path_of,
    verify_file,
)


@dataclass(frozen=True)
class Installation:
    """What `install` did."""

    plugin: str
    path: Path
    verdict: Verdict
    changed: bool  # False when identical files were already installed
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "installed": str(self.path),
            "plugin": self.plugin,
            "changed": self.changed,
            "signature": self.verdict.to_json(),
            "warnings": list(self.warnings),
        }


def _shadowing_warning(name: str) -> tuple[str, ...]:
    if bundled.path_of(name) is None:
        return ()
    return (
        f"{name} now shadows the bundled plugin of that name: configs and commands naming "
        f"{name!r} load this one, and it receives [plugins.config.{name}], [plugins.hosts] and "
        f"[plugins.commands] entries meant for the official plugin",
    )


def _holds(path: Path, data: bytes | None, limit: int) -> bool:
    """True when `path` already holds exactly `data` as a regular file (None: is absent)."""
    if data is None:
        return not os.path.lexists(path)
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        return read_bytes(path, "installed file", limit) == data
    except (OSError, FileError):
        return False


def _describe_present(path: Path) -> str:
    if path.is_symlink():
        return f"{path}: already present, a symlink to {os.readlink(path)}"
    return f"{path}: already installed"


def install(
    source: Path,
    policy: SignaturePolicy,
    store: TrustStore,
    *,
    force: bool = False,
    directory: Path | None = None,
) -> Installation:
    """Verify `source` (and its `.sig`) under `policy`, then write those same bytes into the
    plugins directory, atomically. Entries there are replaced, never followed: a symlink in the
    directory cannot make the install write outside it."""
    name = plugin_name(source)
    checked = verify_file(source, policy, bundled.trust_roots(store))
    wasm, signature, verdict = checked.data, checked.signature, checked.verdict
    verdict.raise_unless_accepted(str(source))
    home = directory or plugins_dir()
    try:
        home.mkdir(parents=True, exist_ok=True)
        home = home.resolve()
    except OSError as exc:
        raise FileError(f"{home}: cannot create the plugins directory: {exc.strerror}") from None
    target = home / f"{name}.wasm"
    sig_target = signature_path_of(target)
    present = [path for path in (target, sig_target) if os.path.lexists(path)]
    if present and not force:
        raise FileError(f"{_describe_present(present[0])} (use --force to replace it)")
    warnings = (*(f"{name}: {text}" for text in verdict.warnings), *_shadowing_warning(name))
    # Compared, not copied: installing a file over itself (or its twin) changes nothing.
    if _holds(target, wasm, PLUGIN_LIMIT) and _holds(sig_target, signature, SIGNATURE_LIMIT):
        return Installation(name, target, verdict, False, warnings)
    try:
        # The signature first: in between, the old plugin meets the new signature and is refused.
        if signature is None:
            sig_target.unlink(missing_ok=True)
        else:
            write_atomic(sig_target, signature)
        write_atomic(target, wasm)
    except OSError as exc:
        raise FileError(f"{target}: cannot install: {exc.strerror}") from None
    return Installation(name, target, verdict, True, warnings)


def _read_metadata(host: PluginHost, name: str, wasm: bytes) -> Metadata:
    """Instantiate `wasm` with no grants and no data directory, run `init`, discard it."""
    module, _ = host.compile(name, wasm, hashlib.sha256(wasm).digest())
    abi = host.inspect(module)
    if not abi.ok:
        raise PluginError(f"{name}: {abi.problems[0]}")
    return start_ungranted(host, name, module, abi)


@dataclass(frozen=True)
class InstalledPlugin:
    """One plugin of the plugins directory, as `plugin list` shows it."""

    plugin: str
    path: Path
    verdict: Verdict | None = None
    grant: Grant | None = None  # remembered approvals under the verified key
    metadata: Metadata | None = None  # read only when the verdict accepts the plugin
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        metadata = self.metadata
        return {
            "plugin": self.plugin,
            "path": str(self.path),
            "version": metadata.version if metadata else None,
            "signature": self.verdict.to_json() if self.verdict else None,
            "key": self.grant.key if self.grant else None,
            "requested": sorted(c.value for c in metadata.capabilities) if metadata else None,
            "granted": sorted(c.value for c in self.grant.capabilities) if self.grant else [],
            "error": self.error,
        }


def list_installed(
    host: PluginHost,
    policy: SignaturePolicy,
    store: TrustStore,
    grants: GrantStore,
    directory: Path | None = None,
) -> list[InstalledPlugin]:
    """Every `.wasm` in the plugins directory with its verdict under `policy` and its remembered
    grants; metadata is read (by running `init`) only from plugins the policy accepts."""
    home = directory or plugins_dir()
    roots = bundled.trust_roots(store)
    found = []
    for path in sorted(home.glob("*.wasm")) if home.is_dir() else []:
        name = path.name.removesuffix(".wasm")
        try:
            plugin_name(path)  # a file no plugin can be named after is listed with the reason
            checked = verify_file(path, policy, roots)
        except ConductorError as exc:
            found.append(InstalledPlugin(name, path, error=exc.diagnostics()))
            continue
        wasm, verdict = checked.data, checked.verdict
        grant = None if verdict.status is Status.INVALID else grants.find(name, verdict.signer_key)
        if not verdict.accepted:
            found.append(InstalledPlugin(name, path, verdict, grant, error=verdict.reason))
            continue
        try:
            metadata = _read_metadata(host, name, wasm)
        except ConductorError as exc:
            found.append(InstalledPlugin(name, path, verdict, grant, error=exc.diagnostics()))
            continue
        found.append(InstalledPlugin(name, path, verdict, grant, metadata))
    return found


def _grant_target(spec: str, store: TrustStore, base_dir: Path | None = None) -> tuple[str, str]:
    """The plugin name and key that approvals for `spec` (a name or a path) are recorded under:
    the same key the loader uses, from a signature checked against the plugin's bytes."""
    path = resolve_plugin(spec, base_dir)
    verdict = verify_file(path, SignaturePolicy.SELF_SIGNED, bundled.trust_roots(store)).verdict
    if verdict.status is Status.INVALID:
        raise SignatureError(
            f"{path}: {verdict.reason}; approvals are kept per signing key, so none can be "
            f"recorded for this plugin"
        )
    return plugin_name(path), verdict.signer_key


def grant(
    spec: str,
    store: TrustStore,
    grants: GrantStore,
    *,
    capabilities: frozenset[Capability] = frozenset(),
    hosts: tuple[str, ...] = (),
    commands: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> Grant:
    """Remember approvals for `spec` (a name or a path) under its signer key; `commands` maps
    each approved command to the absolute path it was resolved to."""
    plugin, key = _grant_target(spec, store, base_dir)
    return grants.update(plugin, key, add=capabilities, hosts=hosts, commands=dict(commands or {}))


def revoke(
    spec: str,
    store: TrustStore,
    grants: GrantStore,
    *,
    capabilities: frozenset[Capability] = frozenset(),
    hosts: tuple[str, ...] = (),
    commands: tuple[str, ...] = (),
    base_dir: Path | None = None,
) -> Grant:
    """Withdraw approvals remembered for `spec`; a FileError when none are."""
    plugin, key = _grant_target(spec, store, base_dir)
    if not any(entry.plugin == plugin and entry.key == key for entry in grants.all()):
        raise FileError(f"{grants.path}: no grants recorded for plugin {plugin!r}")
    return grants.update(
        plugin, key, remove=capabilities, remove_hosts=hosts, remove_commands=commands
    )
