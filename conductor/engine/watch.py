"""Watching the files a running engine depends on (the config, the grants store, the trust
store), so a change to any of them is re-evaluated while `run` goes on."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import watchfiles

TICK_MS = 200  # how often the watched set is re-read (the config may name another trust store)


def _spellings(path: Path) -> frozenset[Path]:
    """A file as named and as resolved: a symlinked store is written through its target."""
    absolute = Path(os.path.abspath(path))
    return frozenset({absolute, absolute.resolve()})


def _nearest_existing(directory: Path) -> Path:
    while not directory.is_dir() and directory != directory.parent:
        directory = directory.parent
    return directory


def _plan(targets: Callable[[], set[Path]]) -> tuple[frozenset[Path], frozenset[Path]]:
    files = frozenset().union(*(_spellings(path) for path in targets()))
    return files, frozenset(_nearest_existing(path.parent) for path in files)


def watch_files(
    targets: Callable[[], set[Path]], stop: threading.Event, changed: Callable[[], None]
) -> None:
    """Call `changed` whenever one of `targets()` is written, replaced or removed, until `stop`.

    Only the directories holding the files are watched (not recursively). A file whose directory
    does not exist yet is watched through its nearest existing ancestor; when that directory
    appears, or `targets()` names other files, the watch starts over and `changed` is called
    once it is live, since the file may have been written meanwhile.
    """
    restarted = False
    while not stop.is_set():
        files, directories = _plan(targets)
        for changes in watchfiles.watch(
            *directories,
            watch_filter=None,
            stop_event=stop,
            debounce=50,
            rust_timeout=TICK_MS,
            yield_on_timeout=True,
            recursive=False,
        ):
            # After a restart, report once the new watch is live: a write may have come between.
            if restarted or any(_spellings(Path(path)) & files for _, path in changes):
                restarted = False
                changed()
            if _plan(targets) != (files, directories):
                restarted = True
                break
