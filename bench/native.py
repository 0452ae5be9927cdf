"""Native actions on the headless desktop (Xvfb, PulseAudio's null sink): how long a keystroke,
a shell command and a volume step take on their action worker, and how long a condition's
question to the desktop takes. Skipped with a note when the desktop tools are not installed."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._stats import summary
from conductor.engine.conditions import AppFrontmost, AppRunning, Judge
from conductor.engine.config import parse_config
from conductor.engine.dispatcher import Dispatcher, EventRecord, Reporter
from conductor.engine.native import NativeActions
from conductor.engine.scheduler import Scheduler
from conductor.midi.events import EventKind, MidiEvent

ACTIONS = {
    "keystroke": '{ type = "Keystroke", keys = "a" }',
    "shell_true": '{ type = "Shell", command = "true" }',
    "volume_step": '{ type = "VolumeControl", operation = "Up", value = 1 }',
}
EVENTS = 100  # per action: each is a process or two, tens of ms
QUESTIONS = 50
TARGETS: dict[str, Any] = {}


class _Results(Reporter):
    """Each result's own wall time (the action's cost), once `expected` have come."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.walls_us: list[float] = []
        self.failed: list[str] = []
        self.done = threading.Event()

    def finished(self, record: EventRecord) -> None:
        for result, _ in record.results:
            self.walls_us.append(result.wall_ms * 1000)
            if not result.ok:
                self.failed.append(result.error or "")
        if len(self.walls_us) >= self.expected:
            self.done.set()


def _through_the_engine(work: Path, action: str) -> dict[str, Any]:
    config = parse_config(
        f'[[modes]]\nname = "Bench"\n[[modes.mappings]]\n'
        f"trigger = {{ Note = {{ note = 60 }} }}\naction = {action}\n",
        work / "native.toml",
    )
    native, scheduler, results = NativeActions(), Scheduler(), _Results(EVENTS)
    dispatcher = Dispatcher(config, {}, scheduler, None, results, native=native)
    for _ in range(EVENTS):
        now_ms = time.monotonic() * 1000
        dispatcher.handle(MidiEvent(EventKind.NOTE_ON, 0, now_ms, 0, "bench", 60, 100))
    results.done.wait(120)
    for worker in native.workers():
        worker.close()
        worker.join(10)
    scheduler.stop()
    return {**summary(results.walls_us), "failed": len(results.failed)}


def _questions(condition: AppFrontmost | AppRunning) -> dict[str, Any]:
    judge = Judge()
    samples = []
    for _ in range(QUESTIONS):
        started = time.perf_counter()
        judge.holds(condition, "Bench")
        samples.append((time.perf_counter() - started) * 1e6)
    return summary(samples)


def run() -> dict[str, Any]:
    tools = ("Xvfb", "xdotool", "xprop", "pulseaudio", "pactl", "dunst", "dbus-daemon")
    if not all(shutil.which(tool) for tool in tools):
        return {"skipped": "the headless desktop tools are not installed"}
    from tests.desktop import running_desktop

    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        saved = dict(os.environ)
        try:
            with running_desktop(work / "desktop"):
                results = {name: _through_the_engine(work, a) for name, a in ACTIONS.items()}
                results["app_frontmost_question"] = _questions(AppFrontmost("xterm"))
                results["app_running_question"] = _questions(AppRunning("xterm"))
        finally:
            os.environ.clear()
            os.environ.update(saved)
    return results
