"""Running a command (a plugin's `exec`, a desktop tool, a Shell action) within a budget.

The budget covers the whole call: starting the command, writing its stdin, waiting for it and
reading its output, all from one loop that never blocks past the deadline. No process the command
starts outlives the call. On Linux a per-call supervisor (`_supervisor.py`: a child subreaper that
dies with Conductor) kills the whole tree, background children, `setsid` and double forks
included, when the command ends or the budget runs out. Elsewhere (macOS) the command gets its own
process group, killed at the same moments; a process that leaves the group escapes it there.
"""

from __future__ import annotations

import abc
import contextlib
import os
import select
import selectors
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

OUTPUT_CAP = 64 * 1024
DESKTOP_VARIABLES = ("DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS")
SUPERVISOR = Path(__file__).with_name("_supervisor.py")
SUPERVISED = sys.platform.startswith("linux")
STOP_GRACE_S = 0.5  # how long a supervisor told to stop may take to kill the tree and leave
DRAIN_GRACE_S = 0.1  # output after the command ended: only a process that escaped still holds it
POLL_S = 0.01  # without a supervisor nothing signals the command's end: look this often
CHUNK = 65536


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


def run_bounded(
    argv: list[str],
    budget_s: float,
    *,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    capture: bool = True,
) -> Completed:
    """Run `argv` without a shell; everything, stdin included, happens within `budget_s` from now.

    When the budget runs out every process of the call is killed (`timed_out`); when the command
    ends, whatever it left running is killed too, so the call returns as soon as the command
    ends even if a background child still holds its output. `capture=False` discards the output
    and is for tools that hand their work to a process they leave behind (a clipboard owner):
    that process runs on until it exits by itself or Conductor exits. Raises OSError when
    `argv[0]` cannot be started.
    """
    deadline = time.monotonic() + budget_s
    tree: _Tree = (_Supervised if SUPERVISED else _Group)(
        argv, stdin is not None, capture, env, cwd
    )
    try:
        completed = _exchange(tree, stdin, capture, deadline)
        if completed.timed_out:
            tree.stop()
        else:
            tree.finish()
    except BaseException:
        tree.stop()
        raise
    finally:
        tree.close()
    return completed


class _Output:
    """One captured stream: its first OUTPUT_CAP bytes, and whether more came."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        room = OUTPUT_CAP - len(self.data)
        if len(chunk) > room:
            self.truncated = True
        if room > 0:
            self.data += chunk[:room]


def _exchange(tree: _Tree, stdin: bytes | None, capture: bool, deadline: float) -> Completed:
    """Feed stdin, collect output and watch for the command's end, until it ends or time is up."""
    process = tree.process
    selector = selectors.DefaultSelector()
    outputs: dict[int, _Output] = {}
    streams = (process.stdout, process.stderr) if capture else ()
    for stream in streams:
        if stream is not None:
            outputs[stream.fileno()] = _Output()
            selector.register(stream.fileno(), selectors.EVENT_READ)
    pending = memoryview(stdin or b"")
    stdin_fd = process.stdin.fileno() if process.stdin is not None else -1
    if stdin_fd >= 0:
        if pending:
            os.set_blocking(stdin_fd, False)
            selector.register(stdin_fd, selectors.EVENT_WRITE)
        else:
            process.stdin.close()  # type: ignore[union-attr]
    if tree.watch is not None:
        selector.register(tree.watch, selectors.EVENT_READ)
    status: int | None = None
    ended_at = 0.0
    open_outputs = set(outputs)
    try:
        while True:
            if status is None:
                status = tree.poll()
                if status is not None:
                    ended_at = time.monotonic()
                    if tree.watch is not None:
                        selector.unregister(tree.watch)
            if status is not None and not open_outputs:
                break
            now = time.monotonic()
            limit = deadline if status is None else min(deadline, ended_at + DRAIN_GRACE_S)
            if now >= limit:
                break
            wait = limit - now if tree.watch is not None else min(limit - now, POLL_S)
            for key, _ in selector.select(wait):
                fd = key.fd
                if fd == stdin_fd:
                    try:
                        pending = pending[os.write(fd, pending[:CHUNK]) :]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:  # the command does not want the rest
                        pending = pending[:0]
                    if not pending:
                        selector.unregister(fd)
                        process.stdin.close()  # type: ignore[union-attr]
                elif fd in outputs:
                    chunk = os.read(fd, CHUNK)
                    if chunk:
                        outputs[fd].add(chunk)
                    else:
                        selector.unregister(fd)
                        open_outputs.discard(fd)
    finally:
        selector.close()
    out = outputs.get(process.stdout.fileno()) if process.stdout is not None else None
    err = outputs.get(process.stderr.fileno()) if process.stderr is not None else None
    return Completed(
        status if status is not None else -signal.SIGKILL,
        bytes(out.data) if out else b"",
        bytes(err.data) if err else b"",
        any(o.truncated for o in outputs.values()),
        status is None,
    )


class _Tree(abc.ABC):
    """The processes of one call, however they are kept together on this platform."""

    process: subprocess.Popen[bytes]
    watch: int | None = None  # readable when the command's end may be known; None: poll

    @abc.abstractmethod
    def poll(self) -> int | None:
        """The command's status once it has ended (and what it left is dealt with), else None."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Kill every process of the call now."""

    @abc.abstractmethod
    def finish(self) -> None:
        """After a normal end: reap what is ours."""

    def close(self) -> None:
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def _pipes(with_stdin: bool, capture: bool) -> tuple[int, int]:
    """(stdin, stdout and stderr) for Popen."""
    return (
        subprocess.PIPE if with_stdin else subprocess.DEVNULL,
        subprocess.PIPE if capture else subprocess.DEVNULL,
    )


def _kill_group(leader: int) -> None:
    """SIGKILL the process group `leader` started. Its id stays reserved while any member lives,
    so this reaches exactly what is left of the group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signal.SIGKILL)


class _Supervised(_Tree):
    """Linux: the command runs under `_supervisor.py`, which reports its end on a pipe."""

    def __init__(
        self,
        argv: list[str],
        with_stdin: bool,
        capture: bool,
        env: dict[str, str] | None,
        cwd: Path | None,
    ) -> None:
        self.command = argv[0]
        self.keep = not capture
        stdin, out = _pipes(with_stdin, capture)
        self.status: int | None = None
        self._line = b""
        status_read, status_write = os.pipe()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    str(SUPERVISOR),
                    str(status_write),
                    str(os.getpid()),
                    "keep" if self.keep else "kill",
                    "keep" if "LC_CTYPE" in (os.environ if env is None else env) else "drop",
                    "--",
                    *argv,
                ],
                stdin=stdin,
                stdout=out,
                stderr=out,
                env=env,
                cwd=cwd,
                start_new_session=True,  # no terminal signals; a group for the last-resort kill
                pass_fds=(status_write,),
            )
        except BaseException:
            os.close(status_read)
            raise
        finally:
            os.close(status_write)
        os.set_blocking(status_read, False)
        self.status_fd = self.watch = status_read

    def poll(self) -> int | None:
        if self.status is not None:
            return self.status
        try:
            chunk = os.read(self.status_fd, 64)
        except BlockingIOError:
            return None
        self._line += chunk
        if chunk and b"\n" not in self._line:
            return None
        word, _, number = self._line.partition(b"\n")[0].decode().partition(" ")
        if word == "exec":  # the supervisor leaves right after saying so
            with contextlib.suppress(subprocess.TimeoutExpired):  # else: stopped by run_bounded
                self.process.wait(STOP_GRACE_S)
            code = int(number)
            raise OSError(code, os.strerror(code), self.command)
        if word == "exit":
            self.status = int(number)
        else:  # EOF without a word: the supervisor itself was killed; the group is what is left
            self.stop()
            self.status = self.process.returncode
        return self.status

    def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGCONT)  # a stopped supervisor cannot clean up
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.returncode < 0:  # it was killed before it could clean up
            _kill_group(self.process.pid)  # so what is left of its group goes at least

    def finish(self) -> None:
        if self.keep:  # it supervises what the command left behind: reap it when that is done
            threading.Thread(target=self.process.wait, name="conductor-holder", daemon=True).start()
            return
        # It leaves right after its status line, and its end closes the pipe. (Popen.wait with a
        # timeout would poll, adding milliseconds to every exec.)
        if self._wait_for_eof(STOP_GRACE_S):
            self.process.wait()
        else:
            self.stop()

    def _wait_for_eof(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            select.select([self.status_fd], [], [], left)
            try:
                if not os.read(self.status_fd, 64):
                    return True
            except BlockingIOError:
                continue
        return False

    def close(self) -> None:
        super().close()
        if self.watch is not None:
            self.watch = None
            os.close(self.status_fd)


class _Group(_Tree):
    """Elsewhere: the command leads its own process group, killed when it ends or at the budget."""

    def __init__(
        self,
        argv: list[str],
        with_stdin: bool,
        capture: bool,
        env: dict[str, str] | None,
        cwd: Path | None,
    ) -> None:
        self.keep = not capture
        stdin, out = _pipes(with_stdin, capture)
        self.process = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=out,
            stderr=out,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )

    def poll(self) -> int | None:
        status = self.process.poll()
        if status is not None and not self.keep:
            _kill_group(self.process.pid)
        return status

    def stop(self) -> None:
        _kill_group(self.process.pid)
        self.process.wait()

    def finish(self) -> None:
        """Nothing left: `poll` reaped the command and killed its group."""
