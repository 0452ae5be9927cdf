"""`verify` reports every plugin even when one is missing, exit 3 means only "untrusted key"
(SPEC §1) for `verify` and `check` alike, and both apps offer shell completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from tests.conftest import Runner
from tests.hostile._helpers import config_for, write_plugin
from tests.plugin_helpers import fixture_path


@pytest.fixture
def untrusted(tmp_path: Path) -> Path:
    """`good`, validly signed by a key nobody trusts."""
    return write_plugin(
        tmp_path / "good.wasm", fixture_path("good").read_bytes(), SigningKey.generate()
    )


def test_verify_json_has_one_entry_per_plugin_even_when_one_is_missing(
    sign_cli: Runner, tmp_path: Path
) -> None:
    key = SigningKey.generate()
    good = write_plugin(tmp_path / "good.wasm", fixture_path("good").read_bytes(), key)
    store = tmp_path / "trust.toml"
    sign_cli("trust", "add", bytes(key.verify_key).hex(), "Me", "--trust-store", store)
    missing = tmp_path / "missing.wasm"
    result = sign_cli("verify", good, missing, "--json", "--trust-store", store)
    assert result.returncode == 1
    document = json.loads(result.stdout)  # exactly one document
    entries = {Path(entry["plugin"]).name: entry for entry in document["plugins"]}
    assert entries["good.wasm"]["status"] == "trusted"
    assert entries["missing.wasm"]["status"] == "unreadable"
    assert f"{missing}: plugin not found" in entries["missing.wasm"]["reason"]
    assert document["ok"] is False
    text = sign_cli("verify", good, missing, "--trust-store", store)
    assert text.returncode == 1
    assert "good.wasm: ✓ trusted" in text.stdout
    assert text.stderr.strip() == f"error: {missing}: plugin not found"


def test_verify_exit_3_only_when_every_refusal_is_an_untrusted_key(
    sign_cli: Runner, untrusted: Path, tmp_path: Path
) -> None:
    other = write_plugin(
        tmp_path / "other.wasm", fixture_path("trivial").read_bytes(), SigningKey.generate()
    )
    assert sign_cli("verify", untrusted, other).returncode == 3
    assert sign_cli("verify", untrusted, other, "--json").returncode == 3
    assert sign_cli("verify", untrusted, tmp_path / "missing.wasm").returncode == 1
    unsigned = tmp_path / "unsigned.wasm"
    unsigned.write_bytes(fixture_path("good").read_bytes())
    assert sign_cli("verify", untrusted, unsigned).returncode == 1


def test_check_exits_3_like_run_for_an_untrusted_plugin(
    conductor_cli: Runner, untrusted: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(config_for(untrusted, policy="trusted"))
    assert conductor_cli("check", config).returncode == 3
    assert conductor_cli("check", config, "--json").returncode == 3
    assert conductor_cli("run", config, "--replay", tmp_path / "x.mid").returncode == 3
    # A second plugin that fails for another reason makes it a plain failure.
    broken = tmp_path / "broken.wasm"
    broken.write_bytes(b"not wasm")
    config.write_text(
        config_for(untrusted, policy="trusted")
        + f'\n[[global_mappings]]\ntrigger = {{ CC = {{ cc = 1 }} }}\naction = {{ WasmPlugin = {{ path = "{broken}" }} }}\n'
    )
    assert conductor_cli("check", config).returncode == 1


@pytest.mark.parametrize(
    ("script", "words", "expected"),
    [("conductor", "conductor plu", "plugin"), ("conductor-sign", "conductor-sign ver", "verify")],
)
def test_shell_completion_is_enabled(script: str, words: str, expected: str) -> None:
    executable = Path(sys.executable).parent / script
    variable = "_" + script.upper().replace("-", "_") + "_COMPLETE"
    result = subprocess.run(
        [str(executable)],
        env={**os.environ, variable: "complete_bash", "COMP_WORDS": words, "COMP_CWORD": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [expected]
    assert (
        "--install-completion"
        in subprocess.run(
            [str(executable), "--help"], capture_output=True, text=True, timeout=60
        ).stdout
    )
