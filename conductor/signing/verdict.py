"""What verification concludes about one plugin: its status, why, who signed it, and the key
its grants are remembered under. The one place a verdict is put into words."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from conductor.errors import ExitCode, SignatureError, UntrustedKeyError
from conductor.signing.signature import PluginSignature
from conductor.signing.trust import TrustedKey

BUNDLED_KEY = "bundled"  # the signer key of a plugin trusted through a digest manifest
UNSIGNED_KEY = "unsigned"  # the signer key of a plugin without a signature


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

    @property
    def signer_key(self) -> str:
        """The key a plugin's grants are remembered under: the signer's public key (from a
        signature checked against the plugin's bytes, never an unverified `.sig`), `bundled`
        for a plugin its package vouches for, `unsigned` for one without a signature."""
        if self.bundled:
            return BUNDLED_KEY
        if self.signature is not None:
            return self.signature.public_key.hex()
        return UNSIGNED_KEY

    @property
    def signer(self) -> str | None:
        """`name <email>` from the signature; its text is the signer's, not ours."""
        signature = self.signature
        if signature is None:
            return None
        return f"{signature.developer.name} <{signature.developer.email}>"

    def raise_unless_accepted(self, plugin: str) -> None:
        if not self.accepted:
            raise self.refusal(self.reason, where=plugin)

    def summary(self) -> str:
        """One line: the status, and for a signature who signed it with which key and format."""
        signature = self.signature
        if signature is None:
            return self.status.value
        trusted = f", trusted as {self.trusted_as.name}" if self.trusted_as else ""
        return (
            f"{self.status.value}: signed by {self.signer}, key "
            f"{signature.public_key.hex()[:16]}…, v{signature.version}{trusted}"
        )

    def details(self) -> list[tuple[str, str]]:
        """(label, text) rows: signer, key, signing time and format, then the reason of a
        refusal and each warning (labelled `note`)."""
        rows: list[tuple[str, str]] = []
        signature = self.signature
        if signature is not None:
            trusted = f" (trusted as {self.trusted_as.name})" if self.trusted_as else ""
            rows += [
                ("signer", f"{self.signer}{trusted}"),
                ("key", signature.public_key.hex()),
                ("signed", signature.signed_at),
                ("format", f"v{signature.version}"),
            ]
        if self.reason and not self.accepted:
            rows.append(("reason", self.reason))
        rows += [("note", warning) for warning in self.warnings]
        return rows

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
