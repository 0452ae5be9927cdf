"""Running a command for a plugin: its own process group, killed at the budget, output capped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

OUTPUT_CAP = 64 * 1024
DESKTOP_VARIABLES = ("DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS")


@dataclass(frozen=True)
class Completed:
    status: int
    stdout: bytes
    stderr: bytes
    truncated: bool
    timed_out: bool


def minimal_environment() -> dict[str, str]:
    """PATH, LANG and the desktop session variables tools need; nothing else of the host's."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    env.update({name: os.environ[name] for name in DESKTOP_VARIABLES if name in os.environ})
    return env


def _drain(stream: object, keep: bytearray, flags: list[bool]) -> None:
    while True:
        chunk = stream.read(65536)  # type: ignore[attr-defined]
        if not chunk:
            return
        room = OUTPUT_CAP - len(keep)
        if room > 0:
            keep += chunk[:room]
        if len(chunk) > max(room, 0):
            flags[0] = True


def run_bounded(
    argv: list[str],
    budget_s: float,
    *,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    capture: bool = True,
) -> Completed:
    """Run without a shell; kill the whole process group when `budget_s` runs out."""
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    process = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=out,
        stderr=out,
        env=env,
        cwd=cwd,
        start_new_session=True,
        close_fds=True,
    )
    stdout, stderr, truncated = bytearray(), bytearray(), [False]
    readers = []
    if capture:
        readers = [
            threading.Thread(target=_drain, args=(process.stdout, stdout, truncated), daemon=True),
            threading.Thread(target=_drain, args=(process.stderr, stderr, truncated), daemon=True),
        ]
        for reader in readers:
            reader.start()
    if stdin is not None and process.stdin is not None:
        try:
            process.stdin.write(stdin)
            process.stdin.close()
        except BrokenPipeError:
            pass
    timed_out = False
    try:
        process.wait(timeout=budget_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    for reader in readers:
        reader.join(timeout=0.5 if timed_out else max(budget_s, 0.5))
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
    return Completed(process.returncode, bytes(stdout), bytes(stderr), truncated[0], timed_out)
