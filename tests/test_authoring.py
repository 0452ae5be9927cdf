"""Plugin authoring: `plugin new` scaffolds build with their one command and pass `plugin exec`;
`plugin inspect` explains imports; grants with hosts and commands; `plugin exec --config`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Runner
from tests.midi_helpers import require
from tests.plugin_helpers import fixture_path

BUILD_ENV = {
    "PATH": "/usr/bin:" + os.environ.get("PATH", "")
}  # Debian's rustc/cargo before rustup's


@pytest.mark.parametrize(
    ("lang", "tools", "build", "artifact"),
    [
        ("c", ("clang", "make"), ["make"], "hello-c.wasm"),
        ("wat", ("wat2wasm", "make"), ["make"], "hello-wat.wasm"),
        (
            "rust",
            ("cargo",),
            ["cargo", "build", "--release", "--offline"],
            "target/wasm32-wasi/release/hello_rust.wasm",
        ),
    ],
)
def test_scaffolds_build_and_run(
    conductor_cli: Runner,
    tmp_path: Path,
    lang: str,
    tools: tuple[str, ...],
    build: list[str],
    artifact: str,
) -> None:
    for tool in tools:
        require(tool)
    if lang == "rust" and not Path("/usr/lib/rustlib/wasm32-wasi").exists():
        message = "Debian's libstd-rust-dev-wasm32 is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    name = f"hello-{lang}"
    created = conductor_cli("plugin", "new", name, "--lang", lang, "--dir", tmp_path, "--json")
    assert created.returncode == 0, created.stderr
    project = tmp_path / name
    built = subprocess.run(
        build,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **BUILD_ENV},
    )
    assert built.returncode == 0, built.stdout + built.stderr
    result = conductor_cli(
        "plugin",
        "exec",
        project / artifact,
        "--policy",
        "unsigned",
        "--params",
        '{"action": "play"}',
        "--event",
        "note:60:100",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["metadata"]["name"] == name
    assert report["result"]["code"] == 0 and report["result"]["output"]["logs"]


def test_new_refuses_bad_names_languages_and_existing_dirs(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    assert conductor_cli("plugin", "new", "Bad Name", "--dir", tmp_path).returncode == 2
    assert (
        conductor_cli("plugin", "new", "ok", "--lang", "cobol", "--dir", tmp_path).returncode == 2
    )
    assert conductor_cli("plugin", "new", "twice", "--dir", tmp_path).returncode == 0
    again = conductor_cli("plugin", "new", "twice", "--dir", tmp_path)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_inspect_warns_about_an_import_whose_capability_is_not_requested(
    conductor_cli: Runner,
) -> None:
    report = json.loads(
        conductor_cli("plugin", "inspect", fixture_path("undeclared_network"), "--json").stdout
    )
    assert report["import_warnings"] == [
        "imports conductor.http_request, which needs Network, but the metadata does not request it"
    ]
    probe = json.loads(
        conductor_cli("plugin", "inspect", fixture_path("host_probe"), "--json").stdout
    )
    assert probe["import_warnings"] == []
    assert probe["hosts"] == ["https://api.example.test", "http://127.0.0.1:1"]
    assert {c["name"]: c["risk"] for c in probe["capabilities"]} == {
        "Network": "low",
        "Subprocess": "high",
        "SystemControl": "high",
    }


def test_grant_hosts_and_commands_with_resolved_paths(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    copy = tmp_path / "host_probe.wasm"
    copy.write_bytes(fixture_path("host_probe").read_bytes())
    granted = conductor_cli(
        "plugin",
        "grant",
        copy,
        "Subprocess",
        "--command",
        "echo",
        "--host",
        "http://127.0.0.1:1",
        "--json",
    )
    assert granted.returncode == 0, granted.stderr
    grant = json.loads(granted.stdout)
    assert grant["commands"] == {"echo": str(Path("/usr/bin/echo").resolve())}
    assert grant["hosts"] == ["http://127.0.0.1:1"] and grant["key"] == "unsigned"
    ran = conductor_cli(
        "plugin",
        "exec",
        copy,
        "--policy",
        "unsigned",
        "--params",
        json.dumps({"fn": "exec", "arg": json.dumps({"argv": ["echo", "granted"]})}),
        "--json",
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert (
        '"stdout":"granted\\n"' in json.loads(ran.stdout)["result"]["output"]["logs"][-1]["message"]
    )
    assert conductor_cli("plugin", "grant", copy, "Network", "--host", "ftp://x").returncode == 2
    assert (
        conductor_cli(
            "plugin", "grant", copy, "Subprocess", "--command", "no-such-tool-here"
        ).returncode
        == 2
    )
    revoked = json.loads(
        conductor_cli("plugin", "revoke", copy, "--command", "echo", "--json").stdout
    )
    assert revoked["commands"] == {} and revoked["hosts"] == ["http://127.0.0.1:1"]


def test_exec_with_config_reads_plugin_config_and_redacts_secrets(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    config = tmp_path / "setup.toml"
    config.write_text(
        '[plugins]\nsignature_policy = "unsigned"\n'
        '[plugins.config.host_probe]\ntoken = "${PROBE_TOKEN}"\nliteral = "$${NOT_A_VAR}"\n'
        '[plugins.commands]\nhost_probe = ["echo"]\n'
        '[plugins.grants]\nhost_probe = ["Subprocess"]\n'
        "[plugins.limits]\nmax_fuel = 50000000\n"
    )
    env = {"PROBE_TOKEN": "tok-123456"}
    token = conductor_cli(
        "plugin",
        "exec",
        fixture_path("host_probe"),
        "--config",
        config,
        "--json",
        "--params",
        json.dumps({"fn": "config_get", "arg": "token"}),
        env=env,
    )
    assert token.returncode == 0, token.stderr
    assert "tok-123456" not in token.stdout + token.stderr
    assert json.loads(token.stdout)["result"]["output"]["logs"][-1]["message"] == "answer 10 ***"
    literal = conductor_cli(
        "plugin",
        "exec",
        fixture_path("host_probe"),
        "--config",
        config,
        "--json",
        "--params",
        json.dumps({"fn": "config_get", "arg": "literal"}),
        env=env,
    )
    assert (
        json.loads(literal.stdout)["result"]["output"]["logs"][-1]["message"]
        == "answer 12 ${NOT_A_VAR}"
    )
    echo = conductor_cli(
        "plugin",
        "exec",
        fixture_path("host_probe"),
        "--config",
        config,
        "--json",
        "--params",
        json.dumps({"fn": "exec", "arg": json.dumps({"argv": ["echo", "tok-123456"]})}),
        env=env,
    )
    assert echo.returncode == 0 and "tok-123456" not in echo.stdout and "***" in echo.stdout
    unset = conductor_cli("plugin", "exec", fixture_path("host_probe"), "--config", config)
    assert unset.returncode == 1
    assert (
        "plugins.config.host_probe.token: environment variable PROBE_TOKEN is not set"
        in unset.stderr
    )
