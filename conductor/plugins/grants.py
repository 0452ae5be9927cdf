"""Persistent approvals (`grants.toml`), keyed by plugin name and signing key: capabilities,
approved host patterns and approved commands (with the absolute path they resolved to). The key
is the verdict's `signer_key` (`conductor.signing`).

Keying by key means a plugin re-signed with another key asks again. Writes are locked and atomic
like the trust store's; a corrupt file is reported, never replaced.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import tomlkit

from conductor._files import locked, write_atomic
from conductor._toml import read_store
from conductor.errors import CapabilityError, GrantsError
from conductor.plugins.capabilities import Capability


@dataclass(frozen=True)
class Grant:
    plugin: str
    key: str
    capabilities: frozenset[Capability] = frozenset()
    hosts: tuple[str, ...] = ()
    commands: dict[str, str] = field(default_factory=dict)  # name -> absolute path approved
    updated_at: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "plugin": self.plugin,
            "key": self.key,
            "capabilities": sorted(cap.value for cap in self.capabilities),
            "hosts": list(self.hosts),
            "commands": dict(self.commands),
            "updated_at": self.updated_at,
        }


class GrantStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> tomlkit.TOMLDocument:
        document = read_store(self.path, "grants file", GrantsError)
        if not isinstance(document.get("grants", []), list):
            raise GrantsError(f"{self.path}: 'grants' must be an array of tables; left untouched")
        return document

    def _parse(self, index: int, table: object) -> Grant:
        where = f"{self.path}: grants[{index}]"
        if not isinstance(table, dict):
            raise GrantsError(f"{where} is not a table")
        plugin, key = table.get("plugin"), table.get("key")
        names, hosts, commands = (
            table.get("capabilities", []),
            table.get("hosts", []),
            table.get("commands", {}),
        )
        if not isinstance(plugin, str) or not isinstance(key, str) or not isinstance(names, list):
            raise GrantsError(f"{where} needs plugin, key and a capabilities list")
        if not isinstance(hosts, list) or not isinstance(commands, dict):
            raise GrantsError(f"{where}: hosts must be a list and commands a table")
        try:
            capabilities = frozenset(Capability.parse(str(name)) for name in names)
        except CapabilityError as exc:
            raise GrantsError.at(where, exc) from exc
        return Grant(
            plugin,
            key,
            capabilities,
            tuple(str(h) for h in hosts),
            {str(k): str(v) for k, v in commands.items()},
            str(table.get("updated_at", "")),
        )

    def all(self) -> list[Grant]:
        document = self._load()
        return [self._parse(index, table) for index, table in enumerate(document.get("grants", []))]

    def find(self, plugin: str, key: str) -> Grant:
        return next(
            (g for g in self.all() if g.plugin == plugin and g.key == key), Grant(plugin, key)
        )

    def approved(self, plugin: str, key: str) -> frozenset[Capability]:
        return self.find(plugin, key).capabilities

    def update(
        self,
        plugin: str,
        key: str,
        *,
        add: frozenset[Capability] = frozenset(),
        remove: frozenset[Capability] = frozenset(),
        hosts: tuple[str, ...] = (),
        remove_hosts: tuple[str, ...] = (),
        commands: dict[str, str] | None = None,
        remove_commands: tuple[str, ...] = (),
    ) -> Grant:
        """Add and remove approvals in one locked, atomic read-modify-write."""
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with locked(self.path):
            document = self._load()
            if "grants" not in document:
                document["grants"] = tomlkit.aot()
            entries = document["grants"]
            index = next(
                (
                    i
                    for i, t in enumerate(entries)
                    if self._parse(i, t).plugin == plugin and self._parse(i, t).key == key
                ),
                None,
            )
            current = (
                self._parse(index, entries[index]) if index is not None else Grant(plugin, key)
            )
            capabilities = (current.capabilities | add) - remove
            merged_hosts = tuple(
                h for h in dict.fromkeys([*current.hosts, *hosts]) if h not in remove_hosts
            )
            merged_commands = {
                k: v
                for k, v in {**current.commands, **(commands or {})}.items()
                if k not in remove_commands
            }
            table = tomlkit.table()
            table["plugin"] = plugin
            table["key"] = key
            table["capabilities"] = sorted(cap.value for cap in capabilities)
            table["hosts"] = list(merged_hosts)
            table["commands"] = merged_commands
            table["updated_at"] = now
            if index is None:
                entries.append(table)
            else:
                entries[index] = table
            write_atomic(self.path, tomlkit.dumps(document).encode("utf-8"), follow_symlinks=True)
        return Grant(plugin, key, capabilities, merged_hosts, merged_commands, now)
