"""The trust store: the reference's TOML (`[[keys]]` with public_key, name, email, added_at).

Every change is a locked read-modify-write with an atomic replace, so concurrent `trust add`
processes all land; a store that does not parse is reported and never overwritten.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import tomlkit

from conductor._files import locked, write_atomic
from conductor._toml import read_store
from conductor.errors import TrustStoreError
from conductor.signing._hex import strict_unhex
from conductor.signing.keys import is_valid_public_key, parse_public_key


@dataclass(frozen=True)
class TrustedKey:
    public_key: bytes
    name: str
    email: str
    added_at: str

    @property
    def hex(self) -> str:
        return self.public_key.hex()


def _entry_from_table(path: Path, index: int, table: object) -> TrustedKey:
    where = f"{path}: keys[{index}]"
    if not isinstance(table, dict):
        raise TrustStoreError(f"{where} is not a table")
    key = strict_unhex(str(table.get("public_key", "")).lower(), 32)
    if key is None:
        raise TrustStoreError(f"{where}.public_key must be 64 hex characters")
    if not is_valid_public_key(key):
        raise TrustStoreError(f"{where}.public_key is not a usable Ed25519 public key")
    name = table.get("name")
    if not isinstance(name, str):
        raise TrustStoreError(f"{where}.name must be a string")
    email = table.get("email", "")
    if not isinstance(email, str):
        raise TrustStoreError(f"{where}.email must be a string")
    added_at = table.get("added_at", "")
    if isinstance(added_at, dt.datetime | dt.date):
        added_at = added_at.isoformat()
    return TrustedKey(key, name, email, str(added_at))


class TrustStore:
    """A trust store file; reading never creates it, and a missing file is an empty store."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load_document(self) -> tomlkit.TOMLDocument:
        return read_store(self.path, "trust store", TrustStoreError)

    @staticmethod
    def _tables(path: Path, document: tomlkit.TOMLDocument) -> list[object]:
        keys = document.get("keys", [])
        if not isinstance(keys, list):
            raise TrustStoreError(f"{path}: 'keys' must be an array of tables; left untouched")
        return list(keys)

    def keys(self) -> list[TrustedKey]:
        document = self._load_document()
        return [
            _entry_from_table(self.path, index, table)
            for index, table in enumerate(self._tables(self.path, document))
        ]

    def find(self, public_key: bytes) -> TrustedKey | None:
        return next((entry for entry in self.keys() if entry.public_key == public_key), None)

    def add(self, public_key_text: str, name: str, email: str = "") -> TrustedKey:
        """Add a validated key; a key already present is an error naming its entry."""
        key = parse_public_key(public_key_text, "trust add")
        if not name.strip():
            raise TrustStoreError("trust add: NAME must not be empty")
        added_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with locked(self.path):
            document = self._load_document()
            tables = self._tables(self.path, document)
            for index, table in enumerate(tables):
                existing = _entry_from_table(self.path, index, table)
                if existing.public_key == key:
                    raise TrustStoreError(
                        f"{self.path}: key {key.hex()} is already trusted as {existing.name!r}"
                    )
            entry = tomlkit.table()
            entry["public_key"] = key.hex()
            entry["name"] = name
            entry["email"] = email
            entry["added_at"] = added_at
            if "keys" not in document:
                document["keys"] = tomlkit.aot()
            document["keys"].append(entry)
            write_atomic(self.path, tomlkit.dumps(document).encode("utf-8"), follow_symlinks=True)
        return TrustedKey(key, name, email, added_at)

    def remove(self, public_key_text: str) -> TrustedKey:
        """Remove one key, keeping every other entry (and its formatting) as it was."""
        wanted = strict_unhex(public_key_text.strip().lower(), 32)
        if wanted is None:
            raise TrustStoreError(
                f"trust remove: a public key is 64 hex characters, got {public_key_text!r}"
            )
        with locked(self.path):
            document = self._load_document()
            tables = self._tables(self.path, document)
            for index, table in enumerate(tables):
                entry = _entry_from_table(self.path, index, table)
                if entry.public_key == wanted:
                    del document["keys"][index]
                    write_atomic(
                        self.path, tomlkit.dumps(document).encode("utf-8"), follow_symlinks=True
                    )
                    return entry
        raise TrustStoreError(f"{self.path}: key {wanted.hex()} is not in the trust store")
