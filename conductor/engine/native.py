"""Running the reference's native actions (keystrokes, text, clicks, volume, launching, shell
commands, and the checks of conditions) on action workers, off the dispatcher's thread.

Which worker runs what: one queue for the desktop's input (Keystroke, Text, MouseClick) and the
conditions of Conditional actions, so keystrokes keep their order and a condition sees the
desktop as the keystrokes queued before it left it; one for the volume; and one for each Shell
and each Launch action, so a slow command holds up only its own next run. Workers start on first
use and stay while the running config still has their action.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conductor import desktop
from conductor.engine import actions as act
from conductor.engine.conditions import Condition, Judge
from conductor.engine.workers import QUEUE_CAPACITY, ActionWorker
from conductor.plugins.runtime import CallResult
from conductor.plugins.sandbox import CapturedOutput
from conductor.processes import run_bounded

INPUT_TIMEOUT_S = 5.0  # a keystroke, a click, a volume change
TYPING_S_PER_CHARACTER = 0.05  # on top of INPUT_TIMEOUT_S: xdotool types one key per 12 ms
LAUNCH_TIMEOUT_S = 10.0  # for a launcher (gtk-launch, gio, open) to say it started the app
_DESKTOP = "desktop input"
_VOLUME = "volume"


@dataclass(frozen=True)
class Surroundings:
    """What a native action needs from the config it came from."""

    settings: act.NativeSettings
    directory: Path  # where a Shell command runs: the config file's directory


def _user_shell() -> str:
    """The user's login shell (`$SHELL`) when it names an executable, else /bin/sh."""
    shell = os.environ.get("SHELL", "")
    if os.path.isabs(shell) and os.access(shell, os.X_OK):
        return shell
    return "/bin/sh"


def run_shell(command: str, timeout_s: float, directory: Path) -> CallResult:
    """Run `command` with the user's shell, rights and environment, in `directory`, waiting for
    it at most `timeout_s`. Whatever it leaves running in the background ends with it."""
    name = act.label(act.Shell(command))
    shell = _user_shell()
    started = time.perf_counter()
    try:
        done = run_bounded([shell, "-c", command], timeout_s, cwd=directory)
    except OSError as exc:
        return CallResult(
            name, None, f"cannot run {shell}: {exc.strerror or exc}", None, _ms_since(started)
        )
    output = CapturedOutput(
        stdout=done.stdout.decode("utf-8", "replace"), stderr=done.stderr.decode("utf-8", "replace")
    )
    error: str | None = None
    if done.timed_out:
        error = f"still running after the {timeout_s:g} s shell timeout (shell_timeout_ms): killed"
    elif done.status < 0:
        error = f"killed by signal {-done.status}"
    elif done.status:
        error = f"exited with status {done.status}"
    return CallResult(name, done.status, error, None, _ms_since(started), output)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _press(action: Any, settings: act.NativeSettings) -> None:
    desktop.press_keys(action.combo, timeout=INPUT_TIMEOUT_S, keymap=settings.keymap)


def _type(action: Any, settings: act.NativeSettings) -> None:
    timeout = INPUT_TIMEOUT_S + TYPING_S_PER_CHARACTER * len(action.text)
    desktop.type_text(action.text, timeout=timeout)


def _click(action: Any, settings: act.NativeSettings) -> None:
    desktop.click(action.button, timeout=INPUT_TIMEOUT_S, x=action.x, y=action.y)


def _volume(action: Any, settings: act.NativeSettings) -> None:
    operation, value = action.operation, action.value
    if operation == "Set":
        desktop.volume_set(value, timeout=INPUT_TIMEOUT_S)
    elif operation in ("Up", "Down"):
        desktop.volume_change(value if operation == "Up" else -value, timeout=INPUT_TIMEOUT_S)
    else:
        desktop.volume_mute(operation == "Mute", timeout=INPUT_TIMEOUT_S)


def _launch(action: Any, settings: act.NativeSettings) -> None:
    desktop.launch(action.app, timeout=LAUNCH_TIMEOUT_S)


_ON_THE_DESKTOP: dict[type, Callable[[Any, act.NativeSettings], None]] = {
    act.Keystroke: _press,
    act.Text: _type,
    act.MouseClick: _click,
    act.VolumeControl: _volume,
    act.Launch: _launch,
}


def perform(action: act.Action, surroundings: Surroundings) -> CallResult:
    """Do one native action; its failure is the result's error, never an exception."""
    if isinstance(action, act.Shell):
        timeout_s = surroundings.settings.shell_timeout_ms / 1000
        return run_shell(action.command, timeout_s, surroundings.directory)
    started = time.perf_counter()
    try:
        _ON_THE_DESKTOP[type(action)](action, surroundings.settings)
    except desktop.DesktopError as failed:
        return CallResult(act.label(action), None, failed.diagnostics(), None, _ms_since(started))
    return CallResult(act.label(action), 0, None, None, _ms_since(started))


class NativeActions:
    """The action workers of one run, and the judge of its conditions. Lives as long as the run:
    reloads keep it (and the workers whose action is still configured)."""

    def __init__(self, judge: Judge | None = None, capacity: int = QUEUE_CAPACITY) -> None:
        self.judge = judge or Judge()
        self.capacity = capacity
        self._workers: dict[Hashable, ActionWorker] = {}
        self._retiring: list[ActionWorker] = []
        self._lock = threading.Lock()

    def worker_for(self, action: act.Action) -> ActionWorker:
        """The worker that runs `action` (a native action or a Conditional), started on first use."""
        key, name = _queue(action)
        with self._lock:
            worker = self._workers.get(key)
            if worker is None:
                worker = self._workers[key] = ActionWorker(name, self.capacity)
            return worker

    def retain(self, actions: Iterable[act.Action]) -> None:
        """Close the workers of actions no longer configured (after a reload): they finish what
        they were given, then end."""
        keep = {_queue(action)[0] for action in actions}
        with self._lock:
            for key in [key for key in self._workers if key not in keep and key not in _SHARED]:
                worker = self._workers.pop(key)
                worker.close()
                self._retiring.append(worker)

    def workers(self) -> list[ActionWorker]:
        """Every worker that may still have work: for shutdown."""
        with self._lock:
            self._retiring = [worker for worker in self._retiring if not worker.join(0)]
            return [*self._workers.values(), *self._retiring]

    def holds(self, condition: Condition, mode: str) -> bool:
        return self.judge.holds(condition, mode)


_SHARED = (_DESKTOP, _VOLUME)


def _queue(action: act.Action) -> tuple[Hashable, str]:
    """Which queue runs `action`: its key and the worker's name."""
    if isinstance(action, act.VolumeControl):
        return _VOLUME, _VOLUME
    if isinstance(action, (act.Shell, act.Launch)):
        return action, act.label(action)
    return _DESKTOP, _DESKTOP
