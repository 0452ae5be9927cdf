"""The `<plugin>.wasm.sig` file: building, serialising and strictly parsing formats v1 and v2.

v1 (reference-compatible) signs only the SHA-256 digest, so its developer fields are not
authenticated; v2 signs a domain-separated canonical JSON of every field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nacl.signing import SigningKey

from conductor._files import SIGNATURE_LIMIT
from conductor.errors import SignatureError
from conductor.signing._hex import strict_unhex

V2_DOMAIN = b"conductor-plugin-signature-v2\n"
ALGORITHM = "Ed25519"
FIELDS = frozenset(
    {
        "version",
        "algorithm",
        "plugin_hash",
        "plugin_size",
        "public_key",
        "signature",
        "signed_at",
        "developer",
    }
)
DEVELOPER_FIELDS = frozenset({"name", "email"})
SUPPORTED_VERSIONS = (1, 2)


@dataclass(frozen=True)
class Developer:
    name: str
    email: str


@dataclass(frozen=True)
class PluginSignature:
    """A parsed signature file; every field has passed the strict checks."""

    version: int
    plugin_hash: bytes
    plugin_size: int
    public_key: bytes
    signature: bytes
    signed_at: str
    developer: Developer

    def unsigned_document(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "algorithm": ALGORITHM,
            "plugin_hash": self.plugin_hash.hex(),
            "plugin_size": self.plugin_size,
            "public_key": self.public_key.hex(),
            "signed_at": self.signed_at,
            "developer": {"name": self.developer.name, "email": self.developer.email},
        }

    def signed_message(self) -> bytes:
        """The exact bytes the Ed25519 signature covers in this format version."""
        if self.version == 1:
            return self.plugin_hash
        return V2_DOMAIN + _canonical_json(self.unsigned_document())

    def to_json(self) -> str:
        document = self.unsigned_document()
        document["signature"] = self.signature.hex()
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _canonical_json(document: dict[str, Any]) -> bytes:
    """Keys sorted, no whitespace, UTF-8: one byte string per document."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign_plugin(
    plugin: bytes, key: SigningKey, developer: Developer, signed_at: datetime, version: int = 2
) -> PluginSignature:
    """Sign the plugin bytes with `key` in the given format version."""
    unsigned = PluginSignature(
        version=version,
        plugin_hash=hashlib.sha256(plugin).digest(),
        plugin_size=len(plugin),
        public_key=bytes(key.verify_key),
        signature=b"",
        signed_at=_format_timestamp(signed_at),
        developer=developer,
    )
    signature = key.sign(unsigned.signed_message()).signature
    return PluginSignature(**{**unsigned.__dict__, "signature": signature})


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise SignatureError(f"duplicate key {key!r}")
        document[key] = value
    return document


def _reject_constant(name: str) -> Any:
    raise SignatureError(f"{name} is not a JSON number")


def _require_int(document: dict[str, Any], field: str) -> int:
    value = document[field]
    if type(value) is not int:
        raise SignatureError(f"{field} must be a JSON integer, got {json.dumps(value)[:40]}")
    return value


def _require_hex(document: dict[str, Any], field: str, length: int) -> bytes:
    value = strict_unhex(document[field], length)
    if value is None:
        raise SignatureError(f"{field} must be {2 * length} lowercase hex characters")
    return value


def _require_string(container: dict[str, Any], field: str, where: str) -> str:
    value = container[field]
    if not isinstance(value, str):
        raise SignatureError(f"{where}{field} must be a string")
    return value


def _check_fields(document: dict[str, Any], expected: frozenset[str], where: str) -> None:
    missing = sorted(expected - document.keys())
    extra = sorted(document.keys() - expected)
    if missing:
        raise SignatureError(f"missing field {where}{missing[0]}")
    if extra:
        raise SignatureError(f"unexpected field {where}{extra[0]}")


def _parse_timestamp(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise SignatureError(f"signed_at {value[:40]!r} is not an RFC 3339 timestamp") from exc
    if moment.tzinfo is None or "T" not in value.upper():
        raise SignatureError(
            f"signed_at {value[:40]!r} is not an RFC 3339 timestamp with a time zone"
        )
    return value


def parse_signature(data: bytes) -> PluginSignature:
    """Parse a signature file strictly; any deviation raises `SignatureError` with the reason."""
    if len(data) > SIGNATURE_LIMIT:
        raise SignatureError(
            f"signature file is {len(data)} bytes, over the {SIGNATURE_LIMIT}-byte limit"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SignatureError("signature file is not UTF-8") from exc
    try:
        document = json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except RecursionError as exc:
        raise SignatureError("signature file is nested too deeply to be a signature") from exc
    except json.JSONDecodeError as exc:
        raise SignatureError(f"signature file is not JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(document, dict):
        raise SignatureError("signature file must hold a JSON object")
    if "version" not in document:
        raise SignatureError("missing field version")
    version = _require_int(document, "version")
    if version not in SUPPORTED_VERSIONS:
        raise SignatureError(f"unsupported signature format version {version}")
    _check_fields(document, FIELDS, "")
    if document["algorithm"] != ALGORITHM:
        raise SignatureError(
            f"unsupported algorithm {json.dumps(document['algorithm'])[:40]} (only Ed25519)"
        )
    size = _require_int(document, "plugin_size")
    if size < 0:
        raise SignatureError("plugin_size must not be negative")
    developer = document["developer"]
    if not isinstance(developer, dict):
        raise SignatureError("developer must be an object with name and email")
    _check_fields(developer, DEVELOPER_FIELDS, "developer.")
    return PluginSignature(
        version=version,
        plugin_hash=_require_hex(document, "plugin_hash", 32),
        plugin_size=size,
        public_key=_require_hex(document, "public_key", 32),
        signature=_require_hex(document, "signature", 64),
        signed_at=_parse_timestamp(_require_string(document, "signed_at", "")),
        developer=Developer(
            name=_require_string(developer, "name", "developer."),
            email=_require_string(developer, "email", "developer."),
        ),
    )
