"""`conductor plugin …` through real processes, with keys and signatures made here."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from tests.conftest import Runner
from tests.plugin_helpers import fixture_path, signed_copy


@pytest.fixture
def signed(tmp_path: Path, sign_cli: Runner) -> tuple[Path, str]:
    """A signed copy of the event_logger plugin and its public key (not yet trusted)."""
    key = SigningKey.generate()
    directory = tmp_path / "dist"
    directory.mkdir()
    return signed_copy("event_logger", directory, key), bytes(key.verify_key).hex()


def test_exec_json_reports_code_fuel_phases_and_output(conductor_cli: Runner) -> None:
    result = conductor_cli(
        "plugin",
        "exec",
        fixture_path("good"),
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
    assert report["result"]["code"] == 0 and report["result"]["fuel"] > 0
    assert set(report["phases_ms"]) == {
        "read_verify",
        "compile",
        "instantiate_init",
        "execute",
        "shutdown",
    }
    request = json.loads(report["result"]["output"]["logs"][0]["message"])
    assert request["action"] == "play"
    assert request["context"]["note"] == 60 and request["context"]["velocity"] == 100
    assert "UNSIGNED" in result.stderr


def test_exec_cc_event(conductor_cli: Runner) -> None:
    result = conductor_cli(
        "plugin",
        "exec",
        fixture_path("good"),
        "--policy",
        "unsigned",
        "--event",
        "cc:7:64:3",
        "--json",
    )
    context = json.loads(json.loads(result.stdout)["result"]["output"]["logs"][0]["message"])[
        "context"
    ]
    assert (context["trigger"], context["cc"], context["value"], context["channel"]) == (
        "CC",
        7,
        64,
        3,
    )


def test_exec_signature_tiers(
    conductor_cli: Runner, sign_cli: Runner, signed: tuple[Path, str]
) -> None:
    path, public = signed
    untrusted = conductor_cli("plugin", "exec", path)
    assert untrusted.returncode == 3 and "not in the trust store" in untrusted.stderr
    assert conductor_cli("plugin", "exec", path, "--policy", "self-signed").returncode == 0
    assert sign_cli("trust", "add", public, "Author").returncode == 0
    trusted = conductor_cli("plugin", "exec", path, "--event", "note:36:90")
    assert trusted.returncode == 0, trusted.stderr
    assert "Note note 36 vel 90" in trusted.stdout
    unsigned = conductor_cli("plugin", "exec", fixture_path("good"))
    assert unsigned.returncode == 1 and unsigned.stderr.startswith("error: ")


@pytest.mark.parametrize(
    ("fixture", "args", "reason"),
    [
        ("infinite_loop", ["--fuel", "1000000"], "out of fuel after 1000000 instructions"),
        (
            "infinite_loop",
            ["--fuel", "100000000000", "--timeout-ms", "150"],
            "wall-clock limit of 150 ms",
        ),
        ("memory_grow_bomb", ["--memory-mb", "4"], "memory limit 4 MiB exceeded"),
        ("trap", [], "unreachable"),
        ("alloc_zero", [], "alloc returned 0"),
    ],
)
def test_exec_reports_a_misbehaving_plugin(
    conductor_cli: Runner, fixture: str, args: list[str], reason: str
) -> None:
    result = conductor_cli(
        "plugin", "exec", fixture_path(fixture), "--policy", "unsigned", *args, "--json"
    )
    assert result.returncode == 1
    assert reason in json.loads(result.stdout)["result"]["error"]


def test_exec_load_failures_are_one_line(conductor_cli: Runner) -> None:
    result = conductor_cli("plugin", "exec", fixture_path("huge_memory"), "--policy", "unsigned")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: huge_memory: cannot instantiate: memory limit 128 MiB exceeded by the module's initial memory"
    )
    bad = conductor_cli(
        "plugin", "exec", fixture_path("good"), "--params", "[1]", "--policy", "unsigned"
    )
    assert bad.returncode == 2 and "JSON object" in bad.stderr
    event = conductor_cli(
        "plugin", "exec", fixture_path("good"), "--event", "note:999", "--policy", "unsigned"
    )
    assert event.returncode == 2


def test_inspect_json(conductor_cli: Runner) -> None:
    result = conductor_cli("plugin", "inspect", fixture_path("event_logger"), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["abi"]["ok"] and report["abi"]["init_metadata"] and report["abi"]["dealloc"]
    assert {"module": "conductor", "name": "log", "type": "func(i32, i32, i32) -> (i32)"} in report[
        "imports"
    ]
    assert report["metadata"]["name"] == "event_logger"
    assert report["capabilities"] == [{"name": "Filesystem", "risk": "medium"}]
    assert report["signature"]["status"] == "missing"


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("start_only", "exports only _start"),
        ("unknown_import", "unknown import env.system"),
        ("garbage_metadata", "metadata is not UTF-8"),
    ],
)
def test_inspect_explains_what_is_wrong(conductor_cli: Runner, fixture: str, reason: str) -> None:
    result = conductor_cli("plugin", "inspect", fixture_path(fixture))
    assert result.returncode == 1
    assert reason in result.stdout


@pytest.mark.parametrize(
    "content",
    [b"", b"\0asm\1\0\0", os.urandom(4096), fixture_path("good").read_bytes()[:-20]],
    ids=["empty", "truncated-header", "random", "truncated"],
)
def test_malformed_modules_get_a_reason_not_a_traceback(
    conductor_cli: Runner, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "broken.wasm"
    path.write_bytes(content)
    for command in (["plugin", "inspect", path], ["plugin", "exec", path, "--policy", "unsigned"]):
        result = conductor_cli(*command)
        assert result.returncode == 1
        assert "Traceback" not in result.stdout + result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("error: broken: ")


def test_install_list_grant_revoke_and_exec_by_name(
    conductor_cli: Runner, sign_cli: Runner, signed: tuple[Path, str], isolated_home: Path
) -> None:
    path, public = signed
    refused = conductor_cli("plugin", "install", path)
    assert refused.returncode == 3
    sign_cli("trust", "add", public, "Author")
    installed = conductor_cli("plugin", "install", path)
    assert installed.returncode == 0, installed.stderr
    target = isolated_home / ".conductor" / "wasm-plugins" / "event_logger.wasm"
    assert target.read_bytes() == path.read_bytes() and Path(f"{target}.sig").exists()
    assert conductor_cli("plugin", "install", path).returncode == 1  # already there

    listed = json.loads(conductor_cli("plugin", "list", "--json").stdout)["plugins"]
    assert [
        (p["plugin"], p["version"], p["signature"]["status"], p["granted"]) for p in listed
    ] == [("event_logger", "1.0.0", "trusted", [])]
    granted = conductor_cli("plugin", "grant", "event_logger", "filesystem", "--json")
    assert granted.returncode == 0, granted.stderr
    assert json.loads(granted.stdout)["key"] == public

    ran = conductor_cli("plugin", "exec", "event_logger", "--event", "note:40:10", "--json")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["granted"] == ["Filesystem"]
    events = (
        Path(os.environ["XDG_DATA_HOME"])
        / "conductor"
        / "plugin-data"
        / "event_logger"
        / "events.log"
    )
    assert "note 40 vel 10" in events.read_text()

    assert conductor_cli("plugin", "revoke", "event_logger", "Filesystem").returncode == 0
    assert (
        json.loads(conductor_cli("plugin", "exec", "event_logger", "--json").stdout)["granted"]
        == []
    )
    unknown = conductor_cli("plugin", "grant", "event_logger", "Teleport")
    assert unknown.returncode == 2 and "unknown capability" in unknown.stderr
    missing = conductor_cli("plugin", "exec", "nosuchplugin")
    assert missing.returncode == 1 and "nosuchplugin" in missing.stderr


def test_version_and_help(conductor_cli: Runner) -> None:
    assert conductor_cli("--version").stdout.startswith("conductor ")
    for command in ("exec", "inspect", "install", "list", "grant", "revoke"):
        assert conductor_cli("plugin", command, "--help").returncode == 0


def test_corrupt_grants_file_is_reported(conductor_cli: Runner, tmp_path: Path) -> None:
    grants = Path(os.environ["XDG_CONFIG_HOME"]) / "conductor" / "grants.toml"
    grants.parent.mkdir(parents=True, exist_ok=True)
    grants.write_text("grants = [[[")
    copy = tmp_path / "fs_probe.wasm"
    shutil.copyfile(fixture_path("fs_probe"), copy)
    result = conductor_cli("plugin", "grant", copy, "Filesystem")
    assert result.returncode == 1 and "corrupt" in result.stderr
    assert grants.read_text() == "grants = [[["
