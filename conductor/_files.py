"""Atomic, locked writes for the files Conductor owns (trust store, grants, keys).

A reader never sees a half-written file (temp file + fsync + rename), and two processes updating
the same file take turns through a lock file beside it, so no update is lost.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from conductor.errors import FileError

LOCK_TIMEOUT_S = 30.0


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the inter-process lock that serialises read-modify-write cycles on `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S)
    try:
        with lock:
            yield
    except Timeout as exc:
        raise FileError(
            f"{path}: another process holds its lock for over {LOCK_TIMEOUT_S:.0f} s"
        ) from exc


def _temp_beside(path: Path, mode: int) -> tuple[int, str]:
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, mode)
    return fd, temp_name


def _write_all(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data` in one step; the file gets `mode` from its first byte on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = _temp_beside(path, mode)
    try:
        _write_all(fd, data)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def create_exclusive(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `path` atomically, failing with FileExistsError if it already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = _temp_beside(path, mode)
    try:
        _write_all(fd, data)
        os.link(temp_name, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)


def read_bytes(path: Path, what: str, limit: int | None = None) -> bytes:
    """Read a file whole, turning OS errors into one-line `FileError`s that name it."""
    try:
        if limit is not None and path.stat().st_size > limit:
            raise FileError(f"{path}: {what} is larger than {limit} bytes")
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise FileError(f"{path}: {what} not found") from exc
    except IsADirectoryError as exc:
        raise FileError(f"{path}: {what} is a directory") from exc
    except OSError as exc:
        raise FileError(f"{path}: cannot read {what}: {exc.strerror}") from exc
