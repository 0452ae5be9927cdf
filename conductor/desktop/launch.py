"""Starting applications and opening URLs, detached so they outlive the call and us.

`launch(app)` means what the reference's `Launch { app }` means on each platform. On macOS it is
`open -a app`. On Linux `app` is, in this order: a path to an executable; a desktop entry, by
its id (`firefox`, `org.gnome.Terminal.desktop`) or its Name (`Visual Studio Code`), ignoring
case, started through gtk-launch or gio; an executable on PATH (what the reference ran).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from conductor._files import read_bytes
from conductor.desktop._backends import Backend, Runner, attempt, current_platform
from conductor.errors import DesktopError, DesktopFailure, FileError

MAX_ENTRY = 64 * 1024
MAX_ENTRIES = 10_000  # a bound on the directory walk, far above any real system


def _application_dirs() -> list[Path]:
    """Where desktop entries live, most important first (XDG Base Directory)."""
    home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    system = os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share"
    return [Path(d) / "applications" for d in [home, *system.split(":")] if d]


def _entries() -> list[tuple[str, Path]]:
    """(desktop id, file) for every entry; an id seen in an earlier directory shadows later ones."""
    found: dict[str, Path] = {}
    for directory in _application_dirs():
        for root, _dirs, files in os.walk(directory):
            for file in sorted(files):
                if not file.endswith(".desktop"):
                    continue
                path = Path(root) / file
                desktop_id = str(path.relative_to(directory)).replace(os.sep, "-")
                found.setdefault(desktop_id.lower(), path)
                if len(found) >= MAX_ENTRIES:
                    return list(found.items())
    return list(found.items())


def _entry_fields(path: Path) -> dict[str, str]:
    """The keys of the `[Desktop Entry]` group (untranslated); empty when unreadable."""
    try:
        text = read_bytes(path, "desktop entry", MAX_ENTRY).decode("utf-8", "replace")
    except FileError:
        return {}
    fields: dict[str, str] = {}
    in_group = False
    for line in text.splitlines():
        if line.startswith("["):
            in_group = line.strip() == "[Desktop Entry]"
        elif in_group and "=" in line:
            key, _, value = line.partition("=")
            fields.setdefault(key.strip(), value.strip())
    return fields


def _launchable(fields: dict[str, str]) -> bool:
    return fields.get("Type") == "Application" and fields.get("Hidden", "false") != "true"


def _find_desktop_entry(app: str) -> tuple[str, Path] | None:
    """The entry whose id (with or without `.desktop`) or else whose Name is `app`, ignoring
    case."""
    wanted = app.lower()
    entries = _entries()
    for desktop_id, path in entries:
        if desktop_id in (wanted, f"{wanted}.desktop") and _launchable(_entry_fields(path)):
            return desktop_id, path
    for desktop_id, path in entries:
        fields = _entry_fields(path)
        if fields.get("Name", "").lower() == wanted and _launchable(fields):
            return desktop_id, path
    return None


def launch(app: str, *, timeout: float) -> str:
    """Start `app` detached; returns how it was started (for the log)."""
    if not app.strip() or any(ord(c) < 0x20 for c in app):
        raise DesktopError(DesktopFailure.INVALID, f"launch: {app!r} is not an application name")
    op = f"launch {app}"
    if current_platform() == "darwin":
        return attempt(
            op, [Backend("open", _launcher(["open", "-a", app]), platform="darwin")], timeout
        )
    if "/" in app:
        program = str(Path(app).expanduser())
        if not (os.path.isfile(program) and os.access(program, os.X_OK)):
            raise DesktopError(DesktopFailure.IO, f"{op}: {program} is not an executable file")
        return attempt(op, [Backend(program, _starter([program]))], timeout)
    entry = _find_desktop_entry(app)
    backends: list[Backend[str]] = []
    if entry is not None:
        desktop_id, entry_file = entry
        backends += [
            Backend("gtk-launch", _launcher(["gtk-launch", desktop_id.removesuffix(".desktop")])),
            Backend("gio", _launcher(["gio", "launch", str(entry_file)])),
        ]
    backends.append(Backend(app, _starter([app])))
    try:
        return attempt(op, backends, timeout)
    except DesktopError as failed:
        if entry is None and failed.failure is DesktopFailure.UNSUPPORTED:
            dirs = ", ".join(str(d) for d in _application_dirs())
            raise DesktopError(
                DesktopFailure.IO,
                f"{op}: no desktop entry with that id or name (in {dirs}) "
                "and no executable of that name on PATH",
            ) from None
        raise


def _launcher(argv: list[str]) -> Callable[[Runner], str]:
    """A launcher exits once the application runs: its exit status says whether it did."""

    def act(run: Runner) -> str:
        run.start_detached(argv, wait_for_exit=True)
        return " ".join(argv)

    return act


def _starter(argv: list[str]) -> Callable[[Runner], str]:
    """The application itself: started is all we can know."""

    def act(run: Runner) -> str:
        run.start_detached(argv, wait_for_exit=False)
        return " ".join(argv)

    return act


def open_url(url: str, *, timeout: float) -> None:
    """Open an http(s) URL in the user's browser, without waiting for it."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise DesktopError(DesktopFailure.INVALID, "open_url takes http and https URLs only")
    attempt(
        "open_url",
        [
            # xdg-open waits for the browser: start it detached and do not wait.
            Backend(
                "xdg-open", lambda run: run.start_detached(["xdg-open", url], wait_for_exit=False)
            ),
            Backend(
                "open",
                lambda run: run.start_detached(["open", url], wait_for_exit=False),
                platform="darwin",
            ),
        ],
        timeout,
    )
