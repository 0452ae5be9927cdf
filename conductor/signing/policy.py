"""Who must have signed a plugin: the three tiers of SPEC §3.

`SignaturePolicy` is how a config or a flag spells a tier; each tier is a policy object with one
`decide` method, which turns what verification established (`Evidence`) into a verdict. A
signature that does not verify, or whose format is below the minimum, never reaches a policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from conductor.errors import PolicyError
from conductor.signing.signature import PluginSignature
from conductor.signing.trust import TrustedKey
from conductor.signing.verdict import Status, Verdict

UNSIGNED_WARNING = "running an UNSIGNED plugin: development only"
SELF_SIGNED_NOTE = "signed by a key that is not in the trust store (self-signed policy)"


@dataclass(frozen=True)
class Evidence:
    """What verification established about a plugin, for a policy to decide on."""

    signature: PluginSignature | None  # valid and of an accepted format; None: there is none
    trusted_as: TrustedKey | None  # the trust store's entry for the signature's key
    trust_store: Path  # the store that was asked, for the reason of a refusal
    signature_path: Path | None = None  # where the signature was looked for, if a file
    warnings: tuple[str, ...] = ()  # about the signature (an unauthenticated v1 format)

    def missing(self) -> Verdict:
        where = self.signature_path if self.signature_path is not None else "(.sig) found"
        return Verdict(Status.MISSING, f"no signature file {where}")

    def trusted(self) -> Verdict:
        return Verdict(Status.TRUSTED, "", self.signature, self.trusted_as, self.warnings)

    def self_signed(self) -> Verdict:
        return Verdict(
            Status.SELF_SIGNED, "", self.signature, None, (*self.warnings, SELF_SIGNED_NOTE)
        )


class Policy(Protocol):
    def decide(self, evidence: Evidence) -> Verdict:
        """The verdict on a plugin with this evidence."""
        ...


class RequireTrustedKey:
    """The default: a valid signature by a key in the trust store."""

    def decide(self, evidence: Evidence) -> Verdict:
        signature = evidence.signature
        if signature is None:
            return evidence.missing()
        if evidence.trusted_as is not None:
            return evidence.trusted()
        return Verdict(
            Status.UNTRUSTED,
            f"valid signature, but key {signature.public_key.hex()} is not in the trust store "
            f"{evidence.trust_store}",
            signature,
            None,
            evidence.warnings,
        )


class AcceptAnyValidKey:
    """A valid signature by any key; one the store does not hold is noted."""

    def decide(self, evidence: Evidence) -> Verdict:
        if evidence.signature is None:
            return evidence.missing()
        if evidence.trusted_as is not None:
            return evidence.trusted()
        return evidence.self_signed()


class AcceptUnsigned:
    """Development: no signature at all is accepted, loudly; a signature must still verify."""

    def decide(self, evidence: Evidence) -> Verdict:
        if evidence.signature is None:
            return Verdict(
                Status.UNSIGNED,
                "no signature (allowed by the unsigned policy)",
                warnings=(UNSIGNED_WARNING,),
            )
        return AcceptAnyValidKey().decide(evidence)


class SignaturePolicy(StrEnum):
    TRUSTED = "trusted"
    SELF_SIGNED = "self-signed"
    UNSIGNED = "unsigned"

    @classmethod
    def parse(cls, value: str, where: str = "signature policy") -> SignaturePolicy:
        try:
            return cls(value)
        except ValueError:
            raise PolicyError(where, value, [policy.value for policy in cls]) from None

    @property
    def rule(self) -> Policy:
        """The policy object that decides under this tier."""
        return _RULES[self]


_RULES: dict[SignaturePolicy, Policy] = {
    SignaturePolicy.TRUSTED: RequireTrustedKey(),
    SignaturePolicy.SELF_SIGNED: AcceptAnyValidKey(),
    SignaturePolicy.UNSIGNED: AcceptUnsigned(),
}
