"""A `${VAR}` secret never leaves the process (SPEC §8), whatever a plugin does with it: return it
from `init` as a capability name, a host pattern or its version, log it, or make the host put it
in a denial and its fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Runner
from tests.hostile._helpers import (
    assert_one_error_line,
    config_for,
    hostile_plugin,
    notes_file,
    write_plugin,
)
from tests.plugin_helpers import fixture_path

SECRET = "tok-5f3a9c2e7b1d"
ENV = {"LEAKY_TOKEN": SECRET}


def _leaky(tmp_path: Path, prefix: bytes, suffix: bytes) -> tuple[Path, Path]:
    """The plugin `leaky` with its token from $LEAKY_TOKEN, and a config that uses it."""
    plugin = write_plugin(tmp_path / "leaky.wasm", hostile_plugin(prefix, suffix))
    config = tmp_path / "config.toml"
    config.write_text(config_for(plugin, '[plugins.config.leaky]\ntoken = "${LEAKY_TOKEN}"'))
    return plugin, config


def _assert_hidden(*outputs: str) -> None:
    for output in outputs:
        assert SECRET not in output, output
    assert any("***" in output for output in outputs), outputs


def test_secret_returned_as_a_capability_name_is_redacted_everywhere(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    plugin, config = _leaky(tmp_path, b'{"name":"leaky","capabilities":["', b'"]}')
    check = conductor_cli("check", config, env=ENV)
    assert check.returncode == 1
    _assert_hidden(check.stdout, check.stderr)

    check_json = conductor_cli("check", config, "--json", env=ENV)
    assert check_json.returncode == 1
    _assert_hidden(check_json.stdout)
    assert "unknown capability '***'" in json.loads(check_json.stdout)["plugins"][0]["error"]

    exec_run = conductor_cli(
        "plugin", "exec", plugin, "--config", config, "--policy", "unsigned", env=ENV
    )
    assert exec_run.returncode == 1
    assert_one_error_line(exec_run.stderr, "unknown capability '***'")
    _assert_hidden(exec_run.stdout, exec_run.stderr)

    run = conductor_cli("run", config, "--replay", notes_file(tmp_path / "n.mid"), env=ENV)
    assert run.returncode == 1
    assert_one_error_line(run.stderr, "unknown capability '***'")
    _assert_hidden(run.stdout, run.stderr)


def test_secret_in_a_host_pattern_is_redacted_in_errors_and_warnings(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    plugin, config = _leaky(
        tmp_path, b'{"name":"leaky","capabilities":["Network"],"hosts":["https://', b'@x.test"]}'
    )
    bad_pattern = conductor_cli("plugin", "exec", plugin, "--config", config, env=ENV)
    assert bad_pattern.returncode == 1
    assert_one_error_line(bad_pattern.stderr, "host pattern")
    _assert_hidden(bad_pattern.stderr)

    plugin, config = _leaky(
        tmp_path, b'{"name":"leaky","capabilities":["Network"],"hosts":["http://', b'.test"]}'
    )
    unapproved = conductor_cli("plugin", "exec", plugin, "--config", config, env=ENV)
    assert unapproved.returncode == 0, unapproved.stderr
    assert "conductor plugin grant leaky Network --host http://***.test" in unapproved.stderr
    _assert_hidden(unapproved.stdout, unapproved.stderr)


def test_secret_shown_as_metadata_and_logged_is_redacted(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    plugin, config = _leaky(tmp_path, b'{"name":"leaky","version":"', b'"}')
    check = conductor_cli("check", config, "--json", env=ENV)
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["plugins"][0]["version"] == "***"
    _assert_hidden(check.stdout, check.stderr)
    table = conductor_cli("check", config, env=ENV)
    _assert_hidden(table.stdout, table.stderr)

    for extra in ((), ("--json",)):
        exec_run = conductor_cli(
            "plugin", "exec", plugin, "--config", config, "--policy", "unsigned", *extra, env=ENV
        )
        assert exec_run.returncode == 0, exec_run.stderr
        _assert_hidden(exec_run.stdout, exec_run.stderr)

    for log_format in ("text", "json"):
        run = conductor_cli(
            "run",
            config,
            "--replay",
            notes_file(tmp_path / "n.mid"),
            "--speed",
            "0",
            "--log-format",
            log_format,
            env=ENV,
        )
        assert run.returncode == 0, run.stderr
        _assert_hidden(run.stdout, run.stderr)


def test_denials_and_their_fix_are_redacted(conductor_cli: Runner, tmp_path: Path) -> None:
    """host_probe asks for a URL whose host is the secret: the host's denial, its fix and the
    plugin's own report of the error all carry it."""
    config = tmp_path / "config.toml"
    config.write_text('[plugins.config.host_probe]\ntoken = "${LEAKY_TOKEN}"\n')
    url = json.dumps({"url": f"http://{SECRET}.example:8080/"})
    result = conductor_cli(
        "plugin",
        "exec",
        fixture_path("host_probe"),
        "--config",
        config,
        "--policy",
        "unsigned",
        "--params",
        json.dumps({"fn": "http_request", "arg": url}),
        env=ENV,
    )
    assert result.returncode == 1  # the probe returns the DENIED code
    assert "http_request denied" in result.stderr
    assert '[plugins.hosts] host_probe = ["http://***.example:8080"]' in result.stderr
    _assert_hidden(result.stdout, result.stderr)


@pytest.mark.parametrize("value", ["a", "abc"])
def test_a_secret_too_short_to_redact_is_a_config_warning(
    conductor_cli: Runner, tmp_path: Path, value: str
) -> None:
    plugin = write_plugin(tmp_path / "good.wasm", fixture_path("good").read_bytes())
    config = tmp_path / "config.toml"
    config.write_text(config_for(plugin, '[plugins.config.good]\npin = "${SHORT_PIN}"'))
    result = conductor_cli("check", config, "--json", env={"SHORT_PIN": value})
    assert result.returncode == 0, result.stderr
    (warning,) = json.loads(result.stdout)["warnings"]
    assert warning["path"] == "plugins.config.good.pin"
    assert warning["message"].startswith(
        f"the value of ${{SHORT_PIN}} has {len(value)} character(s), too short to redact"
    )
    table = conductor_cli("check", config, env={"SHORT_PIN": value})
    assert table.returncode == 0 and "1 warning(s)" in table.stdout
    assert "warning: the value of ${SHORT_PIN}" in table.stdout


def test_a_secret_of_four_characters_is_redacted(conductor_cli: Runner, tmp_path: Path) -> None:
    plugin = write_plugin(
        tmp_path / "leaky.wasm", hostile_plugin(b'{"name":"leaky","version":"', b'"}')
    )
    config = tmp_path / "config.toml"
    config.write_text(config_for(plugin, '[plugins.config.leaky]\ntoken = "${LEAKY_TOKEN}"'))
    result = conductor_cli("check", config, "--json", env={"LEAKY_TOKEN": "q7#z"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["plugins"][0]["version"] == "***"
    assert "too short" not in result.stderr
