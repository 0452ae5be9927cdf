"""The official plugins shipped inside the package (spotify, obs, system-utils).

They are trusted through `manifest.json`, the SHA-256 of each `.wasm` written when they were
built: the installed package is the trust root, so they load under the default policy without a
signing key. `make plugins` rebuilds them and the manifest.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from conductor._files import read_bytes
from conductor.errors import ConductorError

if TYPE_CHECKING:
    from conductor.signing import DigestManifest, TrustRoots, TrustStore

__all__ = [
    "ALIASES",
    "canonical_name",
    "directory",
    "is_alias",
    "manifest",
    "names",
    "path_of",
    "trust_roots",
    "write_manifest",
]

_MANIFEST = "manifest.json"
_MANIFEST_LIMIT = 64 * 1024

# The product page's file names for the bundled plugins (SPEC §2), with or without `.wasm`.
ALIASES = {
    "conductor_wasm_spotify": "spotify",
    "conductor_wasm_obs_control": "obs",
    "conductor_wasm_system_utils": "system-utils",
}


def directory() -> Path:
    return Path(str(resources.files(__name__)))


def names() -> list[str]:
    return sorted(_manifest())


def _manifest() -> dict[str, str]:
    try:
        data = read_bytes(directory() / _MANIFEST, "bundled plugin manifest", _MANIFEST_LIMIT)
        return dict(json.loads(data))
    except (ConductorError, ValueError, TypeError):
        return {}


def is_alias(spec: str) -> bool:
    """`spec` is one of the product page's file names for a bundled plugin."""
    return spec.removesuffix(".wasm") in ALIASES


def canonical_name(name: str) -> str:
    """The bundled plugin's own name for one of its `ALIASES`; any other name as it is."""
    return ALIASES.get(name.removesuffix(".wasm"), name)


def path_of(name: str) -> Path | None:
    """The bundled plugin called `name` (or one of its `ALIASES`), if there is one."""
    name = canonical_name(name)
    if name not in _manifest():
        return None
    path = directory() / f"{name}.wasm"
    return path if path.is_file() else None


def manifest() -> DigestManifest:
    """The bundled plugins' digests, as a trust root: they load without a signature."""
    from conductor.signing import DigestManifest  # not needed to find or name the plugins

    return DigestManifest(
        directory(), {f"{name}.wasm": digest for name, digest in _manifest().items()}
    )


def trust_roots(store: TrustStore) -> TrustRoots:
    """What a plugin is verified against: the user's trust store and the bundled manifest."""
    from conductor.signing import TrustRoots

    return TrustRoots(store, manifest())


def write_manifest() -> dict[str, str]:
    """Record the digest of every .wasm in the directory (run by `make plugins`)."""
    manifest = {
        path.name.removesuffix(".wasm"): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory().glob("*.wasm"))
    }
    (directory() / _MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
