"""Keep the MIDI libraries' own stderr chatter out of our one-line errors.

ALSA and JACK print to file descriptor 2 from C when a client cannot be made ("ALSA lib
seq_hw.c:… Cannot open", "Cannot connect to server socket"), before rtmidi raises and we say the
same thing in one line. Around the calls that create a client, fd 2 points at a temporary file:
when the call succeeds, whatever landed there is written back (nothing is lost, our own log lines
from other threads included); when it raises, the chatter goes to the debug log (`--debug`
shows it) and the caller's error line is all a person sees.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import IO

_log = logging.getLogger("conductor.midi")
_CHATTER_LIMIT = 64 * 1024  # what is kept of it; the libraries say a few lines


class _Fd2:
    """fd 2 belongs to the whole process: one capture at a time; a nested one is the outer's."""

    lock = threading.RLock()
    depth = 0  # only changed by the thread holding `lock`


@contextlib.contextmanager
def library_chatter_held() -> Iterator[None]:
    """Hold what C code writes on fd 2 during the block; see the module docstring."""
    with _Fd2.lock:
        if _Fd2.depth:
            yield
            return
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.flush()  # what Python wrote before stays before
        try:
            capture = tempfile.TemporaryFile()  # noqa: SIM115 (closed on every path below)
        except OSError:  # nowhere to hold it: let it through
            yield
            return
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all: nothing to keep clean
            capture.close()
            yield
            return
        with capture:
            _Fd2.depth = 1
            try:
                os.dup2(capture.fileno(), 2)
                yield
            except BaseException:
                _restore(saved)
                for line in _read(capture).decode(errors="replace").splitlines():
                    _log.debug("the MIDI library said: %s", line)
                raise
            _restore(saved)
            chatter = _read(capture)
        while chatter:
            chatter = chatter[os.write(2, chatter) :]


def _restore(saved: int) -> None:
    _Fd2.depth = 0
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.flush()  # what Python wrote meanwhile joins the capture, in order
    os.dup2(saved, 2)
    os.close(saved)


def _read(capture: IO[bytes]) -> bytes:
    capture.seek(0)
    return capture.read(_CHATTER_LIMIT)
