"""Turn plugin bytes, a signature file and a policy into a verdict.

`verify_plugin` is the one entry point: it takes the bytes that will be compiled, so what is
verified is exactly what runs. It never raises for a bad signature; the verdict says why.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum

import nacl.exceptions
from nacl.signing import VerifyKey

from conductor.errors import ConductorError, ExitCode, SignatureError, UntrustedKeyError
from conductor.signing.keys import is_valid_public_key
from conductor.signing.policy import SignaturePolicy
from conductor.signing.signature import PluginSignature, parse_signature
from conductor.signing.trust import TrustedKey, TrustStore

V1_NOTE = (
    "format v1 signs only the plugin digest: the developer name and email are not authenticated"
)


class Status(StrEnum):
    TRUSTED = "trusted"  # valid, key in the trust store (or a bundled plugin's digest matched)
    SELF_SIGNED = "self-signed"  # valid, key not trusted, policy allows it
    UNTRUSTED = "untrusted"  # valid, key not trusted, policy refuses it
    UNSIGNED = "unsigned"  # no signature, policy allows it
    MISSING = "missing"  # no signature, policy refuses it
    INVALID = "invalid"  # malformed, tampered or not matching
    REFUSED = "refused"  # valid, but its format version is below the policy's minimum
    UNREADABLE = "unreadable"  # the plugin or its signature file could not be read


ACCEPTED = frozenset({Status.TRUSTED, Status.SELF_SIGNED, Status.UNSIGNED})


@dataclass(frozen=True)
class Verdict:
    """What a person (or `--json`) needs to know about one plugin's signature."""

    status: Status
    reason: str = ""
    signature: PluginSignature | None = None
    trusted_as: TrustedKey | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    bundled: bool = False  # an official plugin, trusted through the package's digest manifest

    @property
    def accepted(self) -> bool:
        return self.status in ACCEPTED

    @property
    def refusal(self) -> type[SignatureError]:
        """The error a refusal of this verdict is: an untrusted key, or any other problem."""
        return UntrustedKeyError if self.status is Status.UNTRUSTED else SignatureError

    @property
    def exit_code(self) -> int:
        return ExitCode.OK if self.accepted else self.refusal.exit_code

    def raise_unless_accepted(self, plugin: str) -> None:
        if not self.accepted:
            raise self.refusal(self.reason, where=plugin)

    def to_json(self) -> dict[str, object]:
        sig = self.signature
        return {
            "status": self.status.value,
            "accepted": self.accepted,
            "reason": self.reason or None,
            "format_version": sig.version if sig else None,
            "public_key": sig.public_key.hex() if sig else None,
            "signer": {"name": sig.developer.name, "email": sig.developer.email} if sig else None,
            "signer_authenticated": sig.version >= 2 if sig else None,
            "signed_at": sig.signed_at if sig else None,
            "trusted_as": self.trusted_as.name
            if self.trusted_as
            else ("bundled with Conductor" if self.bundled else None),
            "bundled": self.bundled,
            "warnings": list(self.warnings),
        }


def check_signature(plugin: bytes, signature_file: bytes) -> PluginSignature:
    """Parse the signature and check it against the exact plugin bytes; raise on any mismatch."""
    signature = parse_signature(signature_file)
    if signature.plugin_size != len(plugin):
        raise SignatureError(
            f"plugin is {len(plugin)} bytes but the signature is for {signature.plugin_size} bytes"
        )
    if hashlib.sha256(plugin).digest() != signature.plugin_hash:
        raise SignatureError(
            "plugin SHA-256 does not match the signature (the plugin was modified)"
        )
    if not is_valid_public_key(signature.public_key):
        raise SignatureError("public_key is not a usable Ed25519 public key")
    try:
        VerifyKey(signature.public_key).verify(signature.signed_message(), signature.signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError) as exc:
        what = (
            "signature" if signature.version == 1 else "signature over the plugin and its metadata"
        )
        raise SignatureError(f"Ed25519 {what} does not verify with public_key") from exc
    return signature


def verify_plugin(
    plugin: bytes,
    signature_file: bytes | None,
    policy: SignaturePolicy,
    trust_store: TrustStore,
    min_version: int = 1,
) -> Verdict:
    """Decide whether `plugin` may run under `policy`; `signature_file` is None when absent.
    `min_version` 2 refuses v1 signatures, whose developer fields are not authenticated."""
    if signature_file is None:
        if policy is SignaturePolicy.UNSIGNED:
            return Verdict(
                Status.UNSIGNED,
                "no signature (allowed by the unsigned policy)",
                warnings=("running an UNSIGNED plugin: development only",),
            )
        return Verdict(Status.MISSING, "no signature file (.sig) found")
    try:
        signature = check_signature(plugin, signature_file)
    except ConductorError as exc:
        return Verdict(Status.INVALID, exc.diagnostics())
    if signature.version < min_version:
        return Verdict(
            Status.REFUSED,
            f"signature format v{signature.version} is below the required minimum "
            f"v{min_version} ({V1_NOTE}); re-sign it in format v2 (the default)",
            signature,
        )
    warnings = (V1_NOTE,) if signature.version == 1 else ()
    trusted_as = trust_store.find(signature.public_key)
    if trusted_as is not None:
        return Verdict(Status.TRUSTED, "", signature, trusted_as, warnings)
    if policy is SignaturePolicy.TRUSTED:
        return Verdict(
            Status.UNTRUSTED,
            f"valid signature, but key {signature.public_key.hex()} is not in the trust store {trust_store.path}",
            signature,
            None,
            warnings,
        )
    note = "signed by a key that is not in the trust store (self-signed policy)"
    return Verdict(Status.SELF_SIGNED, "", signature, None, (*warnings, note))
