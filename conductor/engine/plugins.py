"""Loading the plugins a config names, reusing those already running when a config reloads."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from conductor.engine import actions as act
from conductor.engine.config import Config, PluginsConfig
from conductor.engine.dispatcher import PluginKey, plugin_key
from conductor.errors import ConductorError
from conductor.paths import default_trust_store, grants_file
from conductor.plugins.grants import GrantStore
from conductor.plugins.limits import Limits
from conductor.plugins.loader import (
    LoadedPlugin,
    LoadOptions,
    Prompt,
    file_stamp,
    load_plugin,
    plugin_name,
)
from conductor.plugins.runtime import PluginHost
from conductor.signing import TrustStore

_log = logging.getLogger("conductor.engine")


@dataclass(frozen=True)
class PluginFinding:
    """One plugin of a config: loaded, or the reason it could not be."""

    key: PluginKey
    where: str
    loaded: LoadedPlugin | None = None
    error: ConductorError | None = None


def trust_store_for(config: Config, override: Path | None) -> TrustStore:
    """`--trust-store`, else the config's `[plugins] trust_store`, else the usual default."""
    return TrustStore(override or config.plugins.trust_store or default_trust_store())


def plugin_keys(config: Config) -> dict[PluginKey, str]:
    """Every distinct plugin (file and limits) the config uses, with the first key path naming it."""
    keys: dict[PluginKey, str] = {}
    for mapping in config.all_mappings():
        for action in act.plugin_actions(mapping.action):
            try:
                key = plugin_key(action, config)
            except ConductorError as exc:
                raise ConductorError(
                    f"{config.path}: {mapping.where}.action: {exc.diagnostics()}"
                ) from None
            keys.setdefault(key, f"{mapping.where}.action")
    return keys


def plugin_options(
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


def load_config_plugins(
    host: PluginHost,
    config: Config,
    trust_override: Path | None,
    prompt: Prompt | None,
    keep: dict[PluginKey, LoadedPlugin] | None = None,
) -> list[PluginFinding]:
    """Load (verify, compile, init) each plugin of `config`; plugins in `keep` whose file is
    unchanged are reused as they are, warm."""
    store = trust_store_for(config, trust_override)
    grants = GrantStore(grants_file())
    findings = []
    for key, where in plugin_keys(config).items():
        path, limits = key
        reused = (keep or {}).get(key)
        if reused is not None and file_stamp(path) == reused.stamp:
            findings.append(PluginFinding(key, where, reused))
            continue
        try:
            options = plugin_options(
                config.plugins, plugin_name(path), store, limits, grants, prompt
            )
            loaded = load_plugin(host, path, options)
            findings.append(PluginFinding(key, where, loaded))
        except ConductorError as exc:
            findings.append(PluginFinding(key, where, error=exc))
    return findings
