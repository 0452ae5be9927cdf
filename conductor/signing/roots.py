"""Who vouches for a plugin: the trust store (for signing keys) and, for the files a package
ships, the package's digest manifest (for the files themselves)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from conductor.signing.trust import TrustStore


@dataclass(frozen=True)
class DigestManifest:
    """Files trusted by their SHA-256, as listed when their package was built: the installed
    package is the trust root, so they need no signature. A file it covers is trusted when its
    bytes match, and refused when they do not, whatever the policy."""

    directory: Path
    digests: Mapping[str, str] = field(default_factory=dict)  # file name -> SHA-256 hex

    def covers(self, path: Path) -> bool:
        """`path` is one of the manifest's files, in the manifest's directory."""
        return path.name in self.digests and path.resolve().parent == self.directory.resolve()

    def matches(self, path: Path, data: bytes) -> bool:
        expected = self.digests.get(path.name)
        return expected is not None and hashlib.sha256(data).hexdigest() == expected


@dataclass(frozen=True)
class TrustRoots:
    """What verification trusts: the keys of a trust store, and the files of a manifest."""

    store: TrustStore
    manifest: DigestManifest | None = None
