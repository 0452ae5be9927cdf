"""Persistent capability approvals (`grants.toml`), keyed by plugin name and signing key.

Keying by key means a plugin file replaced by one signed with another key asks again. Writes
are locked and atomic like the trust store's; a corrupt file is reported, never replaced.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import tomlkit
import tomlkit.exceptions

from conductor._files import locked, read_bytes, write_atomic
from conductor.errors import ConductorError
from conductor.plugins.capabilities import Capability

UNSIGNED_KEY = "unsigned"


class GrantsError(ConductorError):
    """The grants file is corrupt or an operation on it is impossible."""


@dataclass(frozen=True)
class Grant:
    plugin: str
    key: str
    capabilities: frozenset[Capability]
    updated_at: str

    def to_json(self) -> dict[str, object]:
        return {
            "plugin": self.plugin,
            "key": self.key,
            "capabilities": sorted(cap.value for cap in self.capabilities),
            "updated_at": self.updated_at,
        }


class GrantStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> tomlkit.TOMLDocument:
        if not self.path.exists():
            return tomlkit.document()
        try:
            document = tomlkit.parse(read_bytes(self.path, "grants file").decode("utf-8"))
        except (UnicodeDecodeError, tomlkit.exceptions.TOMLKitError) as exc:
            raise GrantsError(
                f"{self.path}: grants file is corrupt ({exc}); left untouched"
            ) from exc
        if not isinstance(document.get("grants", []), list):
            raise GrantsError(f"{self.path}: 'grants' must be an array of tables; left untouched")
        return document

    def _parse(self, index: int, table: object) -> Grant:
        where = f"{self.path}: grants[{index}]"
        if not isinstance(table, dict):
            raise GrantsError(f"{where} is not a table")
        plugin, key, names = table.get("plugin"), table.get("key"), table.get("capabilities", [])
        if not isinstance(plugin, str) or not isinstance(key, str) or not isinstance(names, list):
            raise GrantsError(f"{where} needs plugin, key and a capabilities list")
        try:
            capabilities = frozenset(Capability.parse(str(name)) for name in names)
        except ConductorError as exc:
            raise GrantsError(f"{where}: {exc.diagnostics()}") from exc
        return Grant(plugin, key, capabilities, str(table.get("updated_at", "")))

    def all(self) -> list[Grant]:
        document = self._load()
        return [self._parse(index, table) for index, table in enumerate(document.get("grants", []))]

    def approved(self, plugin: str, key: str) -> frozenset[Capability]:
        return next(
            (
                grant.capabilities
                for grant in self.all()
                if grant.plugin == plugin and grant.key == key
            ),
            frozenset(),
        )

    def _update(
        self, plugin: str, key: str, add: frozenset[Capability], remove: frozenset[Capability]
    ) -> Grant:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with locked(self.path):
            document = self._load()
            if "grants" not in document:
                document["grants"] = tomlkit.aot()
            entries = document["grants"]
            for index, table in enumerate(entries):
                grant = self._parse(index, table)
                if grant.plugin == plugin and grant.key == key:
                    capabilities = (grant.capabilities | add) - remove
                    table["capabilities"] = sorted(cap.value for cap in capabilities)
                    table["updated_at"] = now
                    break
            else:
                capabilities = add - remove
                entry = tomlkit.table()
                entry["plugin"] = plugin
                entry["key"] = key
                entry["capabilities"] = sorted(cap.value for cap in capabilities)
                entry["updated_at"] = now
                entries.append(entry)
            write_atomic(self.path, tomlkit.dumps(document).encode("utf-8"))
        return Grant(plugin, key, capabilities, now)

    def grant(self, plugin: str, key: str, capabilities: frozenset[Capability]) -> Grant:
        return self._update(plugin, key, capabilities, frozenset())

    def revoke(self, plugin: str, key: str, capabilities: frozenset[Capability]) -> Grant:
        known = [g for g in self.all() if g.plugin == plugin and g.key == key]
        if not known:
            raise GrantsError(f"{self.path}: no grants recorded for plugin {plugin!r}")
        return self._update(plugin, key, frozenset(), capabilities)
