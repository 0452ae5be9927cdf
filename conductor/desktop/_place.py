"""Putting a file the host made into a directory a plugin can write to, without ever following
a symlink the plugin planted there (SPEC §2): the name is checked without following it, the
bytes go to a fresh exclusive temp file, and a rename relative to the directory's descriptor
puts it in place (a rename replaces a directory entry; it never writes through a link)."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from conductor.errors import DesktopError, DesktopFailure

_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket"}


def place_file(directory: Path, name: str, data: bytes, what: str) -> None:
    """Write `data` as `directory/name`, replacing a regular file of that name; refuse a name
    that is a symlink or anything but a regular file."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise DesktopError(DesktopFailure.INVALID, f"{what}: {name!r} is not a plain file name")
    try:
        directory_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise DesktopError(
            DesktopFailure.IO, f"{what}: cannot open {directory}: {exc.strerror}"
        ) from None
    temp = f".{what}-{secrets.token_hex(8)}.tmp"  # a leading dot: no name a plugin may ask for
    try:
        _refuse_links(directory_fd, name, what)
        fd = os.open(
            temp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o644,
            dir_fd=directory_fd,
        )
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.rename(temp, name, src_dir_fd=directory_fd, dst_dir_fd=directory_fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=directory_fd)
        raise DesktopError(
            DesktopFailure.IO, f"{what}: cannot write {name}: {exc.strerror}"
        ) from None
    finally:
        os.close(directory_fd)


def _refuse_links(directory_fd: int, name: str, what: str) -> None:
    try:
        mode = os.stat(name, dir_fd=directory_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise DesktopError(
            DesktopFailure.INVALID, f"{what}: {name} is a symlink; refusing to write through it"
        )
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise DesktopError(
            DesktopFailure.INVALID, f"{what}: {name} is {kind}; refusing to replace it"
        )
