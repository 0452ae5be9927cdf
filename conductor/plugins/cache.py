"""Compiled-module cache: wasmtime's serialized form, keyed by the plugin's SHA-256 and the
engine configuration, so a second load skips compilation.

Deserializing trusts its input, so each entry carries a SHA-256 of its own bytes; an entry that
does not match (truncated, edited, from another wasmtime) is ignored and rewritten.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import wasmtime

from conductor._files import PLUGIN_LIMIT, read_bytes, write_atomic
from conductor.errors import ConductorError

_DIGEST = 32
CACHE_ENTRY_LIMIT = 4 * PLUGIN_LIMIT  # native code is a few times the size of its .wasm


class ModuleCache:
    def __init__(self, directory: Path | None, engine_fingerprint: str) -> None:
        self.directory = directory
        self.fingerprint = engine_fingerprint

    def _path(self, plugin_digest: bytes) -> Path | None:
        if self.directory is None:
            return None
        key = hashlib.sha256(plugin_digest + self.fingerprint.encode()).hexdigest()
        return self.directory / f"{key}.cwasm"

    def load(self, engine: wasmtime.Engine, plugin_digest: bytes) -> wasmtime.Module | None:
        path = self._path(plugin_digest)
        if path is None:
            return None
        try:
            blob = read_bytes(path, "module cache entry", CACHE_ENTRY_LIMIT)
        except ConductorError:  # missing, unreadable or not a regular file: compile instead
            return None
        checksum, artifact = blob[:_DIGEST], blob[_DIGEST:]
        if len(blob) <= _DIGEST or hashlib.sha256(artifact).digest() != checksum:
            return None
        try:
            return wasmtime.Module.deserialize(engine, artifact)
        except wasmtime.WasmtimeError:
            return None

    def store(self, module: wasmtime.Module, plugin_digest: bytes) -> None:
        path = self._path(plugin_digest)
        if path is None:
            return
        artifact = bytes(module.serialize())
        # A cache that cannot be written only costs the next load a compile.
        with contextlib.suppress(OSError):
            write_atomic(path, hashlib.sha256(artifact).digest() + artifact, mode=0o600)
