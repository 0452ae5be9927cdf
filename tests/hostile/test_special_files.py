"""Every file the tools read is a regular file read with a bound (SPEC §2): a FIFO, a device or a
symlink to one fails at once with one line, whichever command meets it. Each run has a short
timeout: a hang fails the test instead of the suite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from tests.conftest import Runner
from tests.hostile._helpers import assert_one_error_line, config_for, mkfifo, notes_file
from tests.plugin_helpers import fixture_path, signed_copy

QUICK = 30  # seconds: every command here must fail at once


@pytest.fixture
def signed(tmp_path: Path) -> Path:
    directory = tmp_path / "dist"
    directory.mkdir()
    return signed_copy("good", directory, SigningKey.generate())


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    return mkfifo(tmp_path / "fifo")


def test_verify_with_dev_zero_as_signature(sign_cli: Runner, signed: Path) -> None:
    result = sign_cli("verify", signed, "--sig", "/dev/zero", timeout=QUICK)
    assert result.returncode == 1
    assert_one_error_line(result.stderr, "/dev/zero", "character device, not a regular file")


def test_verify_with_a_fifo_as_signature(sign_cli: Runner, signed: Path, fifo: Path) -> None:
    result = sign_cli("verify", signed, "--sig", fifo, timeout=QUICK)
    assert result.returncode == 1
    assert_one_error_line(result.stderr, str(fifo), "a FIFO")
    Path(f"{signed}.sig").unlink()
    mkfifo(Path(f"{signed}.sig"))
    beside = sign_cli("verify", signed, timeout=QUICK)
    assert beside.returncode == 1
    assert_one_error_line(beside.stderr, f"{signed}.sig", "a FIFO")


def test_verify_and_trust_list_with_a_fifo_as_trust_store(
    sign_cli: Runner, signed: Path, fifo: Path
) -> None:
    key = bytes(SigningKey.generate().verify_key).hex()
    for args in (("verify", signed), ("trust", "list"), ("trust", "add", key, "x")):
        result = sign_cli(*args, "--trust-store", fifo, timeout=QUICK)
        assert result.returncode == 1, args
        assert_one_error_line(result.stderr, str(fifo), "trust store is a FIFO")


def test_sign_and_exec_refuse_a_device_as_plugin(
    sign_cli: Runner, conductor_cli: Runner, tmp_path: Path
) -> None:
    sign_cli("generate-key", tmp_path / "key")
    signing = sign_cli(
        "sign", "/dev/zero", tmp_path / "key", "--name", "a", "--email", "a@b", timeout=QUICK
    )
    assert signing.returncode == 1
    assert_one_error_line(signing.stderr, "/dev/zero", "character device")
    link = tmp_path / "zero.wasm"
    link.symlink_to("/dev/zero")
    result = conductor_cli("plugin", "exec", link, "--policy", "unsigned", timeout=QUICK)
    assert result.returncode == 1
    assert_one_error_line(result.stderr, "character device")


def test_check_and_run_with_a_fifo_as_config(conductor_cli: Runner, fifo: Path) -> None:
    for command in ("check", "run"):
        result = conductor_cli(command, fifo, timeout=QUICK)
        assert result.returncode == 1, command
        assert_one_error_line(result.stderr, str(fifo), "config file is a FIFO")


def test_check_and_run_with_a_fifo_as_trust_store(
    conductor_cli: Runner, signed: Path, fifo: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(config_for(signed, f'trust_store = "{fifo}"', policy="trusted"))
    check = conductor_cli("check", config, "--json", timeout=QUICK)
    assert check.returncode == 1
    assert "trust store is a FIFO" in check.stdout
    run = conductor_cli("run", config, "--replay", notes_file(tmp_path / "n.mid"), timeout=QUICK)
    assert run.returncode == 1
    assert_one_error_line(run.stderr, str(fifo), "trust store is a FIFO")


def test_exec_grant_and_run_with_a_fifo_as_grants_file(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    grants = Path(os.environ["XDG_CONFIG_HOME"]) / "conductor" / "grants.toml"
    grants.parent.mkdir(parents=True)
    mkfifo(grants)
    plugin = tmp_path / "good.wasm"
    shutil.copyfile(fixture_path("good"), plugin)
    config = tmp_path / "config.toml"
    config.write_text(config_for(plugin))
    runs = {
        "exec": conductor_cli("plugin", "exec", plugin, "--policy", "unsigned", timeout=QUICK),
        "grant": conductor_cli("plugin", "grant", plugin, "Filesystem", timeout=QUICK),
        "run": conductor_cli(
            "run", config, "--replay", notes_file(tmp_path / "n.mid"), timeout=QUICK
        ),
    }
    for command, result in runs.items():
        assert result.returncode == 1, command
        assert_one_error_line(result.stderr, str(grants), "grants file is a FIFO")


def test_run_with_a_signature_symlinked_to_dev_zero(conductor_cli: Runner, tmp_path: Path) -> None:
    """The tarball case: `x.wasm.sig -> /dev/zero` unpacked beside a plugin."""
    plugin = tmp_path / "x.wasm"
    shutil.copyfile(fixture_path("good"), plugin)
    Path(f"{plugin}.sig").symlink_to("/dev/zero")
    config = tmp_path / "config.toml"
    config.write_text(config_for(plugin, policy="self-signed"))
    result = conductor_cli("run", config, "--replay", notes_file(tmp_path / "n.mid"), timeout=QUICK)
    assert result.returncode == 1
    assert_one_error_line(result.stderr, f"{plugin}.sig", "character device")
    # Even the development policy, which allows a missing signature, refuses an unreadable one.
    config.write_text(config_for(plugin, policy="unsigned"))
    unsigned = conductor_cli("check", config, timeout=QUICK)
    assert unsigned.returncode == 1 and "character device" in unsigned.stdout


def test_replay_of_a_fifo(conductor_cli: Runner, fifo: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[modes]]\nname = "Default"\n')
    result = conductor_cli("run", config, "--replay", fifo, timeout=QUICK)
    assert result.returncode == 1
    assert_one_error_line(result.stderr, str(fifo), "MIDI file is a FIFO")


def test_an_installed_plugin_that_is_a_fifo_is_reported_not_replaced(
    conductor_cli: Runner,
) -> None:
    installed = Path(os.environ["HOME"]) / ".conductor" / "wasm-plugins"
    installed.mkdir(parents=True)
    mkfifo(installed / "obs.wasm")  # would otherwise fall through to the bundled obs
    result = conductor_cli("plugin", "exec", "obs", timeout=QUICK)
    assert result.returncode == 1
    assert_one_error_line(result.stderr, str(installed / "obs.wasm"), "plugin is a FIFO")
