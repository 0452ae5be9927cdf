"""Loading the plugins a config names; on a reload, re-evaluating the terms of those already
running (signature, trust, grants, hosts, commands, config, limits) and keeping only those whose
terms did not change."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

from conductor.engine import actions as act
from conductor.engine.config import Config, PluginsConfig
from conductor.engine.dispatcher import PluginKey, plugin_key
from conductor.errors import ConductorError, ConfigError
from conductor.paths import grants_file, trust_store_path
from conductor.plugins.capabilities import Capability
from conductor.plugins.grants import Grant, GrantStore
from conductor.plugins.limits import Limits
from conductor.plugins.loader import (
    LoadedPlugin,
    LoadOptions,
    Prompt,
    load_plugin,
    plugin_name,
    verify,
)
from conductor.plugins.runtime import PluginHost
from conductor.signing import SignaturePolicy, Status, TrustStore, Verdict

_log = logging.getLogger("conductor.engine")


@dataclass(frozen=True)
class PluginFinding:
    """One plugin of a config: loaded, or the reason it could not be."""

    key: PluginKey
    where: str
    loaded: LoadedPlugin | None = None
    error: ConductorError | None = None


def _plugin_keys(config: Config) -> dict[PluginKey, str]:
    """Every distinct plugin (file and limits) the config uses, with the first key path naming it."""
    keys: dict[PluginKey, str] = {}
    for mapping in config.all_mappings():
        for action in act.plugin_actions(mapping.action):
            try:
                key = plugin_key(action, config)
            except ConductorError as exc:
                raise ConfigError.at(f"{config.path}: {mapping.where}.action", exc) from exc
            keys.setdefault(key, f"{mapping.where}.action")
    return keys


def _plugin_options(
    plugins: PluginsConfig,
    name: str,
    store: TrustStore,
    limits: Limits,
    grants: GrantStore,
    prompt: Prompt | None,
) -> LoadOptions:
    """What `[plugins]` says about one plugin, as load options."""
    return LoadOptions(
        policy=plugins.signature_policy,
        min_signature_version=plugins.min_signature_version,
        trust_store=store,
        limits=limits,
        approvals=plugins.grants.get(name, frozenset()),
        grants=grants,
        prompt=prompt,
        plugin_config=plugins.config.get(name, {}),
        secrets=plugins.secrets.get(name, frozenset()),
        extra_hosts=plugins.hosts.get(name, ()),
        extra_commands=plugins.commands.get(name, ()),
    )


def options_for_one(
    path: Path,
    plugins: PluginsConfig | None,
    *,
    trust_store: Path | None = None,
    policy: SignaturePolicy | None = None,
    limits: Mapping[str, int] | None = None,
    approvals: frozenset[Capability] = frozenset(),
    approved_hosts: tuple[str, ...] = (),
    approved_commands: tuple[str, ...] = (),
) -> LoadOptions:
    """The terms one plugin run by hand (`plugin exec`) is loaded under: a config's `[plugins]`
    table when given, else the defaults, then the command's own overrides. `approved_hosts` and
    `approved_commands` count like remembered grants, for this load only. Raises LimitError for
    a limit that is not a positive integer."""
    grants = GrantStore(grants_file())
    if plugins is None:
        store = TrustStore(trust_store_path(trust_store))
        base = LoadOptions(SignaturePolicy.TRUSTED, store, grants=grants)
    else:
        store = TrustStore(trust_store_path(trust_store, plugins.trust_store))
        base = _plugin_options(plugins, plugin_name(path), store, plugins.limits, grants, None)
    return replace(
        base,
        policy=policy or base.policy,
        limits=base.limits.with_overrides(dict(limits or {}), "limits"),
        approvals=base.approvals | approvals,
        approved_hosts=approved_hosts,
        approved_commands=approved_commands,
    )


@dataclass(frozen=True)
class Terms:
    """Everything that decides what a loaded plugin may do. A reload keeps a plugin warm only
    while these are unchanged; otherwise it is loaded again under the new ones, or unloaded."""

    digest: bytes  # the exact bytes verified and compiled
    verdict: Status
    key: str  # the signer key its grants are remembered under
    remembered: tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, str], ...]]
    config_grants: tuple[str, ...]
    hosts: tuple[str, ...]
    commands: tuple[str, ...]
    config: str  # [plugins.config.<name>] as canonical JSON
    secrets: frozenset[str]
    limits: Limits

    @classmethod
    def of(cls, digest: bytes, verdict: Verdict, options: LoadOptions, grant: Grant) -> Terms:
        return cls(
            digest,
            verdict.status,
            verdict.signer_key,
            (
                tuple(sorted(cap.value for cap in grant.capabilities)),
                tuple(sorted(grant.hosts)),
                tuple(sorted(grant.commands.items())),
            ),
            tuple(sorted(cap.value for cap in options.approvals)),
            options.extra_hosts,
            options.extra_commands,
            json.dumps(options.plugin_config, sort_keys=True, default=str),
            options.secrets,
            options.limits,
        )

    def changes(self, other: Terms) -> list[str]:
        """What differs, in words: "remembered grants", "signature verdict", …"""
        return [
            _TERM_NAMES[f.name]
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]


_TERM_NAMES = {
    "digest": "file",
    "verdict": "signature verdict",
    "key": "signing key",
    "remembered": "remembered grants",
    "config_grants": "[plugins.grants]",
    "hosts": "[plugins.hosts]",
    "commands": "[plugins.commands]",
    "config": "[plugins.config]",
    "secrets": "secrets",
    "limits": "limits",
}


def _current_terms(path: Path, options: LoadOptions) -> Terms:
    """The terms the plugin at `path` would be loaded under now; raises when it would not be."""
    checked = verify(path, options)
    verdict = checked.verdict
    verdict.raise_unless_accepted(str(path))
    key = verdict.signer_key
    grant = options.grants.find(plugin_name(path), key) if options.grants else Grant("", key)
    return Terms.of(hashlib.sha256(checked.data).digest(), verdict, options, grant)


def _reusable(loaded: LoadedPlugin, options: LoadOptions) -> bool:
    """Whether a running plugin may stay as it is; raises when it may no longer run at all."""
    before = Terms.of(loaded.digest, loaded.verdict, loaded.options, loaded.grant)
    changed = before.changes(_current_terms(loaded.path, options))
    if changed:
        _log.info("%s: loading it again: its %s changed", loaded.plugin.name, ", ".join(changed))
    return not changed


def load_config_plugins(
    host: PluginHost,
    config: Config,
    trust_override: Path | None,
    prompt: Prompt | None,
    keep: dict[PluginKey, LoadedPlugin] | None = None,
) -> list[PluginFinding]:
    """Load (verify, compile, init) each plugin of `config`. A plugin in `keep` (already running)
    stays as it is, warm, only when its terms are unchanged (same bytes, verdict, signer,
    remembered grants, config grants, hosts, commands, plugin config and limits)."""
    store = TrustStore(trust_store_path(trust_override, config.plugins.trust_store))
    grants = GrantStore(grants_file())
    findings = []
    for key, where in _plugin_keys(config).items():
        path, limits = key
        reused = (keep or {}).get(key)
        try:
            options = _plugin_options(
                config.plugins, plugin_name(path), store, limits, grants, prompt
            )
            if reused is not None and _reusable(reused, options):
                findings.append(PluginFinding(key, where, reused))
                continue
            loaded = load_plugin(host, path, options)
            findings.append(PluginFinding(key, where, loaded))
        except ConductorError as exc:
            findings.append(PluginFinding(key, where, error=exc))
    return findings
