"""Reading and writing files safely: one bounded reader for every file we read, and atomic,
locked writes for the files Conductor owns (trust store, grants, keys).

A reader never sees a half-written file (temp file + fsync + rename), and two processes updating
the same file take turns through a lock file beside it, so no update is lost. A file that is a
symlinked store stays one: its writes replace the target, and the lock sits beside the target, so
every path that leads to the same file shares one lock.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from conductor.errors import FileError

LOCK_TIMEOUT_S = 30.0


def write_target(path: Path) -> Path:
    """The file a write to `path` must replace: `path` itself, or the end of its symlink chain
    (which need not exist yet). Replacing the link instead would silently fork the file."""
    return Path(os.path.realpath(path))


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the inter-process lock that serialises read-modify-write cycles on `path`."""
    from filelock import FileLock, Timeout  # only writers pay for it: verify never locks

    target = write_target(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileError(f"{path}: cannot create {target.parent}: {exc.strerror}") from exc
    lock = FileLock(str(target) + ".lock", timeout=LOCK_TIMEOUT_S)
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


def write_atomic(
    path: Path, data: bytes, mode: int = 0o644, *, follow_symlinks: bool = False
) -> None:
    """Replace `path` with `data` in one step; the file gets `mode` from its first byte on.

    A symlink at `path` is itself replaced unless `follow_symlinks` (the stores the user may
    keep elsewhere, such as a trust store in a dotfiles repository): written blindly through, a
    link planted beside a plugin (`x.wasm.sig -> ~/.bashrc`) would aim our write anywhere.
    """
    target = write_target(path) if follow_symlinks else path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = _temp_beside(target, mode)
    except OSError as exc:
        raise FileError(f"{path}: cannot write: {exc.strerror}") from exc
    try:
        _write_all(fd, data)
        os.replace(temp_name, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        if isinstance(exc, OSError):
            raise FileError(f"{path}: cannot write: {exc.strerror}") from exc
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


# What each kind of file may weigh (SPEC §2): reads stop there, whatever the file claims.
SIGNATURE_LIMIT = 64 * 1024
KEY_LIMIT = 4 * 1024
TEXT_FILE_LIMIT = 1024 * 1024  # configs, trust store, grants
PLUGIN_LIMIT = 64 * 1024 * 1024
MODULE_CACHE_LIMIT = 4 * PLUGIN_LIMIT  # compiled code is about 3 times its .wasm
MIDI_FILE_LIMIT = 64 * 1024 * 1024  # a replayed Standard MIDI File

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_bytes(path: Path, what: str, limit: int) -> bytes:
    """Read a regular file (or a symlink to one) of at most `limit` bytes.

    FIFOs, devices, sockets and directories are refused before a byte is read (opening
    non-blocking, then checking the open descriptor), and reading stops at `limit` whatever
    `st_size` says, so no input can hang us or fill memory. Errors are one-line `FileError`s.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        dangling = os.path.islink(path)
        raise FileError(
            f"{path}: {what} not found" + (" (a symlink to a missing file)" if dangling else "")
        ) from exc
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket, or a device with nothing behind it
            raise FileError(f"{path}: {what} is not a regular file") from exc
        raise FileError(f"{path}: cannot read {what}: {exc.strerror}") from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FileError(f"{path}: {what} is {_kind(mode)}, not a regular file")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1024 * 1024, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise FileError(f"{path}: {what} is larger than its {limit}-byte limit")
        return b"".join(chunks)
    except OSError as exc:
        raise FileError(f"{path}: cannot read {what}: {exc.strerror}") from exc
    finally:
        os.close(fd)


def read_if_present(path: Path, what: str, limit: int) -> bytes | None:
    """Like `read_bytes`, but None when no file is at `path` (or at the end of its symlink):
    for files that may be absent, such as a signature or a store not created yet. Decided by
    opening, not by an `exists()` beforehand that a FIFO would pass."""
    try:
        return read_bytes(path, what, limit)
    except FileError as exc:
        if isinstance(exc.__cause__, FileNotFoundError):
            return None
        raise
