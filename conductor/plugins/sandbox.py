"""The WASI sandbox of one instance: no environment, no arguments, empty stdin, bounded
stdout/stderr, and at most one preopened directory (the plugin's own data dir, as `/`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import wasmtime

from conductor.errors import FileError
from conductor.paths import data_dir
from conductor.plugins.names import check_plugin_name


@dataclass(frozen=True)
class CapturedOutput:
    stdout: str = ""
    stderr: str = ""
    logs: tuple[tuple[int, str], ...] = ()
    dropped: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "stdout": self.stdout,
            "stderr": self.stderr,
            "logs": [
                {"level": LOG_LEVELS.get(level, str(level)), "message": text}
                for level, text in self.logs
            ],
            "dropped_bytes": self.dropped,
        }


NOTHING_CAPTURED = CapturedOutput()
LOG_LEVELS = {0: "debug", 1: "info", 2: "warn", 3: "error"}


@dataclass
class OutputCapture:
    """Keeps the first `limit` bytes a plugin prints per call and counts the rest."""

    limit: int
    redact: Callable[[str], str] | None = None
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    logs: list[tuple[int, str]] = field(default_factory=list)
    used: int = 0
    dropped: int = 0

    def _room(self, size: int) -> int:
        room = max(0, self.limit - self.used)
        kept = min(room, size)
        self.used += kept
        self.dropped += size - kept
        return kept

    def _keep(self, buffer: bytearray, data: bytes) -> None:
        buffer.extend(data[: self._room(len(data))])

    def write_log(self, level: int, text: str) -> bool:
        """Record a `conductor.log` line; False when the per-call budget is spent."""
        kept = self._room(len(text))
        if kept:
            self.logs.append((level, text[:kept]))
        return kept == len(text)

    def write_stdout(self, data: bytes) -> None:
        self._keep(self.stdout, data)

    def write_stderr(self, data: bytes) -> None:
        self._keep(self.stderr, data)

    def take(self) -> CapturedOutput:
        """Return and reset what the call that just ended printed and logged."""
        if not self.used and not self.dropped:
            return NOTHING_CAPTURED
        clean = self.redact or (lambda text: text)
        result = CapturedOutput(
            stdout=clean(self.stdout.decode("utf-8", "replace")),
            stderr=clean(self.stderr.decode("utf-8", "replace")),
            logs=tuple(self.logs),
            dropped=self.dropped,
        )
        self.stdout.clear()
        self.stderr.clear()
        self.logs.clear()
        self.used = 0
        self.dropped = 0
        return result


def plugin_data_dir(plugin_name: str) -> Path:
    """`plugin-data/<name>/`, always a direct child of `plugin-data/`: it becomes the plugin's `/`,
    so a name like `..` would hand it every other plugin's data."""
    base = data_dir() / "plugin-data"
    directory = base / check_plugin_name(plugin_name, "plugin data directory")
    if directory.parent != base or directory.name != plugin_name:
        raise FileError(f"{directory}: a plugin data directory must be a direct child of {base}")
    return directory


def wasi_config(capture: OutputCapture, data_dir: Path | None) -> wasmtime.WasiConfig:
    """A WASI config that exposes nothing of the host except `data_dir` (when given) as `/`."""
    config = wasmtime.WasiConfig()
    config.argv = []
    config.env = []

    def to_stdout(data: bytes) -> int:
        capture.write_stdout(data)
        return len(data)

    def to_stderr(data: bytes) -> int:
        capture.write_stderr(data)
        return len(data)

    config.stdout_custom = to_stdout
    config.stderr_custom = to_stderr
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        config.preopen_dir(str(data_dir), "/")
    return config
