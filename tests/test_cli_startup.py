"""The commands people run most often start without the heavy parts of the engine: declaring
the CLIs imports no WebAssembly runtime, MIDI stack or network client, and `conductor-sign
verify` imports only what a verdict needs. The time this saves is measured by `make bench`; these
tests hold the cause (what a process imports), which does not depend on the machine's speed."""

from __future__ import annotations

from pathlib import Path

import pytest
from nacl.signing import SigningKey

from tests.conftest import Runner
from tests.plugin_helpers import signed_copy

# What only running plugins, listening to MIDI or talking to a network needs.
ENGINE_ONLY = ("wasmtime", "mido", "rtmidi", "urllib3", "websockets", "watchfiles", "ssl")


def _imported(stderr: str) -> set[str]:
    """Every module a process imported, from its `-X importtime` report."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    } - {"package"}


def _imports_of(cli: Runner, *args: str | Path) -> set[str]:
    result = cli(*args, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    imported = _imported(result.stderr)
    assert "conductor" in imported  # the report is there: an empty one would prove nothing
    return imported


def _heavy(imported: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(name for name in imported if name.split(".")[0] in packages)


@pytest.mark.parametrize(
    "args",
    [("--version",), ("--help",), ("plugin", "--help"), ("run", "--help")],
    ids=" ".join,
)
def test_declaring_conductor_commands_imports_no_engine(
    conductor_cli: Runner, args: tuple[str, ...]
) -> None:
    assert _heavy(_imports_of(conductor_cli, *args), ENGINE_ONLY) == []


def test_conductor_sign_verify_imports_no_engine_and_takes_no_lock(
    sign_cli: Runner, tmp_path: Path
) -> None:
    key = SigningKey.generate()
    plugin = signed_copy("good", tmp_path, key)
    store = tmp_path / "trust.toml"
    added = sign_cli("trust", "add", key.verify_key.encode().hex(), "Ada", "--trust-store", store)
    assert added.returncode == 0, added.stderr

    imported = _imports_of(sign_cli, "verify", plugin, "--trust-store", store)
    assert "nacl.signing" in imported
    assert _heavy(imported, (*ENGINE_ONLY, "filelock", "pydantic")) == []


def test_a_command_that_needs_the_engine_still_gets_it(conductor_cli: Runner) -> None:
    """The other side of the guard: the lazy imports happen where a command runs plugins."""
    imported = _imports_of(conductor_cli, "plugin", "inspect", "system-utils")
    assert "wasmtime" in imported
