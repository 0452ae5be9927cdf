"""Smaller holes of the hardening pass: symlinked stores stay symlinks, deep TOML nesting is one
line, runtime denials reach the log, and v1 signatures can be refused by policy."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from tests.conftest import Runner
from tests.hostile._helpers import assert_one_error_line, config_for, notes_file, write_plugin
from tests.plugin_helpers import fixture_path

# -- a symlinked trust store or grants file stays a symlink ---------------------------------------


def _key() -> str:
    return bytes(SigningKey.generate().verify_key).hex()


def test_trust_add_and_remove_write_through_a_symlinked_store(
    sign_cli: Runner, tmp_path: Path
) -> None:
    real = tmp_path / "dotfiles" / "trusted_keys.toml"
    real.parent.mkdir()
    first = tmp_path / "link-to-link.toml"
    link = tmp_path / "link.toml"
    link.symlink_to(real)  # the real file need not exist yet
    first.symlink_to(link)
    keep, drop = _key(), _key()
    for key, name in ((keep, "Keep"), (drop, "Drop")):
        added = sign_cli("trust", "add", key, name, "--trust-store", first)
        assert added.returncode == 0, added.stderr
    removed = sign_cli("trust", "remove", drop, "--trust-store", first)
    assert removed.returncode == 0, removed.stderr
    assert first.is_symlink() and link.is_symlink()
    assert keep in real.read_text() and drop not in real.read_text()
    # One lock for the file, beside the file, whatever path led to it.
    assert Path(f"{real}.lock").exists()
    assert not Path(f"{first}.lock").exists() and not Path(f"{link}.lock").exists()
    listed = sign_cli("trust", "list", "--json", "--trust-store", real)
    assert [entry["name"] for entry in json.loads(listed.stdout)["keys"]] == ["Keep"]


def test_plugin_grant_writes_through_a_symlinked_grants_file(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    real = tmp_path / "shared" / "grants.toml"
    real.parent.mkdir()
    real.write_text("# mine\n")
    grants = Path(os.environ["XDG_CONFIG_HOME"]) / "conductor" / "grants.toml"
    grants.parent.mkdir(parents=True)
    grants.symlink_to(real)
    result = conductor_cli("plugin", "grant", fixture_path("fs_probe"), "Filesystem")
    assert result.returncode == 0, result.stderr
    assert grants.is_symlink()
    assert real.read_text().startswith("# mine\n") and "Filesystem" in real.read_text()


# -- deep nesting is a one-line error ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("x = " + "[" * 3000 + "]" * 3000, "nested too deeply"),
        ("x = " + "{a = " * 3000 + "1" + "}" * 3000, "nested too deeply"),
        ('[plugins.config.p]\nk = "v"\n' + "a" + ".a" * 3000 + " = 1", "nested more than 64"),
        ("[" + "a." * 3000 + "a]", "nested more than 64"),
    ],
    ids=["arrays", "inline-tables", "dotted-key", "table-header"],
)
def test_deeply_nested_config_is_one_line(
    conductor_cli: Runner, tmp_path: Path, text: str, fragment: str
) -> None:
    config = tmp_path / "deep.toml"
    config.write_text(text)
    for command in ("check", "run"):
        result = conductor_cli(command, config)
        assert result.returncode == 1
        assert_one_error_line(result.stderr, str(config), fragment)


@pytest.mark.parametrize(
    "text",
    ["keys = " + "[" * 3000 + "]" * 3000, "[" + "a." * 3000 + "a]", "a" + ".a" * 3000 + " = 1"],
    ids=["arrays", "table-header", "dotted-key"],
)
def test_deeply_nested_stores_are_one_line(
    sign_cli: Runner, conductor_cli: Runner, tmp_path: Path, text: str
) -> None:
    store = tmp_path / "store.toml"
    store.write_text(text)
    listed = sign_cli("trust", "list", "--trust-store", store)
    assert listed.returncode == 1
    assert_one_error_line(listed.stderr, str(store), "trust store is corrupt")
    grants = Path(os.environ["XDG_CONFIG_HOME"]) / "conductor" / "grants.toml"
    grants.parent.mkdir(parents=True, exist_ok=True)
    grants.write_text(text)
    granted = conductor_cli("plugin", "grant", fixture_path("fs_probe"), "Filesystem")
    assert granted.returncode == 1
    assert_one_error_line(granted.stderr, str(grants), "grants file is corrupt")
    assert grants.read_text() == text  # left untouched


# -- runtime denials reach the log ---------------------------------------------------------------

ECHO = json.dumps({"argv": ["echo", "hi"]})
EXEC_ECHO = json.dumps({"fn": "exec", "arg": ECHO})


def test_exec_logs_a_denial_with_its_fix(conductor_cli: Runner) -> None:
    result = conductor_cli(
        "plugin", "exec", fixture_path("host_probe"), "--policy", "unsigned", "--params", EXEC_ECHO
    )
    assert result.returncode == 1  # the probe returns DENIED
    denials = [line for line in result.stderr.splitlines() if "denied" in line]
    assert denials == [
        "warning: host_probe: exec denied: Subprocess is not granted; to allow it: "
        "conductor plugin grant host_probe Subprocess"
    ]


def test_run_logs_each_denial_once_and_plugin_lines_once(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    params = f'{{ fn = "exec", arg = {json.dumps(ECHO)} }}'  # a JSON string is a TOML string
    config.write_text(config_for(fixture_path("host_probe"), params=params))
    result = conductor_cli(
        "run", config, "--replay", notes_file(tmp_path / "n.mid", count=4), "--speed", "0"
    )
    assert result.returncode == 0, result.stderr
    denials = [line for line in result.stderr.splitlines() if "exec denied" in line]
    assert len(denials) == 1 and "conductor plugin grant host_probe Subprocess" in denials[0]
    # The plugin's own report of the error shows in the event output, once per event, and not
    # again in the log.
    plugin_lines = [line for line in result.stdout.splitlines() if "error -1" in line]
    assert len(plugin_lines) == 4
    assert "error -1" not in result.stderr


# -- v1 signatures can be refused by policy ---------------------------------------------------------


@pytest.fixture
def v1_signed(tmp_path: Path, sign_cli: Runner) -> tuple[Path, Path]:
    """A v1-signed copy of `good` whose key is trusted, and the trust store."""
    key = SigningKey.generate()
    plugin = write_plugin(tmp_path / "good.wasm", fixture_path("good").read_bytes(), key, 1)
    store = tmp_path / "trust.toml"
    sign_cli("trust", "add", bytes(key.verify_key).hex(), "V1 Signer", "--trust-store", store)
    return plugin, store


def test_verify_min_version(sign_cli: Runner, v1_signed: tuple[Path, Path]) -> None:
    plugin, store = v1_signed
    assert sign_cli("verify", plugin, "--trust-store", store).returncode == 0
    refused = sign_cli("verify", plugin, "--trust-store", store, "--min-version", "2", "--json")
    assert refused.returncode == 1
    entry = json.loads(refused.stdout)["plugins"][0]
    assert entry["status"] == "refused" and "below the required minimum v2" in entry["reason"]
    text = sign_cli("verify", plugin, "--trust-store", store, "--min-version", "2")
    assert "refused" in text.stdout and "not authenticated" in text.stdout
    assert sign_cli("verify", plugin, "--min-version", "3").returncode == 2


def test_config_min_signature_version(
    conductor_cli: Runner, v1_signed: tuple[Path, Path], tmp_path: Path
) -> None:
    plugin, store = v1_signed
    config = tmp_path / "config.toml"
    extra = f'trust_store = "{store}"\nmin_signature_version = 2'
    config.write_text(config_for(plugin, extra, policy="trusted"))
    check = conductor_cli("check", config, "--json")
    assert check.returncode == 1
    assert "below the required minimum v2" in json.loads(check.stdout)["plugins"][0]["error"]
    exec_run = conductor_cli("plugin", "exec", plugin, "--config", config)
    assert exec_run.returncode == 1
    assert_one_error_line(exec_run.stderr, "below the required minimum v2")
    run = conductor_cli("run", config, "--replay", notes_file(tmp_path / "n.mid"))
    assert run.returncode == 1
    assert_one_error_line(run.stderr, "below the required minimum v2")

    config.write_text(config_for(plugin, f'trust_store = "{store}"', policy="trusted"))
    assert conductor_cli("check", config).returncode == 0
    config.write_text(config_for(plugin, "min_signature_version = 3"))
    invalid = conductor_cli("check", config)
    assert invalid.returncode == 1
    assert_one_error_line(invalid.stderr, "plugins.min_signature_version: 3 is not")


def test_v2_signatures_pass_min_version_2(
    conductor_cli: Runner, sign_cli: Runner, tmp_path: Path
) -> None:
    key = SigningKey.generate()
    plugin = write_plugin(tmp_path / "good.wasm", fixture_path("good").read_bytes(), key, 2)
    store = tmp_path / "trust.toml"
    sign_cli("trust", "add", bytes(key.verify_key).hex(), "V2 Signer", "--trust-store", store)
    verify = sign_cli("verify", plugin, "--trust-store", store, "--min-version", "2")
    assert verify.returncode == 0, verify.stdout
    config = tmp_path / "config.toml"
    extra = f'trust_store = "{store}"\nmin_signature_version = 2'
    config.write_text(config_for(plugin, extra, policy="trusted"))
    assert conductor_cli("check", config).returncode == 0
