"""Runs one command for `run_bounded` on Linux and makes sure no process it starts outlives it.

Started as a script (`python -I -S _supervisor.py STATUS_FD PARENT_PID MODE LC_CTYPE -- ARGV...`),
so it imports only the standard library and starts in milliseconds. It makes itself a child subreaper:
every orphaned descendant, including one that called `setsid` or forked twice, is re-parented to
it instead of to init, so the whole tree stays findable. It asks for SIGTERM when the thread that
started it dies (Conductor exiting, however it exits), and SIGTERM from anyone makes it kill the
tree and leave.

MODE `kill`: when the command ends, every descendant is killed and reaped, then the status line
is written; so when the parent reads it, nothing the command started is running any more.
MODE `keep`: the status line is written when the command ends, and what it leaves behind (the
process that holds a clipboard selection) runs on under this supervisor until it exits by itself
or the parent dies.

LC_CTYPE `keep` or `drop`: in a C locale this interpreter adds LC_CTYPE to its own environment (PEP
538 locale coercion, which `-I` cannot turn off); `drop` removes it again, so the command gets
exactly the environment it was given.

Status lines on STATUS_FD: `exit N` (N as `Popen.returncode`: negative for a signal), or
`exec ERRNO` when the command could not be started.
"""

# Every import here costs each exec its start-up time: `_signal` is the C module behind `signal`,
# which would also import enum, functools and collections (6 ms); and no `from __future__`.
import _signal as signal  # type: ignore[import-not-found]
import ctypes
import os
import sys

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


class _Stop(Exception):
    """SIGTERM arrived: the budget ran out, or the parent died."""


def _stop(_signum: int, _frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once is enough: never interrupt the cleanup
    raise _Stop


def _descendants(root: int) -> list[int]:
    """Every process below `root`, from one pass over /proc (parent links from each `stat`)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read()
        except OSError:  # gone since listdir
            continue
        # The command name may hold spaces and parentheses: the fields after the last ")" are safe.
        ppid = int(fields[fields.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(name))
    found, pending = [], [root]
    while pending:
        for child in children.get(pending.pop(), ()):
            found.append(child)
            pending.append(child)
    return found


def _kill_tree() -> None:
    """SIGKILL every descendant and reap them, until none is left.

    A process forked after a scan has a parent that was just killed, so it is re-parented here
    and the next scan finds it; the loop ends when this process has no child at all, which (as a
    subreaper) means no descendant at all. Pids come from a scan microseconds old, and Linux hands
    out pids in order, so a pid cannot be reused by an unrelated process in between.
    """
    me = os.getpid()
    while True:
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:  # reap what is gone already
                pass
        except ChildProcessError:  # no child at all: the usual case, and no scan needed
            return
        for pid in _descendants(me):
            try:  # noqa: SIM105 (contextlib would add 2 ms to every start)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(-1, 0)  # one of them, at least, is dying now
        except ChildProcessError:
            return


def _report(status_fd: int, line: str) -> None:
    try:  # noqa: SIM105
        os.write(status_fd, line.encode() + b"\n")
    except OSError:  # the parent is gone; the tree is dealt with regardless
        pass


def _run_command(argv: list[str], errors: int, supervisor: int) -> None:
    """In the forked child: restore what Python changed, die with the supervisor, exec."""
    for number in (signal.SIGTERM, signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(number, signal.SIG_DFL)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != supervisor:
        return
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(errors, str(exc.errno or 0).encode())


def _wait_for(pid: int) -> int:
    """The command's status; orphans reaped along the way are the tree's business, not ours."""
    while True:
        reaped, status = os.waitpid(-1, 0)
        if reaped == pid:
            return os.waitstatus_to_exitcode(status)


def main(args: list[str]) -> int:
    status_fd, parent, mode, command = int(args[0]), int(args[1]), args[2], args[5:]
    if args[3] == "drop":
        os.environ.pop("LC_CTYPE", None)
    signal.signal(signal.SIGTERM, _stop)
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        _report(status_fd, f"exec {ctypes.get_errno()}")
        return 1
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the death signal was armed
        return 1
    os.set_inheritable(status_fd, False)
    errors_read, errors_write = os.pipe()  # close-on-exec: EOF without a word means exec worked
    supervisor = os.getpid()
    try:
        pid = os.fork()
        if pid == 0:
            try:
                os.close(errors_read)
                _run_command(command, errors_write, supervisor)
            finally:
                os._exit(127)
        os.close(errors_write)
        # Hold none of the command's pipes: their EOF must mean that the tree is gone.
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        failure = os.read(errors_read, 32)
        os.close(errors_read)
        status = _wait_for(pid)
        if failure or mode == "kill":
            _kill_tree()
        _report(status_fd, f"exec {int(failure)}" if failure else f"exit {status}")
        if failure or mode == "kill":
            return 0
        os.close(status_fd)
        while True:  # keep: wait for what the command left behind to exit by itself
            os.waitpid(-1, 0)
    except ChildProcessError:
        return 0
    except _Stop:
        _kill_tree()
        _report(status_fd, f"exit {-signal.SIGKILL}")  # if anyone still listens: it was killed
        return 0


if __name__ == "__main__":
    os._exit(main(sys.argv[1:]))  # no interpreter shutdown: 4 ms the caller would wait for
