"""From a plugin file to a verdict: the one entry point, `verify_file`.

It reads the plugin (bounded), lets a digest manifest that covers the file decide, else finds
and reads (bounded) the `.sig`, checks it against exactly those bytes and the minimum format
version, and leaves the rest to the policy. The bytes it returns are the bytes it judged, so what
was verified is what runs or is installed. A bad signature never raises: the verdict says why.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
from nacl.signing import VerifyKey

from conductor._files import PLUGIN_LIMIT, SIGNATURE_LIMIT, read_bytes, read_if_present
from conductor.errors import ConductorError, SignatureError
from conductor.signing.keys import is_valid_public_key
from conductor.signing.policy import Evidence, SignaturePolicy
from conductor.signing.roots import TrustRoots
from conductor.signing.signature import PluginSignature, parse_signature
from conductor.signing.trust import TrustStore
from conductor.signing.verdict import Status, Verdict

V1_NOTE = (
    "format v1 signs only the plugin digest: the developer name and email are not authenticated"
)
MANIFEST_MISMATCH = "bundled plugin does not match the package's digest manifest"


@dataclass(frozen=True)
class FileVerdict:
    """The verdict on a plugin file, with the very bytes it is about."""

    path: Path
    data: bytes  # the plugin's bytes, exactly as judged
    signature: bytes | None  # the signature file's bytes; None when absent or not consulted
    verdict: Verdict


def signature_path_of(plugin: Path) -> Path:
    """Where a plugin's signature is looked for: `<plugin>.sig` beside it."""
    return Path(f"{plugin}.sig")


def verify_file(
    path: Path,
    policy: SignaturePolicy,
    roots: TrustRoots,
    *,
    min_version: int = 1,
    signature_path: Path | None = None,
) -> FileVerdict:
    """The verdict on the plugin at `path` under `policy`, with the signature at
    `signature_path` (default: beside it). Raises FileError when either file cannot be read."""
    data = read_bytes(path, "plugin", PLUGIN_LIMIT)
    manifest = roots.manifest
    if manifest is not None and manifest.covers(path):
        if manifest.matches(path, data):
            return FileVerdict(path, data, None, Verdict(Status.TRUSTED, bundled=True))
        return FileVerdict(path, data, None, Verdict(Status.INVALID, MANIFEST_MISMATCH))
    signature_path = signature_path or signature_path_of(path)
    signature = read_if_present(signature_path, "signature file", SIGNATURE_LIMIT)
    verdict = verify_plugin(data, signature, policy, roots.store, min_version, signature_path)
    return FileVerdict(path, data, signature, verdict)


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
    signature_path: Path | None = None,
) -> Verdict:
    """The verdict on `plugin`'s bytes with `signature_file` (None when there is none).
    `min_version` 2 refuses v1 signatures, whose developer fields are not authenticated."""
    if signature_file is None:
        return policy.rule.decide(Evidence(None, None, trust_store.path, signature_path))
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
    evidence = Evidence(signature, trusted_as, trust_store.path, signature_path, warnings)
    return policy.rule.decide(evidence)
