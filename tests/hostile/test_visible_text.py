"""Plugins cannot drive the terminal (SPEC §1): whatever control characters a plugin puts in its
metadata, logs, output, errors, import or export names, `plugin exec | inspect | list` and
`check` print them as visible escapes, never raw."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import Runner
from tests.hostile._helpers import config_for, hostile_plugin, write_plugin

# Clear the screen, set the clipboard through OSC 52, ring the bell, return to the line's start,
# an 8-bit CSI and a right-to-left override.
NASTY = "\x1b[2J\x1b]52;c;SGVsbG8=\x07\r\x9b31m\u202e"
NASTY_JSON = json.dumps(NASTY)[1:-1].encode()
RAW = ("\x1b", "\x07", "\r", "\x9b", "\u202e")


def _assert_no_raw_controls(*outputs: str) -> None:
    for output in outputs:
        for char in RAW:
            assert char not in output, (char, output)


@pytest.fixture
def terminal_plugin(tmp_path: Path) -> Path:
    """Loads fine; its version, description, log line, output and an export name are hostile."""
    wasm = hostile_plugin(
        b'{"name":"term","version":"1' + NASTY_JSON + b'","description":"' + NASTY_JSON + b'"}',
        log=b"log" + NASTY.encode(),
        stdout=b"out" + NASTY.encode() + b"\n",
        extra='(func (export "x\\1b[2Jy"))',
    )
    return write_plugin(tmp_path / "term.wasm", wasm)


@pytest.fixture
def failing_plugin(tmp_path: Path) -> Path:
    """Fails to initialise with an error that quotes its hostile capability name."""
    wasm = hostile_plugin(b'{"capabilities":["' + NASTY_JSON + b'"]}')
    return write_plugin(tmp_path / "fails.wasm", wasm)


def test_exec_shows_metadata_logs_output_and_errors_escaped(
    conductor_cli: Runner, terminal_plugin: Path, failing_plugin: Path
) -> None:
    result = conductor_cli("plugin", "exec", terminal_plugin, "--policy", "unsigned")
    assert result.returncode == 0, result.stderr
    _assert_no_raw_controls(result.stdout, result.stderr)
    assert (
        "log        [warn] log\\x1b[2J\\x1b]52;c;SGVsbG8=\\x07\\x0d\\x9b31m\\u202e" in result.stdout
    )
    assert "stdout     out\\x1b[2J" in result.stdout
    failed = conductor_cli("plugin", "exec", failing_plugin, "--policy", "unsigned")
    assert failed.returncode == 1
    _assert_no_raw_controls(failed.stdout, failed.stderr)
    assert "unknown capability" in failed.stderr and "\\x1b[2J" in failed.stderr


def test_inspect_shows_names_and_metadata_escaped(
    conductor_cli: Runner, terminal_plugin: Path, tmp_path: Path
) -> None:
    result = conductor_cli("plugin", "inspect", terminal_plugin)
    assert result.returncode == 0, result.stderr
    _assert_no_raw_controls(result.stdout, result.stderr)
    assert "export       x\\x1b[2Jy" in result.stdout
    assert "metadata     term 1\\x1b[2J" in result.stdout
    # An import name the host does not offer is an ABI problem that quotes it.
    bad_import = write_plugin(
        tmp_path / "imports.wasm",
        hostile_plugin(b"{}", extra='(import "conductor" "\\1b[2Jlog" (func))'),
    )
    failed = conductor_cli("plugin", "inspect", bad_import)
    assert failed.returncode == 1
    _assert_no_raw_controls(failed.stdout, failed.stderr)
    assert "unknown import conductor.\\x1b[2Jlog" in failed.stdout


def test_list_shows_versions_and_errors_escaped(
    conductor_cli: Runner, terminal_plugin: Path, failing_plugin: Path
) -> None:
    installed = Path(os.environ["HOME"]) / ".conductor" / "wasm-plugins"
    installed.mkdir(parents=True)
    for plugin in (terminal_plugin, failing_plugin):
        (installed / plugin.name).write_bytes(plugin.read_bytes())
    result = conductor_cli("plugin", "list", "--policy", "unsigned")
    assert result.returncode == 0, result.stderr
    _assert_no_raw_controls(result.stdout, result.stderr)
    assert "1\\x1b[2J" in result.stdout


def test_check_shows_versions_and_errors_escaped(
    conductor_cli: Runner, terminal_plugin: Path, failing_plugin: Path, tmp_path: Path
) -> None:
    for plugin in (terminal_plugin, failing_plugin):
        config = tmp_path / f"{plugin.stem}.toml"
        config.write_text(config_for(plugin))
        for extra in ((), ("--json",)):
            result = conductor_cli("check", config, *extra)
            _assert_no_raw_controls(result.stdout, result.stderr)
            assert "\\x1b[2J" in result.stdout or "\\u001b[2J" in result.stdout


def test_signer_names_from_a_signature_file_are_escaped(sign_cli: Runner, tmp_path: Path) -> None:
    plugin = tmp_path / "p.wasm"
    plugin.write_bytes(b"\0asm\1\0\0\0")
    sign_cli("generate-key", tmp_path / "key")
    signed = sign_cli(
        "sign", plugin, tmp_path / "key", "--name", f"Eve{NASTY}", "--email", "e@x.test"
    )
    assert signed.returncode == 0, signed.stderr
    result = sign_cli("verify", plugin, "--allow-self-signed")
    assert result.returncode == 0, result.stderr
    _assert_no_raw_controls(result.stdout, result.stderr)
    assert "signer:  Eve\\x1b[2J" in result.stdout


def test_emoji_shortcodes_in_outside_text_stay_text(conductor_cli: Runner, tmp_path: Path) -> None:
    """A plugin that calls itself `:white_check_mark:` is shown by that name, not as a tick
    that could pass for one of our own verdict marks."""
    wasm = hostile_plugin(b'{"name":"tick","version":"1","description":":white_check_mark: ok"}')
    result = conductor_cli("plugin", "inspect", write_plugin(tmp_path / "tick.wasm", wasm))
    assert result.returncode == 0, result.stderr
    assert ":white_check_mark: ok" in result.stdout
    assert "\u2705" not in result.stdout
