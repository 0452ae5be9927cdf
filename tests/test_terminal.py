"""`conductor run` on a real terminal (a pseudo-terminal): the capability prompt and the live view."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import mido

from tests.plugin_helpers import PLUGINS

CONFIG = f"""
[plugins]
signature_policy = "unsigned"
[[modes]]
name = "Live"
[[modes.mappings]]
description = "probe"
trigger = {{ Note = {{ note = 60 }} }}
action = {{ WasmPlugin = {{ path = "{PLUGINS}/fs_probe.wasm", params = {{ op = "write", path = "/hello.txt", text = "hi" }} }} }}
[[modes.mappings]]
description = "host"
trigger = {{ Note = {{ note = 61 }} }}
action = {{ WasmPlugin = {{ path = "{PLUGINS}/host_probe.wasm", params = {{ fn = "config_get", arg = "x" }} }} }}
"""


class Terminal:
    def __init__(self, argv: list[str]) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            close_fds=True,
            env={**os.environ, "TERM": "xterm", "COLUMNS": "160", "LINES": "40"},
        )
        os.close(slave)
        self.screen = ""

    def read_until(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{text!r} never appeared; the terminal shows:\n{self.screen[-3000:]}"
                )
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    self.screen += os.read(self.master, 65536).decode("utf-8", "replace")
                except OSError:  # the child closed the terminal
                    break
        return self.screen

    def answer(self, text: str) -> None:
        time.sleep(0.3)  # let the prompt start reading, as a person would
        os.write(self.master, text.encode())

    def close(self) -> int:
        try:
            return self.process.wait(timeout=30)
        finally:
            os.close(self.master)


def run_on_a_terminal(config: Path, notes: list[int], gap_ticks: int) -> Terminal:
    """`conductor run CONFIG` on a pseudo-terminal, replaying these note-ons `gap_ticks` apart."""
    track = mido.MidiTrack(
        mido.Message("note_on", note=note, velocity=100, time=gap_ticks) for note in notes
    )
    midi = mido.MidiFile()
    midi.tracks.append(track)
    song = config.parent / "song.mid"
    midi.save(song)
    return Terminal([sys.executable, "-m", "conductor", "run", str(config), "--replay", str(song)])


def test_run_on_a_terminal_asks_and_remembers_then_shows_the_live_view(tmp_path: Path) -> None:
    config = tmp_path / "live.toml"
    config.write_text(CONFIG)
    terminal = run_on_a_terminal(config, [60, 61], gap_ticks=200)
    terminal.read_until("Allow plugin fs_probe to use capability Filesystem (medium risk)?")
    terminal.answer("y\n")
    terminal.read_until("asks for capability Subprocess")  # high risk: the name must be typed
    terminal.answer("subprocess\n")  # wrong case: refused
    terminal.read_until("asks for capability SystemControl")
    terminal.answer("SystemControl\n")
    terminal.read_until(
        "Allow plugin host_probe to use host http://127.0.0.1:1"
    )  # a declared plain-http host
    terminal.answer("n\n")
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal.read_until("plugin calls 2"))
    assert terminal.close() == 0
    assert "mode Live" in screen and "fs_probe" in screen and "host_probe" in screen
    grants = (Path(os.environ["XDG_CONFIG_HOME"]) / "conductor" / "grants.toml").read_text()
    assert 'plugin = "fs_probe"' in grants and '"Filesystem"' in grants
    assert '"SystemControl"' in grants and '"Subprocess"' not in grants
    written = (
        Path(os.environ["XDG_DATA_HOME"]) / "conductor" / "plugin-data" / "fs_probe" / "hello.txt"
    )
    assert written.read_text() == "hi"


def test_the_live_view_shows_plugin_text_without_letting_it_drive_the_terminal(
    tmp_path: Path,
) -> None:
    config = tmp_path / "escapes.toml"
    config.write_text(
        f"""
[plugins]
signature_policy = "unsigned"
[[modes]]
name = "Live"
[[modes.mappings]]
trigger = {{ Note = {{ note = 60 }} }}
action = {{ WasmPlugin = {{ path = "{PLUGINS}/terminal_escapes.wasm" }} }}
"""
    )
    terminal = run_on_a_terminal(config, [60], gap_ticks=0)
    terminal.read_until("plugin calls 1")
    screen = terminal.read_until("forged line")
    assert terminal.close() == 0
    # What the plugin logged is shown, made visible; none of its control bytes reached the
    # terminal (rich's own drawing uses CSI sequences, never OSC 52, BEL or a bare CR).
    assert r"\x1b]52;c;aGk=\x07\x1b[2J\x0dforged line" in screen
    assert "\x1b]52" not in screen and "\x07" not in screen
