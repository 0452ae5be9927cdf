"""Ctrl-C and SIGTERM while the main thread runs plugins (a config's `init`s, one `execute`).

Python runs signal handlers on the main thread between bytecodes, so while that thread is inside
guest code a KeyboardInterrupt waits for the call's own deadline. Here a signal instead stops
the running call at once (`PluginHost.interrupt`), and the command ends with `Interrupted`
(exit 130 or 143) naming the plugin.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from conductor.errors import Interrupted
from conductor.plugins import _capi
from conductor.plugins.runtime import PluginHost

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def interrupt(host: PluginHost, signum: int, frame: FrameType | None) -> None:
    """What a handler of `signum` (running at `frame`) does for the plugin call the main thread
    may be in: stop it, and if the signal found the thread waiting in a host function, end that
    wait too by raising Interrupted there. Needs an interruptible host."""
    host.interrupt(signum)
    if _capi.in_host_call(frame):
        raise Interrupted(signum)


@contextlib.contextmanager
def interruptible(host: PluginHost) -> Iterator[None]:
    """While the block runs, SIGINT or SIGTERM raises Interrupted: from the plugin call the main
    thread is in (see `interrupt`), or where that thread is, like KeyboardInterrupt. The previous
    handlers come back after. Off the main thread, where no handler can be set, the block runs
    as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: FrameType | None) -> None:
        interrupt(host, signum, frame)
        if _capi.outside_guest(frame):
            raise Interrupted(signum)

    assert host.poll is not None, "interruptible() needs PluginHost(interruptible=True)"
    previous = {signum: signal.signal(signum, on_signal) for signum in SIGNALS}
    try:
        yield
    finally:
        # Blocked while the old handlers come back: a signal meanwhile goes to them, after.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            for signum, handler in previous.items():
                signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    if host.interrupted is not None:  # it came while no call could raise it
        raise Interrupted(host.interrupted)


@contextlib.contextmanager
def main_thread_host(cache_dir: Path | None) -> Iterator[PluginHost]:
    """A plugin host for a command that calls plugins on its main thread (`check`, `plugin
    exec`, `inspect`, `list`): SIGINT or SIGTERM stops the call at once and raises Interrupted."""
    with PluginHost(cache_dir, interruptible=True) as host, interruptible(host):
        yield host
