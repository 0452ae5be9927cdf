"""Plugin signatures: keys, the signature file formats, the trust store and verification."""

from conductor.signing.keys import generate_key, load_signing_key, signing_key_from_env
from conductor.signing.policy import SignaturePolicy
from conductor.signing.signature import Developer, PluginSignature, parse_signature, sign_plugin
from conductor.signing.trust import TrustedKey, TrustStore
from conductor.signing.verifier import (
    Status,
    Verdict,
    check_signature,
    verify_plugin,
)

__all__ = [
    "Developer",
    "PluginSignature",
    "SignaturePolicy",
    "Status",
    "TrustStore",
    "TrustedKey",
    "Verdict",
    "check_signature",
    "generate_key",
    "load_signing_key",
    "parse_signature",
    "sign_plugin",
    "signing_key_from_env",
    "verify_plugin",
]
