"""What a plugin file is, without granting it anything: its imports, exports and ABI, the
metadata its `init` returns, its signature, and the host functions it imports without asking
for the capability they need (`plugin inspect`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime

from conductor.errors import ConductorError
from conductor.plugins import bundled
from conductor.plugins.abi import HOST_MODULE, Import, Metadata, ModuleAbi
from conductor.plugins.capabilities import Capability
from conductor.plugins.host import HOST_FUNCTIONS
from conductor.plugins.interrupts import main_thread_host
from conductor.plugins.limits import Limits
from conductor.plugins.loader import plugin_name
from conductor.plugins.runtime import Plugin, PluginHost
from conductor.signing import SignaturePolicy, TrustStore, Verdict, verify_file


def start_ungranted(
    host: PluginHost, name: str, module: wasmtime.Module, abi: ModuleAbi
) -> Metadata:
    """Instantiate with no grants, no data directory and the default limits, run `init` for
    its metadata, and discard the instance."""
    with Plugin(host, name, module, abi, Limits()) as plugin:
        return plugin.start()


@dataclass(frozen=True)
class UnrequestedImport:
    """A host function the plugin imports, gated by a capability its metadata does not request:
    the call would always be denied."""

    item: Import
    capability: Capability

    def describe(self) -> str:
        return (
            f"imports {self.item.qualified}, which needs {self.capability.value}, "
            "but the metadata does not request it"
        )


def unrequested_imports(abi: ModuleAbi, metadata: Metadata) -> list[UnrequestedImport]:
    gated = {function.name: function.capability for function in HOST_FUNCTIONS}
    found = []
    for item in abi.imports:
        capability = gated.get(item.name) if item.module == HOST_MODULE else None
        if capability is not None and capability not in metadata.capabilities:
            found.append(UnrequestedImport(item, capability))
    return found


@dataclass(frozen=True)
class Inspection:
    plugin: str
    path: Path
    size: int
    abi: ModuleAbi
    verdict: Verdict  # under the default policy
    metadata: Metadata | None = None  # read only from a module that keeps to the ABI
    metadata_error: str | None = None  # why `init` gave none

    @property
    def ok(self) -> bool:
        """The module keeps to the ABI and its `init` answered."""
        return self.abi.ok and self.metadata_error is None

    @property
    def capabilities(self) -> list[Capability]:
        if self.metadata is None:
            return []
        return sorted(self.metadata.capabilities, key=lambda c: c.value)

    @property
    def warnings(self) -> list[UnrequestedImport]:
        return [] if self.metadata is None else unrequested_imports(self.abi, self.metadata)

    def to_json(self) -> dict[str, Any]:
        abi, metadata = self.abi, self.metadata
        return {
            "plugin": self.plugin,
            "path": str(self.path),
            "size": self.size,
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
            "metadata_error": self.metadata_error,
            "capabilities": [{"name": c.value, "risk": c.risk.value} for c in self.capabilities],
            "hosts": list(metadata.hosts) if metadata else [],
            "commands": list(metadata.commands) if metadata else [],
            "actions": [action.to_json() for action in metadata.actions] if metadata else [],
            "import_warnings": [warning.describe() for warning in self.warnings],
            "signature": self.verdict.to_json(),
        }


def inspect_plugin(path: Path, store: TrustStore) -> Inspection:
    """Inspect the plugin at `path`; its signature is judged under the default policy, and its
    `init` runs (with nothing granted) only when the module keeps to the ABI."""
    name = plugin_name(path)
    checked = verify_file(path, SignaturePolicy.TRUSTED, bundled.trust_roots(store))
    wasm = checked.data
    with main_thread_host(None) as host:
        module, _ = host.compile(name, wasm, hashlib.sha256(wasm).digest())
        abi = host.inspect(module)
        metadata, error = None, None
        if abi.ok:
            try:
                metadata = start_ungranted(host, name, module, abi)
            except ConductorError as exc:
                error = exc.diagnostics()
    return Inspection(name, path, len(wasm), abi, checked.verdict, metadata, error)
