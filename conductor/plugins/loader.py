"""From a plugin name or path to a running, verified, sandboxed plugin.

The file is read once; those bytes are verified and those bytes compiled. Capabilities are
granted from the plugin's own request (its metadata), capped by what the user approved.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from conductor._files import read_bytes
from conductor.errors import FileError, PluginError
from conductor.paths import plugin_data_dir, plugins_dir
from conductor.plugins.abi import Metadata
from conductor.plugins.capabilities import Capability, Risk, granted
from conductor.plugins.grants import UNSIGNED_KEY, GrantStore
from conductor.plugins.limits import Limits
from conductor.plugins.runtime import Plugin, PluginHost
from conductor.signing import SignaturePolicy, TrustStore, Verdict, verify_plugin
from conductor.signing.signature import MAX_SIGNATURE_FILE

_log = logging.getLogger("conductor.plugins")

Prompt = Callable[[str, Capability], bool]


@dataclass(frozen=True)
class LoadOptions:
    policy: SignaturePolicy
    trust_store: TrustStore
    limits: Limits = field(default_factory=Limits)
    approvals: frozenset[Capability] = frozenset()
    grants: GrantStore | None = None
    prompt: Prompt | None = None


@dataclass
class LoadedPlugin:
    """A started plugin with what was learned while loading it."""

    plugin: Plugin
    path: Path
    digest: bytes
    verdict: Verdict
    metadata: Metadata
    phases_ms: dict[str, float]
    compiled_from_cache: bool
    stamp: tuple[int, int] = (0, 0)  # (mtime_ns, size) when read: tells a reload the file changed

    @property
    def signer_key(self) -> str:
        signature = self.verdict.signature
        return signature.public_key.hex() if signature else UNSIGNED_KEY


def resolve_plugin(spec: str, base_dir: Path | None = None, directory: Path | None = None) -> Path:
    """A path (absolute, `~`, or relative to `base_dir`) or the bare name of an installed plugin."""
    looks_like_path = spec.endswith(".wasm") or "/" in spec or spec.startswith(("~", "."))
    if looks_like_path:
        path = Path(spec).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return path
    installed = (directory or plugins_dir()) / f"{spec}.wasm"
    if installed.is_file():
        return installed
    raise FileError(f"plugin {spec!r}: no {installed} (install it with `conductor plugin install`)")


def file_stamp(path: Path) -> tuple[int, int]:
    try:
        stat = os.stat(path)
    except OSError:
        return (0, 0)
    return stat.st_mtime_ns, stat.st_size


def plugin_name(path: Path) -> str:
    """A plugin's name is its file name without `.wasm`: metadata cannot claim another's name."""
    return path.name.removesuffix(".wasm")


def read_and_verify(path: Path, options: LoadOptions) -> tuple[bytes, Verdict]:
    """Read the plugin once and check its signature under the policy; raise unless accepted."""
    wasm = read_bytes(path, "plugin")
    sig_path = Path(f"{path}.sig")
    signature = (
        read_bytes(sig_path, "signature file", limit=MAX_SIGNATURE_FILE)
        if sig_path.exists()
        else None
    )
    verdict = verify_plugin(wasm, signature, options.policy, options.trust_store)
    verdict.raise_unless_accepted(str(path))
    for warning in verdict.warnings:
        _log.warning("%s: %s", path.name, warning)
    return wasm, verdict


def _approve(
    name: str, key: str, requested: frozenset[Capability], options: LoadOptions
) -> frozenset[Capability]:
    approved = set(options.approvals)
    if options.grants is not None:
        approved |= options.grants.approved(name, key)
    pending = sorted(
        (cap for cap in requested if cap.risk is not Risk.LOW and cap not in approved),
        key=lambda c: c.value,
    )
    if pending and options.prompt is not None:
        newly = frozenset(cap for cap in pending if options.prompt(name, cap))
        if newly and options.grants is not None:
            options.grants.grant(name, key, newly)
        approved |= newly
        pending = [cap for cap in pending if cap not in newly]
    for cap in pending:
        _log.warning(
            "%s requests %s (%s risk), not granted; approve with: conductor plugin grant %s %s",
            name,
            cap.value,
            cap.risk.value,
            name,
            cap.value,
        )
    return granted(requested, approved)


def load_plugin(host: PluginHost, path: Path, options: LoadOptions) -> LoadedPlugin:
    """Verify, compile, instantiate and initialise; raise a ConductorError naming the cause."""
    name = plugin_name(path)
    stamp = file_stamp(path)
    phases: dict[str, float] = {}
    started = time.perf_counter()
    wasm, verdict = read_and_verify(path, options)
    phases["read_verify"] = (time.perf_counter() - started) * 1000
    digest = hashlib.sha256(wasm).digest()

    started = time.perf_counter()
    module, cached = host.compile(name, wasm, digest)
    phases["compile"] = (time.perf_counter() - started) * 1000
    abi = host.inspect(module)
    if not abi.ok:
        raise PluginError(f"{name}: {abi.problems[0]}")

    started = time.perf_counter()
    plugin = Plugin(host, name, module, abi, options.limits, plugin_data_dir(name))
    metadata = plugin.start()
    key = verdict.signature.public_key.hex() if verdict.signature else UNSIGNED_KEY
    plugin.grant(_approve(name, key, metadata.capabilities, options))
    phases["instantiate_init"] = (time.perf_counter() - started) * 1000
    return LoadedPlugin(
        plugin, path, digest, verdict, plugin.metadata or metadata, phases, cached, stamp
    )
