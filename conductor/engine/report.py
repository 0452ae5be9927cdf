"""What `conductor run` shows: a live view on a terminal, one line per event otherwise, or one
JSON object per event for machines."""

from __future__ import annotations

import json
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

from conductor.engine.dispatcher import EventRecord
from conductor.plugins.sandbox import LOG_LEVELS


@dataclass
class Counters:
    events: int = 0
    matched: int = 0
    plugin_calls: int = 0
    plugin_errors: int = 0
    dropped: int = 0
    by_plugin: dict[str, int] = field(default_factory=dict)

    def count(self, record: EventRecord) -> None:
        self.events += 1
        self.matched += record.mapping is not None
        for result, _ in record.results:
            self.plugin_calls += 1
            self.plugin_errors += not result.ok
            self.by_plugin[result.plugin] = self.by_plugin.get(result.plugin, 0) + 1
        self.dropped += sum("dropped" in note for note in record.notes)


def _clock(record: EventRecord) -> str:
    wall = record.event.wall_ms / 1000 if record.event.wall_ms else time.time()
    return time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall * 1000) % 1000:03d}"


def _mapping_name(record: EventRecord) -> str:
    if record.mapping is None:
        return "no mapping"
    return record.mapping.description or type(record.mapping.trigger).__name__


def record_json(record: EventRecord) -> dict[str, Any]:
    event = record.event
    return {
        "time_ms": event.wall_ms,
        "event": {
            "type": event.kind.value,
            "channel": event.channel,
            "note": event.note,
            "velocity": event.velocity,
            "cc": event.cc,
            "value": event.value,
            "device": event.device,
        },
        "mode": record.mode,
        "mapping": None if record.mapping is None else _mapping_name(record),
        "results": [
            {**result.to_json(), "latency_ms": round(latency, 3)}
            for result, latency in record.results
        ],
        "notes": record.notes,
    }


class LineReporter:
    """One line per event (plus the plugins' own log lines beneath it), or JSON lines."""

    def __init__(self, stream: TextIO | None = None, as_json: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.as_json = as_json
        self.counters = Counters()
        self._lock = threading.Lock()

    def __call__(self, record: EventRecord) -> None:
        with self._lock:
            self.counters.count(record)
            if self.as_json:
                self.stream.write(json.dumps(record_json(record), ensure_ascii=False) + "\n")
            else:
                self.stream.write(self._line(record))
            self.stream.flush()

    def _line(self, record: EventRecord) -> str:
        parts = [_clock(record), record.event.describe(), f"[{record.mode}]", _mapping_name(record)]
        lines = []
        for result, latency in record.results:
            status = "ok" if result.ok else f"FAILED: {result.error or f'returned {result.code}'}"
            parts.append(
                f"{result.plugin} {status} ({result.wall_ms:.2f} ms, fuel {result.fuel}, "
                f"started {latency:.2f} ms after the event)"
            )
            for level, text in result.output.logs:
                lines.append(f"    {result.plugin} {LOG_LEVELS.get(level, level)}: {text}")
            for stream, text in (
                ("stdout", result.output.stdout),
                ("stderr", result.output.stderr),
            ):
                lines.extend(
                    f"    {result.plugin} {stream}: {line}" for line in text.splitlines()[:20]
                )
        parts.extend(record.notes)
        return " | ".join(parts) + "\n" + "".join(line + "\n" for line in lines)

    def close(self) -> None:
        self.stream.flush()


class LiveReporter:
    """A rich live view: recent events with their mapping, plugin, result, time and fuel."""

    def __init__(self, console: Console | None = None, rows: int = 15) -> None:
        self.console = console or Console()
        self.counters = Counters()
        self.mode = ""
        self._recent: deque[EventRecord] = deque(maxlen=rows)
        self._lock = threading.Lock()
        self._live = Live(
            self._render(), console=self.console, refresh_per_second=10, transient=False
        )

    def start(self) -> None:
        """Begin drawing; called once loading (and any approval prompts) is over."""
        self._live.start()

    def __call__(self, record: EventRecord) -> None:
        with self._lock:
            self.counters.count(record)
            self.mode = record.mode
            self._recent.append(record)
            self._live.update(self._render())

    def _render(self) -> Table:
        c = self.counters
        title = (
            f"mode [bold]{escape(self.mode or '-')}[/] · events {c.events} · matched {c.matched} · "
            f"plugin calls {c.plugin_calls} · errors {c.plugin_errors} · dropped {c.dropped}"
        )
        table = Table(
            "time", "event", "mapping", "plugin", "result", "ms", "fuel", title=title, expand=True
        )
        for record in self._recent:
            results = record.results or [None]  # type: ignore[list-item]
            for entry in results:
                if entry is None:
                    table.add_row(
                        _clock(record),
                        record.event.describe(),
                        escape(_mapping_name(record)),
                        "",
                        escape("; ".join(record.notes)),
                        "",
                        "",
                    )
                    continue
                result, _ = entry
                outcome = (
                    "[green]ok[/]"
                    if result.ok
                    else f"[red]{escape(result.error or str(result.code))}[/]"
                )
                last_log = result.output.logs[-1][1] if result.output.logs else ""
                table.add_row(
                    _clock(record),
                    record.event.describe(),
                    escape(_mapping_name(record)),
                    escape(result.plugin),
                    f"{outcome} {escape(last_log[:60])}",
                    f"{result.wall_ms:.2f}",
                    str(result.fuel),
                )
        return table

    def close(self) -> None:
        self._live.stop()
