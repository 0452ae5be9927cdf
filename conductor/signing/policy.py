"""Who must have signed a plugin: the three tiers of SPEC §3."""

from __future__ import annotations

from enum import StrEnum

from conductor.errors import PolicyError


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
