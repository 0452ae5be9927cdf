"""Compiled-module cache: wasmtime's serialized native code, keyed by the plugin's SHA-256 and the
engine configuration, so a second load skips compilation.

`Module.deserialize` runs an entry's native code as it is, so an entry is trusted only when it is
authenticated: an HMAC, keyed by a per-user secret kept beside the entries, covers the SHA-256 of
the exact verified `.wasm` bytes it was compiled from, the engine fingerprint and the code. An
entry that does not match the plugin being loaded (swapped, edited, truncated, from another
wasmtime) is ignored and rebuilt. The directory is 0700; one owned by another user or writable by
group or others is not used at all (the plugin is compiled, with one warning).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import stat
from pathlib import Path

import wasmtime

from conductor._files import MODULE_CACHE_LIMIT, create_exclusive, read_bytes, write_atomic
from conductor.errors import FileError, UnsafeCacheError

_log = logging.getLogger("conductor.plugins")

MAGIC = b"conductor-module\x01"
KEY_FILE = "cache.key"
KEY_BYTES = 32
_DIGEST = 32
_UNSAFE_MODE_BITS = stat.S_IWGRP | stat.S_IWOTH


def _make_private_directory(directory: Path) -> None:
    """Create `directory` and its missing parents 0700, whatever the umask says."""
    missing = []
    current = directory
    while not os.path.lexists(current) and current != current.parent:
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue  # made meanwhile by another process: the ownership check below judges it
        os.chmod(path, 0o700)


def _check_private_directory(directory: Path) -> None:
    info = os.stat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeCacheError(f"{directory} is not a directory")
    if info.st_uid != os.geteuid():
        raise UnsafeCacheError(f"{directory} is owned by another user (uid {info.st_uid})")
    if info.st_mode & _UNSAFE_MODE_BITS:
        raise UnsafeCacheError(
            f"{directory} is writable by group or others (mode {stat.S_IMODE(info.st_mode):o}); "
            f"chmod 700 it"
        )


def _private_key(path: Path) -> bytes | None:
    """The key in `path` if it is ours, private and well-formed; None otherwise."""
    try:
        info = os.stat(path)
        data = read_bytes(path, "module cache key", KEY_BYTES)
    except (OSError, FileError):
        return None
    private = info.st_uid == os.geteuid() and not stat.S_IMODE(info.st_mode) & 0o077
    return data if private and len(data) == KEY_BYTES else None


def _cache_key(directory: Path) -> bytes:
    """The per-user HMAC key, created atomically (0600) on first use. A key that is not ours,
    not private or damaged is replaced: every entry made under it is then simply rebuilt."""
    path = directory / KEY_FILE
    with contextlib.suppress(FileExistsError):
        create_exclusive(path, secrets.token_bytes(KEY_BYTES), mode=0o600)
    key = _private_key(path)
    if key is None:
        write_atomic(path, secrets.token_bytes(KEY_BYTES), mode=0o600)
        key = _private_key(path)
    if key is None:
        raise UnsafeCacheError(f"{path}: cannot keep a private key there")
    return key


class ModuleCache:
    """The cache in one directory (None: no cache) for one engine configuration."""

    def __init__(self, directory: Path | None, engine_fingerprint: str) -> None:
        self.directory = directory
        self.fingerprint = engine_fingerprint.encode()
        self._key: bytes | None = None
        self._checked = directory is None

    def _hmac_key(self) -> bytes | None:
        """The key when the directory is safe to use; checked once, refused with one warning."""
        if not self._checked:
            self._checked = True
            assert self.directory is not None
            try:
                _make_private_directory(self.directory)
                _check_private_directory(self.directory)
                self._key = _cache_key(self.directory)
            except (UnsafeCacheError, OSError) as exc:
                reason = exc.diagnostics() if isinstance(exc, UnsafeCacheError) else str(exc)
                _log.warning("module cache not used, compiling plugins instead: %s", reason)
        return self._key

    def _path(self, plugin_digest: bytes) -> Path:
        assert self.directory is not None
        name = hashlib.sha256(plugin_digest + self.fingerprint).hexdigest()
        return self.directory / f"{name}.cwasm"

    def _mac(self, key: bytes, body: bytes) -> bytes:
        return hmac.new(key, MAGIC + body, hashlib.sha256).digest()

    def _body(self, plugin_digest: bytes, artifact: bytes) -> bytes:
        return (
            plugin_digest + len(self.fingerprint).to_bytes(2, "big") + self.fingerprint + artifact
        )

    def load(self, engine: wasmtime.Engine, plugin_digest: bytes) -> wasmtime.Module | None:
        """The module compiled from the bytes whose SHA-256 is `plugin_digest`, if a genuine
        entry for them exists; None (compile instead) for anything else."""
        key = self._hmac_key()
        if key is None:
            return None
        try:
            blob = read_bytes(self._path(plugin_digest), "module cache entry", MODULE_CACHE_LIMIT)
        except FileError:
            return None  # absent, a FIFO or device, or oversized: rebuilt and replaced
        header = len(MAGIC) + _DIGEST
        if not blob.startswith(MAGIC) or len(blob) <= header:
            return None
        mac, body = blob[len(MAGIC) : header], blob[header:]
        if not hmac.compare_digest(mac, self._mac(key, body)):
            return None
        prefix = self._body(plugin_digest, b"")
        if not body.startswith(prefix) or len(body) == len(prefix):
            return None
        try:
            return wasmtime.Module.deserialize(engine, body[len(prefix) :])
        except wasmtime.WasmtimeError:
            return None

    def store(self, module: wasmtime.Module, plugin_digest: bytes) -> None:
        key = self._hmac_key()
        if key is None:
            return
        body = self._body(plugin_digest, bytes(module.serialize()))
        # A cache that cannot be written only costs the next load a compile.
        with contextlib.suppress(OSError, FileError):
            write_atomic(self._path(plugin_digest), MAGIC + self._mac(key, body) + body, mode=0o600)
