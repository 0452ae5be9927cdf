"""What `conductor run` shows: a live view on a terminal, lines otherwise, or one JSON object per
event for machines.

Text lines come in the order the dispatcher reports: each event's line (with its sequence number)
when it arrives, then its results as they finish. Everything a plugin wrote or caused (log lines,
output, errors) passes through `visible()` (JSON through `visible_json()`), so a plugin cannot
drive the terminal.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from conductor._text import visible, visible_json
from conductor.engine.dispatcher import EventRecord, Reporter
from conductor.engine.workers import Undelivered
from conductor.plugins.runtime import CallResult
from conductor.plugins.sandbox import LOG_LEVELS

_log = logging.getLogger("conductor.engine")
MAX_OUTPUT_LINES = 20  # of a plugin's stdout and stderr, per call, in text mode
OUTPUT_BUFFER_LINES = 10_000  # about five seconds of events at 2,000/s
OUTPUT_CLOSE_S = 5.0  # at exit, how long a reader that stopped reading gets


@dataclass
class Counters:
    events: int = 0
    matched: int = 0
    plugin_calls: int = 0
    plugin_errors: int = 0
    undelivered: dict[Undelivered, int] = field(
        default_factory=lambda: dict.fromkeys(Undelivered, 0)
    )

    def count(self, record: EventRecord) -> None:
        self.events += 1
        self.matched += record.mapping is not None
        for result, _ in record.results:
            self.plugin_calls += 1
            self.plugin_errors += not result.ok
        for _, why in record.undelivered:
            self.undelivered[why] += 1

    def summary(self) -> str:
        return " · ".join(
            [
                f"events {self.events}",
                f"matched {self.matched}",
                f"plugin calls {self.plugin_calls}",
                f"errors {self.plugin_errors}",
                *(f"{why.value} {count}" for why, count in self.undelivered.items()),
            ]
        )


def _clock(record: EventRecord) -> str:
    wall = record.event.wall_ms / 1000 if record.event.wall_ms else time.time()
    return time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall * 1000) % 1000:03d}"


def _mapping_name(record: EventRecord) -> str:
    if record.mapping is None:
        return "no mapping"
    return record.mapping.description or type(record.mapping.trigger).__name__


def _failure(result: CallResult) -> str:
    return visible(result.error or f"returned {result.code}")


def _record_json(record: EventRecord) -> dict[str, Any]:
    event = record.event
    return {
        "seq": record.seq,
        "time_ms": event.wall_ms,
        "event": event.to_json(),
        "mode": record.mode,
        "mapping": None if record.mapping is None else _mapping_name(record),
        "results": [
            {**result.to_json(), "latency_ms": round(latency, 3)}
            for result, latency in record.results
        ],
        "undelivered": [{"plugin": name, "reason": why.value} for name, why in record.undelivered],
        "notes": record.notes,
    }


class _Lines:
    """Whole lines to a stream, written by a thread of their own, so a slow reader (a pipe into a
    busy program, a paused terminal) never holds up a plugin's worker: up to OUTPUT_BUFFER_LINES
    wait here, and only beyond that do writers wait too (nothing is dropped). When the reader goes
    away (`run … | head`), output stops with one log line and the run goes on."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream or sys.stdout
        self._pending: deque[str] = deque()
        self._changed = threading.Condition()
        self._closed = False
        self._gone = False
        self._thread = threading.Thread(target=self._print, name="conductor-output", daemon=True)
        self._thread.start()

    def write(self, text: str) -> None:
        with self._changed:
            while len(self._pending) >= OUTPUT_BUFFER_LINES and not self._gone:
                self._changed.wait()
            if not self._gone:
                self._pending.append(text)
                self._changed.notify_all()

    def _print(self) -> None:
        while True:
            with self._changed:
                while not self._pending and not self._closed:
                    self._changed.wait()
                if not self._pending:
                    return
                batch = "".join(self._pending)
                self._pending.clear()
                self._changed.notify_all()
            try:
                self.stream.write(batch)
                self.stream.flush()
            except BrokenPipeError:
                with self._changed:
                    self._gone = True
                    self._pending.clear()
                    self._changed.notify_all()
                _log.warning("standard output was closed: events are no longer printed")
                with contextlib.suppress(OSError, ValueError):  # no flush error at exit either
                    os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
                return

    def close(self) -> bool:
        """Write what is pending; False if the reader did not take it within OUTPUT_CLOSE_S."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join(OUTPUT_CLOSE_S)
        return not self._thread.is_alive()


class LineReporter(Reporter):
    """One line per event as it arrives, then one per plugin result (with the plugin's own log
    lines beneath it) as each finishes, and late notes (a drop, a delayed mode change)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._lines = _Lines(stream)
        self._write = self._lines.write

    def event(self, record: EventRecord) -> None:
        parts = [
            f"{_clock(record)} #{record.seq}",
            record.event.describe(),
            f"[{record.mode}]",
            _mapping_name(record),
            *map(visible, record.notes),
        ]
        self._write(" | ".join(parts) + "\n")

    def result(self, record: EventRecord, result: CallResult, latency_ms: float) -> None:
        name = visible(result.plugin)
        fuel = "" if result.fuel is None else f", fuel {result.fuel}"
        lines = [
            f"{_clock(record)} #{record.seq} -> {name} "
            f"{'ok' if result.ok else 'FAILED: ' + _failure(result)} "
            f"({result.wall_ms:.2f} ms{fuel}, started {latency_ms:.2f} ms after the event)"
        ]
        for level, text in result.output.logs:
            lines.append(f"    {name} {LOG_LEVELS.get(level, level)}: {visible(text)}")
        for stream, text in (("stdout", result.output.stdout), ("stderr", result.output.stderr)):
            lines.extend(
                f"    {name} {stream}: {visible(line)}"
                for line in text.splitlines()[:MAX_OUTPUT_LINES]
            )
        self._write("".join(line + "\n" for line in lines))

    def note(self, record: EventRecord, text: str) -> None:
        self._write(f"{_clock(record)} #{record.seq} | {visible(text)}\n")

    def close(self) -> bool:
        """Finish printing; False if stdout's reader would not take the rest."""
        return self._lines.close()


class JsonReporter(Reporter):
    """One JSON object per event once all its work is done; `seq` gives the arrival order."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._lines = _Lines(stream)

    def finished(self, record: EventRecord) -> None:
        self._lines.write(visible_json(json.dumps(_record_json(record), ensure_ascii=False)) + "\n")

    def close(self) -> bool:
        """Finish printing; False if stdout's reader would not take the rest."""
        return self._lines.close()


class LiveReporter(Reporter):
    """A rich live view: recent events with their mapping, plugin, result, time and fuel. It is
    drawn at its own refresh rate, so a burst of events costs no redraws."""

    def __init__(self, console: Console | None = None, rows: int = 15) -> None:
        self.console = console or Console()
        self.counters = Counters()
        self.mode = ""
        self._recent: deque[EventRecord] = deque(maxlen=rows)
        self._lock = threading.Lock()
        self._live = Live(
            console=self.console,
            refresh_per_second=10,
            transient=False,
            get_renderable=self._render,
        )

    def start(self) -> None:
        """Begin drawing; called once loading (and any approval prompts) is over."""
        self._live.start()

    def event(self, record: EventRecord) -> None:
        with self._lock:
            self.mode = record.mode
            self._recent.append(record)

    def finished(self, record: EventRecord) -> None:
        with self._lock:
            self.counters.count(record)

    def _render(self) -> Table:
        with self._lock:
            records = list(self._recent)
            title = f"mode [bold]{escape(self.mode or '-')}[/] · {escape(self.counters.summary())}"
        table = Table(
            "#", "time", "event", "mapping", "plugin", "result", "ms", "fuel", title=title
        )
        table.expand = True
        for record in records:
            with record.lock:
                results, notes, pending = list(record.results), list(record.notes), record.pending
            common = (str(record.seq), _clock(record), record.event.describe())
            mapping = escape(_mapping_name(record))
            note_text = escape(visible("; ".join(notes)))
            if not results:
                table.add_row(*common, mapping, "", "…" if pending else note_text, "", "")
            for result, _ in results:
                last_log = visible(result.output.logs[-1][1][:60]) if result.output.logs else ""
                outcome = "[green]ok[/]" if result.ok else f"[red]{escape(_failure(result))}[/]"
                table.add_row(
                    *common,
                    mapping,
                    escape(visible(result.plugin)),
                    f"{outcome} {escape(last_log)}",
                    f"{result.wall_ms:.2f}",
                    "" if result.fuel is None else str(result.fuel),
                )
        return table

    def close(self) -> bool:
        self._live.stop()
        return True
