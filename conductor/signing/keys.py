"""Ed25519 signing keys on disk: the raw 32-byte seed (reference-compatible) or a
passphrase-encrypted seed (Argon2id + XSalsa20-Poly1305), plus public-key validation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings
import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils
from nacl.signing import SigningKey

from conductor._files import KEY_LIMIT, create_exclusive, read_bytes, write_atomic
from conductor.errors import FileError, KeyFileError
from conductor.signing._hex import strict_unhex

SEED_BYTES = 32
ENCRYPTED_FORMAT = "conductor-encrypted-key"
PASSPHRASE_ENV = "CONDUCTOR_KEY_PASSPHRASE"

PassphraseSource = Callable[[], str]

# The most Argon2id work a key file may ask for: libsodium's "sensitive" preset (4 passes, 1 GiB),
# above what we write. Checked before any work, so a 300-byte file cannot demand gigabytes of
# memory or hours of hashing before "wrong passphrase".
KDF_LIMITS = {
    "opslimit": (nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE),
    "memlimit": (nacl.pwhash.argon2id.MEMLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE),
}


def require_passphrase(value: str, source: str) -> str:
    """An empty passphrase protects nothing: refused wherever it comes from."""
    if not value:
        raise KeyFileError(f"an empty passphrase is not allowed ({source})")
    return value


def is_valid_public_key(key: bytes) -> bool:
    """True for a canonical Ed25519 point of prime order.

    The identity and the small-order points are refused: laxer verifiers accept forged signatures
    under them, so trusting one would mean trusting anybody.
    """
    return len(key) == 32 and bool(nacl.bindings.crypto_core_ed25519_is_valid_point(key))


def parse_public_key(text: str, where: str) -> bytes:
    """Parse 64 hex characters (any case) into a validated public key; `where` names the source."""
    candidate = text.strip().lower()
    key = strict_unhex(candidate, 32)
    if key is None:
        raise KeyFileError(f"{where}: a public key is 64 hex characters, got {text.strip()[:80]!r}")
    if not is_valid_public_key(key):
        raise KeyFileError(
            f"{where}: {candidate} is not a usable Ed25519 public key (small-order or off-curve point)"
        )
    return key


@dataclass(frozen=True)
class _KeyPaths:
    private: Path
    public: Path

    @classmethod
    def from_prefix(cls, prefix: Path) -> _KeyPaths:
        return cls(Path(f"{prefix}.private"), Path(f"{prefix}.public"))


def _encrypt_seed(seed: bytes, passphrase: str) -> bytes:
    require_passphrase(passphrase, "encrypting a key")
    ops = nacl.pwhash.argon2id.OPSLIMIT_MODERATE
    mem = nacl.pwhash.argon2id.MEMLIMIT_MODERATE
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    key = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt, ops, mem
    )
    nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    sealed = nacl.secret.SecretBox(key).encrypt(seed, nonce)
    document = {
        "format": ENCRYPTED_FORMAT,
        "version": 1,
        "kdf": "argon2id",
        "opslimit": ops,
        "memlimit": mem,
        "salt": salt.hex(),
        "cipher": "xsalsa20poly1305",
        "nonce": nonce.hex(),
        "ciphertext": sealed.ciphertext.hex(),
    }
    return (json.dumps(document, indent=2) + "\n").encode()


def _kdf_limit(path: Path, document: dict[str, object], name: str) -> int:
    value = document.get(name)
    low, high = KDF_LIMITS[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise KeyFileError(f"{path}: {name} must be an integer")
    if not low <= value <= high:
        raise KeyFileError(
            f"{path}: {name} {value} is outside {low}..{high} (libsodium's sensitive limit); "
            f"refusing to derive the key"
        )
    return value


def _decrypt_seed(path: Path, data: bytes, passphrase: PassphraseSource) -> bytes:
    try:
        document = json.loads(data)
        if document.get("format") != ENCRYPTED_FORMAT or document.get("version") != 1:
            raise ValueError
        salt = bytes.fromhex(document["salt"])
        nonce = bytes.fromhex(document["nonce"])
        ciphertext = bytes.fromhex(document["ciphertext"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyFileError(f"{path}: not a raw 32-byte key nor an encrypted Conductor key") from exc
    ops, mem = _kdf_limit(path, document, "opslimit"), _kdf_limit(path, document, "memlimit")
    if (
        len(salt) != nacl.pwhash.argon2id.SALTBYTES
        or len(nonce) != nacl.secret.SecretBox.NONCE_SIZE
    ):
        raise KeyFileError(f"{path}: salt or nonce has the wrong length")
    try:
        key = nacl.pwhash.argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE, passphrase().encode(), salt, ops, mem
        )
        seed = nacl.secret.SecretBox(key).decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError as exc:
        raise KeyFileError(f"{path}: wrong passphrase, or the key file is damaged") from exc
    if len(seed) != SEED_BYTES:
        raise KeyFileError(f"{path}: encrypted key does not hold a 32-byte seed")
    return seed


def generate_key(prefix: Path, *, force: bool = False, passphrase: str | None = None) -> SigningKey:
    """Write `PREFIX.private` (0600) and `PREFIX.public`; refuse to overwrite unless `force`."""
    paths = _KeyPaths.from_prefix(prefix)
    if not force:
        for path in (paths.private, paths.public):
            if path.exists():
                raise FileError(f"{path}: already exists (use --force to overwrite)")
    signing_key = SigningKey.generate()
    seed = bytes(signing_key)
    private = seed if passphrase is None else _encrypt_seed(seed, passphrase)
    public = (bytes(signing_key.verify_key).hex() + "\n").encode()
    try:
        if force:
            write_atomic(paths.private, private, mode=0o600)
            write_atomic(paths.public, public, mode=0o644)
        else:
            create_exclusive(paths.private, private, mode=0o600)
            create_exclusive(paths.public, public, mode=0o644)
    except FileExistsError as exc:
        raise FileError(
            f"{exc.filename or prefix}: already exists (use --force to overwrite)"
        ) from exc
    except OSError as exc:
        raise FileError(f"{prefix}: cannot write key files: {exc.strerror}") from exc
    return signing_key


def _resolve_key_file(key: Path) -> Path:
    """A KEY argument is a prefix (`KEY.private` is tried first) or the private file itself."""
    with_suffix = Path(f"{key}.private")
    if with_suffix.is_file():
        return with_suffix
    if key.is_file():
        return key
    raise FileError(f"{key}: no private key found (tried {with_suffix} and {key})")


def load_signing_key(key: Path, passphrase: PassphraseSource) -> SigningKey:
    """Load a raw or encrypted private key; `passphrase` is only asked when the key is encrypted."""
    path = _resolve_key_file(key)
    data = read_bytes(path, "private key", KEY_LIMIT)
    if len(data) == SEED_BYTES:
        return SigningKey(data)
    if data.lstrip().startswith(b"{"):
        return SigningKey(_decrypt_seed(path, data, passphrase))
    if path.name.endswith(".public") or strict_unhex(data.strip().decode(errors="replace"), 32):
        raise KeyFileError(f"{path}: this is a public key; signing needs the .private file")
    raise KeyFileError(
        f"{path}: a private key is 32 raw bytes or an encrypted key file, got {len(data)} bytes"
    )


def signing_key_from_env(variable: str) -> SigningKey:
    """Read a 64-hex seed from an environment variable (CI secrets)."""
    value = os.environ.get(variable)
    if value is None or not value.strip():
        raise KeyFileError(f"environment variable {variable} is not set or empty")
    seed = strict_unhex(value.strip().lower(), SEED_BYTES)
    if seed is None:
        raise KeyFileError(
            f"environment variable {variable}: expected a 64-hex-character Ed25519 seed"
        )
    return SigningKey(seed)
