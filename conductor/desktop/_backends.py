"""Trying the tools an operation can use, in order, within one time budget.

The first tool that is installed and succeeds wins. A tool that is missing, meant for another
platform or display, or that fails, is noted and the next one is tried; when none succeeds, one
line names every tool and why it did not. Running out of time stops at once (TIMEOUT).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from conductor._text import visible
from conductor.errors import DesktopError, DesktopFailure
from conductor.processes import Completed, run_bounded

T = TypeVar("T")
PLATFORM_NAMES = {"linux": "Linux", "darwin": "macOS"}


def current_platform() -> str:
    """`darwin` on macOS, `linux` everywhere else (the BSDs have the same tools)."""
    return "darwin" if sys.platform == "darwin" else "linux"


def on_wayland() -> bool:
    return bool(os.environ.get("WAYLAND_DISPLAY"))


class ToolFailed(Exception):
    """This tool did not do it; the next one may. The message is the reason, for the line that
    lists every tool tried."""


class Runner:
    """Runs one backend's commands against the operation's shared deadline."""

    def __init__(self, op: str, tool: str, deadline: float) -> None:
        self.op = op
        self.tool = tool
        self.deadline = deadline

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DesktopError(
                DesktopFailure.TIMEOUT, f"{self.op}: no time left to run {self.tool}"
            )
        return left

    def run(
        self, argv: list[str], *, stdin: bytes | None = None, capture: bool = True
    ) -> Completed:
        """Run a command to its end; a non-zero exit is ToolFailed with what it said on stderr."""
        budget = self.remaining()
        try:
            done = run_bounded(argv, budget, stdin=stdin, capture=capture)
        except OSError as exc:
            raise ToolFailed(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        if done.timed_out:
            raise DesktopError(
                DesktopFailure.TIMEOUT,
                f"{self.op}: {argv[0]} ran past the {budget:.2f} s budget and was killed",
            )
        if done.status != 0:
            raise ToolFailed(_failure_detail(done))
        return done

    def start_detached(self, argv: list[str], *, wait_for_exit: bool) -> None:
        """Start a program that must outlive us (an application, a browser) in its own session.

        With `wait_for_exit` the program is a launcher that exits once the application runs: its
        exit status is checked within the budget, and one still running then counts as started.
        """
        self.remaining()
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,  # the application inherits these: never a pipe of ours
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise ToolFailed(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        if not wait_for_exit:
            return
        try:
            status = process.wait(timeout=self.remaining())
        except subprocess.TimeoutExpired:
            return
        if status != 0:
            raise ToolFailed(f"{argv[0]} exited with status {status}")


def _failure_detail(done: Completed) -> str:
    """What the tool said on stderr, its lines joined into one (the first often says why, the
    last what failed), or its exit status when it said nothing."""
    lines = [line.strip() for line in done.stderr.decode("utf-8", "replace").splitlines()]
    said = " / ".join(dict.fromkeys(line for line in lines if line))  # some repeat themselves
    return visible(said)[:300] if said else f"exit status {done.status}"


@dataclass(frozen=True)
class Backend(Generic[T]):
    """One way of doing an operation: the tool it needs and what it does with it."""

    tool: str
    act: Callable[[Runner], T]
    platform: str = "linux"
    needs: str | None = None  # the environment variable naming the display it talks to
    not_under_wayland: bool = False  # it would act on XWayland, not on what the user sees

    @staticmethod
    def command(
        argv: list[str], *, stdin: bytes | None = None, capture: bool = True, **where: Any
    ) -> Backend[None]:
        """The backend that runs one fixed command line; its tool is `argv[0]`."""

        def act(run: Runner) -> None:
            run.run(argv, stdin=stdin, capture=capture)

        return Backend(argv[0], act, **where)

    def unavailable(self) -> str | None:
        """Why this backend cannot be used here, or None when it can."""
        if self.platform != current_platform():
            return f"{PLATFORM_NAMES[self.platform]} only"
        if self.needs and not os.environ.get(self.needs):
            return f"{self.needs} is not set"
        if self.not_under_wayland and on_wayland():
            return "reaches only X11 windows under Wayland"
        if shutil.which(self.tool) is None:
            return "not installed"
        return None


def attempt(op: str, backends: Sequence[Backend[T]], timeout: float) -> T:
    """Run the first backend that is available and succeeds, all within `timeout` seconds."""
    op = visible(op)  # it may carry a key name or app name from a plugin or a config
    if timeout <= 0:
        raise DesktopError(DesktopFailure.TIMEOUT, f"{op}: no time left for this operation")
    deadline = time.monotonic() + timeout
    notes: list[str] = []
    ran = False
    for backend in backends:
        reason = backend.unavailable()
        if reason is None:
            ran = True
            try:
                return backend.act(Runner(op, backend.tool, deadline))
            except ToolFailed as failed:
                reason = str(failed)
        notes.append(f"{backend.tool}: {reason}")
    tried = "; ".join(notes)
    if not ran:
        raise DesktopError(
            DesktopFailure.UNSUPPORTED, f"{op}: no backend tool available here (tried {tried})"
        )
    raise DesktopError(DesktopFailure.IO, f"{op}: every backend tool failed (tried {tried})")


def applescript_string(value: str) -> str:
    """`value` as an AppleScript string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
