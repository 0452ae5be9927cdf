"""Plugin signatures: keys, the signature file formats, the trust roots (trust store, digest
manifest), the policies, and the verdict on a plugin file (`verify_file`)."""

from conductor.signing.keys import generate_key, load_signing_key, signing_key_from_env
from conductor.signing.policy import (
    AcceptAnyValidKey,
    AcceptUnsigned,
    Evidence,
    Policy,
    RequireTrustedKey,
    SignaturePolicy,
)
from conductor.signing.roots import DigestManifest, TrustRoots
from conductor.signing.signature import Developer, PluginSignature, parse_signature, sign_plugin
from conductor.signing.trust import TrustedKey, TrustStore
from conductor.signing.verdict import BUNDLED_KEY, UNSIGNED_KEY, Status, Verdict
from conductor.signing.verifier import (
    FileVerdict,
    check_signature,
    signature_path_of,
    verify_file,
    verify_plugin,
)

__all__ = [
    "BUNDLED_KEY",
    "UNSIGNED_KEY",
    "AcceptAnyValidKey",
    "AcceptUnsigned",
    "Developer",
    "DigestManifest",
    "Evidence",
    "FileVerdict",
    "PluginSignature",
    "Policy",
    "RequireTrustedKey",
    "SignaturePolicy",
    "Status",
    "TrustRoots",
    "TrustStore",
    "TrustedKey",
    "Verdict",
    "check_signature",
    "generate_key",
    "load_signing_key",
    "parse_signature",
    "sign_plugin",
    "signature_path_of",
    "signing_key_from_env",
    "verify_file",
    "verify_plugin",
]
