"""A running `conductor run` never keeps a plugin on terms that no longer hold: a config reload,
`plugin revoke` and `conductor-sign trust remove` apply from the next call."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rtmidi
from nacl.signing import SigningKey

from conductor.plugins.host.codes import Code
from tests.conftest import Runner
from tests.midi_helpers import RunningConductor, connect
from tests.plugin_helpers import fixture_path, signed_copy

PAD = [0x90, 36, 100]

CONFIG = """
[plugins]
signature_policy = "{policy}"
{approvals}
[[modes]]
name = "Live"
[[modes.mappings]]
description = "pad"
trigger = {{ Note = {{ note = 36 }} }}
action = {{ WasmPlugin = {{ path = "{plugin}", params = {{ fn = "exec", arg = '{{"argv": ["sh", "-c", "echo ran >> {marker}"]}}' }} }} }}
"""

APPROVED = """
[plugins.grants]
host_probe = ["Subprocess"]
[plugins.commands]
host_probe = ["sh"]
"""


def write_config(path: Path, **fields: str) -> Path:
    """Replace the config in one step, as an editor's save does, so no reload sees half of it."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(CONFIG.format(**fields))
    os.replace(temporary, path)
    return path


class Session:
    """`conductor run --virtual` over JACK with a sender connected to it."""

    def __init__(self, config: Path, port: str) -> None:
        self.running = RunningConductor(config, "--virtual", port, "--api", "jack")
        self.sender = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=f"{port}-sender")
        connect(self.sender, port)

    def hit(self) -> dict[str, Any]:
        self.sender.send_message(PAD)
        return self.running.next_event()

    def wait_for(self, text: str, count: int = 1, timeout: float = 10) -> None:
        """Until `text` is in `count` stderr lines: one reload is one line."""
        deadline = time.monotonic() + timeout
        while sum(text in line for line in self.running.stderr_lines) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} x{count} not in: {self.running.stderr_lines}")
            time.sleep(0.02)

    def close(self) -> int:
        self.sender.close_port()
        return self.running.stop()


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    return Path(shutil.copyfile(fixture_path("host_probe"), tmp_path / "host_probe.wasm"))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "ran.txt"


def runs(marker: Path) -> int:
    return len(marker.read_text().splitlines()) if marker.exists() else 0


@pytest.fixture
def session_for() -> Iterator[Any]:
    sessions: list[Session] = []

    def start(config: Path, port: str) -> Session:
        sessions.append(Session(config, port))
        return sessions[-1]

    yield start
    for session in sessions:
        assert session.close() == 0


def test_a_config_that_loses_a_grant_stops_the_command_within_one_reload(
    jack_server: str, tmp_path: Path, probe: Path, marker: Path, session_for: Any
) -> None:
    config = write_config(
        tmp_path / "live.toml",
        policy="unsigned",
        approvals=APPROVED,
        plugin=str(probe),
        marker=str(marker),
    )
    session = session_for(config, "reload-grant-in")
    assert session.hit()["results"][0]["code"] == 0 and runs(marker) == 1

    write_config(config, policy="unsigned", approvals="", plugin=str(probe), marker=str(marker))
    session.wait_for("config reloaded")
    denied = session.hit()["results"][0]
    assert denied["code"] == Code.DENIED and runs(marker) == 1  # sh never started
    assert "Subprocess" in denied["output"]["logs"][0]["message"]
    session.wait_for(
        "host_probe: loading it again: its [plugins.grants], [plugins.commands] changed"
    )

    # A stricter policy unloads the unsigned plugin instead of keeping it on the old one.
    write_config(
        config, policy="trusted", approvals=APPROVED, plugin=str(probe), marker=str(marker)
    )
    session.wait_for("config reloaded", count=2)
    refused = session.hit()
    assert refused["results"] == [] and refused["notes"] == [f"{probe}: not loaded"]
    session.wait_for("plugin not loaded, its mappings do nothing: ")
    assert runs(marker) == 1


def test_plugin_grant_and_revoke_during_a_run_apply_from_the_next_call(
    jack_server: str,
    conductor_cli: Runner,
    tmp_path: Path,
    probe: Path,
    marker: Path,
    session_for: Any,
) -> None:
    grants = Path(os.environ["XDG_CONFIG_HOME"]) / "conductor" / "grants.toml"
    assert not grants.parent.exists()  # watched through its parent until it appears
    config = write_config(
        tmp_path / "live.toml",
        policy="unsigned",
        approvals="",
        plugin=str(probe),
        marker=str(marker),
    )
    session = session_for(config, "revoke-in")
    assert session.hit()["results"][0]["code"] == Code.DENIED and runs(marker) == 0

    granted = conductor_cli("plugin", "grant", probe, "Subprocess", "--command", "sh")
    assert granted.returncode == 0, granted.stderr
    session.wait_for("host_probe: loading it again: its remembered grants changed")
    assert session.hit()["results"][0]["code"] == 0 and runs(marker) == 1

    assert conductor_cli("plugin", "revoke", probe, "Subprocess").returncode == 0
    session.wait_for("host_probe: loading it again: its remembered grants changed", count=2)
    assert session.hit()["results"][0]["code"] == Code.DENIED and runs(marker) == 1


def test_trust_remove_during_a_run_unloads_the_plugin(
    jack_server: str, sign_cli: Runner, tmp_path: Path, marker: Path, session_for: Any
) -> None:
    key = SigningKey.generate()
    public = bytes(key.verify_key).hex()
    assert sign_cli("trust", "add", public, "Author").returncode == 0
    plugin = signed_copy("host_probe", tmp_path, key)
    config = write_config(
        tmp_path / "live.toml",
        policy="trusted",
        approvals=APPROVED,
        plugin=str(plugin),
        marker=str(marker),
    )
    session = session_for(config, "trust-in")
    assert session.hit()["results"][0]["code"] == 0 and runs(marker) == 1

    assert sign_cli("trust", "remove", public).returncode == 0
    session.wait_for("plugin not loaded, its mappings do nothing: ")
    refused = session.hit()
    assert refused["results"] == [] and refused["notes"] == [f"{plugin}: not loaded"]
    assert runs(marker) == 1
    assert any("not in the trust store" in line for line in session.running.stderr_lines)
