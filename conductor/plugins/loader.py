"""From a plugin name or path to a running, verified, sandboxed plugin.

The file is read once; those bytes are verified and those bytes compiled. Capabilities are
granted from the plugin's own request (its metadata), capped by what the user approved.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conductor.errors import FileError, PatternError, PluginError, UsageError
from conductor.paths import plugins_dir
from conductor.plugins import bundled
from conductor.plugins.abi import Metadata
from conductor.plugins.capabilities import Capability, Risk, granted
from conductor.plugins.context import PluginContext
from conductor.plugins.grants import Grant, GrantStore
from conductor.plugins.limits import Limits
from conductor.plugins.names import check_plugin_name
from conductor.plugins.network.patterns import HostPattern, HostRules
from conductor.plugins.runtime import Plugin, PluginHost
from conductor.plugins.sandbox import plugin_data_dir
from conductor.processes import resolve_command
from conductor.signing import FileVerdict, SignaturePolicy, TrustStore, Verdict, verify_file

_log = logging.getLogger("conductor.plugins")


@dataclass(frozen=True)
class Approval:
    """One thing a plugin asks for that the user may approve: a capability, a host or a command."""

    kind: str  # "capability" | "host" | "command"
    value: str
    risk: Risk
    detail: str = ""

    def describe(self) -> str:
        return f"{self.kind} {self.value}" + (f" ({self.detail})" if self.detail else "")


Prompt = Callable[[str, Approval], bool]


@dataclass(frozen=True)
class LoadOptions:
    policy: SignaturePolicy
    trust_store: TrustStore
    limits: Limits = field(default_factory=Limits)
    approvals: frozenset[Capability] = frozenset()
    grants: GrantStore | None = None
    prompt: Prompt | None = None
    plugin_config: dict[str, Any] = field(default_factory=dict)
    secrets: frozenset[str] = frozenset()
    extra_hosts: tuple[str, ...] = ()  # added by the user in [plugins.hosts]: approved
    extra_commands: tuple[str, ...] = ()  # added by the user in [plugins.commands]: approved
    min_signature_version: int = 1  # 2 refuses v1 signatures (unauthenticated developer fields)
    # Approved for this load only (`plugin exec --host/--command`): declared hosts and commands,
    # treated like remembered grants but never stored.
    approved_hosts: tuple[str, ...] = ()
    approved_commands: tuple[str, ...] = ()


@dataclass
class LoadedPlugin:
    """A started plugin with what was learned while loading it, and the terms it was loaded
    under (`options`, and `grant`: the approvals remembered for it once any prompt was answered),
    which a reload compares with the current ones."""

    plugin: Plugin
    path: Path
    digest: bytes
    verdict: Verdict
    metadata: Metadata
    phases_ms: dict[str, float]
    compiled_from_cache: bool
    options: LoadOptions
    grant: Grant


def resolve_plugin(spec: str, base_dir: Path | None = None, directory: Path | None = None) -> Path:
    """A path (absolute, `~`, or relative to `base_dir`) or the bare name of an installed plugin."""
    looks_like_path = spec.endswith(".wasm") or "/" in spec or spec.startswith(("~", "."))
    if looks_like_path:
        path = Path(spec).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if path.exists() or not bundled.is_alias(spec):
            return path
        spec = spec.removesuffix(".wasm")  # the page's `conductor_wasm_spotify.wasm`: a bare name
    check_plugin_name(spec, "plugin")
    installed = (directory or plugins_dir()) / f"{spec}.wasm"
    if installed.exists() or installed.is_symlink():
        # An installed plugin of the same name wins over a bundled one; whatever is there (a FIFO,
        # a dangling link) is reported by the read, not silently replaced by the bundled plugin.
        return installed
    official = bundled.path_of(spec)
    if official is not None:
        return official
    raise FileError(
        f"plugin {spec!r}: no {installed}, and no bundled plugin of that name "
        f"(bundled: {', '.join(bundled.names()) or 'none'}; install others with `conductor plugin install`)"
    )


def plugin_name(path: Path) -> str:
    """A plugin's name is its file name without `.wasm` (metadata cannot claim another's name),
    and it must follow the name rule: every name is made here or checked by the same rule."""
    return check_plugin_name(path.name.removesuffix(".wasm"), str(path))


def verify(path: Path, options: LoadOptions) -> FileVerdict:
    """The verdict on the plugin at `path` under the options' policy, trust store and minimum
    signature format, with the bytes it is about; bundled plugins by their manifest."""
    return verify_file(
        path,
        options.policy,
        bundled.trust_roots(options.trust_store),
        min_version=options.min_signature_version,
    )


def _read_and_verify(path: Path, options: LoadOptions) -> tuple[bytes, Verdict]:
    """Check the name, read the plugin once and check its signature under the policy; raise
    unless accepted."""
    plugin_name(path)
    checked = verify(path, options)
    checked.verdict.raise_unless_accepted(str(path))
    for warning in checked.verdict.warnings:
        _log.warning("%s: %s", path.name, warning)
    return checked.data, checked.verdict


class _Approver:
    """Decides approvals for one plugin load: remembered grants, config, prompt; logs the rest."""

    def __init__(self, name: str, key: str, options: LoadOptions) -> None:
        self.name = name
        self.key = key
        self.options = options
        self.remembered = options.grants.find(name, key) if options.grants else Grant(name, key)
        self.new_capabilities: set[Capability] = set()
        self.new_hosts: list[str] = []
        self.new_commands: dict[str, str] = {}
        self._approved_hosts = [HostPattern.parse(text) for text in options.approved_hosts]

    def ask(self, approval: Approval) -> bool:
        if self.options.prompt is None:
            return False
        return self.options.prompt(self.name, approval)

    def capabilities(self, requested: frozenset[Capability]) -> frozenset[Capability]:
        approved = set(self.options.approvals) | set(self.remembered.capabilities)
        for cap in sorted(requested, key=lambda c: c.value):
            if cap.risk is Risk.LOW or cap in approved:
                continue
            if self.ask(Approval("capability", cap.value, cap.risk)):
                approved.add(cap)
                self.new_capabilities.add(cap)
            else:
                _log.warning(
                    "%s requests %s (%s risk), not granted; approve with: conductor plugin grant %s %s",
                    self.name,
                    cap.value,
                    cap.risk.value,
                    self.name,
                    cap.value,
                )
        return granted(requested, approved)

    def check_approved_now(self, metadata: Metadata, capabilities: frozenset[Capability]) -> None:
        """Hosts and commands approved for this load must be ones the plugin declares, under
        the capability that uses them; anything else would silently do nothing."""
        declared = [HostPattern.parse(text) for text in metadata.hosts]
        for pattern in self._approved_hosts:
            if not any(_same_host(pattern, other) for other in declared):
                raise UsageError(
                    f"--host {pattern.text}: {self.name} does not declare it (it declares: "
                    f"{', '.join(metadata.hosts) or 'no hosts'}); a config's [plugins.hosts] "
                    "adds hosts of your own"
                )
        if self._approved_hosts and Capability.NETWORK not in capabilities:
            raise UsageError(f"--host: {self.name} does not request Network")
        for name in self.options.approved_commands:
            if name not in metadata.commands:
                raise UsageError(
                    f"--command {name}: {self.name} does not declare it (it declares: "
                    f"{', '.join(metadata.commands) or 'no commands'})"
                )
            if resolve_command(name) is None:
                raise UsageError(f"--command {name}: not found on PATH")
        if self.options.approved_commands and Capability.SUBPROCESS not in capabilities:
            raise UsageError(
                f"--command needs {self.name} to have Subprocess: add --grant Subprocess"
            )

    def hosts(self, declared: tuple[str, ...], network: bool) -> HostRules:
        user_added = [HostPattern.parse(text) for text in self.options.extra_hosts]
        patterns = [HostPattern.parse(text) for text in declared]
        if not network:
            return HostRules(tuple(patterns + user_added), ())
        remembered = set(self.remembered.hosts)
        approved = list(user_added)
        automatic = []
        for pattern in patterns:
            listed_by_user = any(_same_host(u, pattern) for u in user_added)
            approved_now = any(_same_host(a, pattern) for a in self._approved_hosts)
            if pattern.text in remembered or listed_by_user or approved_now:
                approved.append(pattern)
            elif pattern.auto_approvable:
                automatic.append(pattern)
            elif self.ask(
                Approval("host", pattern.text, Risk.MEDIUM, "plain or local address, or wildcard")
            ):
                approved.append(pattern)
                self.new_hosts.append(pattern.text)
            else:
                _log.warning(
                    "%s declares host %s, not approved; approve with: conductor plugin grant %s Network "
                    "--host %s",
                    self.name,
                    pattern.text,
                    self.name,
                    pattern.text,
                )
        return HostRules(tuple(patterns + user_added), tuple(approved), tuple(automatic))

    def commands(self, declared: tuple[str, ...], subprocess: bool) -> dict[str, str]:
        if not subprocess:
            return {}
        approved: dict[str, str] = {}
        for name in dict.fromkeys([*declared, *self.options.extra_commands]):
            path = resolve_command(name)
            if path is None:
                _log.warning("%s: command %s is not installed here", self.name, name)
                continue
            if (
                name in self.options.extra_commands
                or name in self.options.approved_commands
                or self.remembered.commands.get(name) == path
            ):
                approved[name] = path
            elif self.ask(Approval("command", name, Risk.HIGH, path)):
                approved[name] = path
                self.new_commands[name] = path
            else:
                _log.warning(
                    "%s declares command %s (%s), not approved; approve with: conductor plugin grant %s "
                    "Subprocess --command %s",
                    self.name,
                    name,
                    path,
                    self.name,
                    name,
                )
        return approved

    def grant(self) -> Grant:
        """The approvals remembered for this plugin, with those just given at a prompt."""
        remembered = self.remembered
        return Grant(
            self.name,
            self.key,
            remembered.capabilities | self.new_capabilities,
            tuple(dict.fromkeys([*remembered.hosts, *self.new_hosts])),
            {**remembered.commands, **self.new_commands},
        )

    def remember(self) -> None:
        if self.options.grants is not None and (
            self.new_capabilities or self.new_hosts or self.new_commands
        ):
            self.options.grants.update(
                self.name,
                self.key,
                add=frozenset(self.new_capabilities),
                hosts=tuple(self.new_hosts),
                commands=self.new_commands,
            )


def _same_host(a: HostPattern, b: HostPattern) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def load_plugin(host: PluginHost, path: Path, options: LoadOptions) -> LoadedPlugin:
    """Verify, compile, instantiate and initialise; raise a ConductorError naming the cause."""
    name = plugin_name(path)
    phases: dict[str, float] = {}
    started = time.perf_counter()
    wasm, verdict = _read_and_verify(path, options)
    phases["read_verify"] = (time.perf_counter() - started) * 1000
    digest = hashlib.sha256(wasm).digest()

    started = time.perf_counter()
    module, cached = host.compile(name, wasm, digest)
    phases["compile"] = (time.perf_counter() - started) * 1000
    abi = host.inspect(module)
    if not abi.ok:
        raise PluginError(f"{name}: {abi.problems[0]}")

    started = time.perf_counter()
    context = PluginContext(
        name,
        config=dict(options.plugin_config),
        secrets=options.secrets,
        data_dir=plugin_data_dir(name),
    )
    plugin = Plugin(host, name, module, abi, options.limits, context)
    metadata = plugin.start()
    try:
        approver = _Approver(name, verdict.signer_key, options)
        capabilities = approver.capabilities(metadata.capabilities)
        approver.check_approved_now(metadata, capabilities)
        context.hosts = approver.hosts(metadata.hosts, Capability.NETWORK in capabilities)
    except PatternError as exc:
        raise PluginError.at(name, exc) from exc
    context.declared_commands = frozenset([*metadata.commands, *options.extra_commands])
    context.commands = approver.commands(
        tuple(metadata.commands), Capability.SUBPROCESS in capabilities
    )
    approver.remember()
    plugin.grant(capabilities)
    phases["instantiate_init"] = (time.perf_counter() - started) * 1000
    return LoadedPlugin(
        plugin,
        path,
        digest,
        verdict,
        plugin.metadata or metadata,
        phases,
        cached,
        options,
        approver.grant(),
    )
