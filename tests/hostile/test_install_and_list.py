"""`plugin install` writes only inside the plugins directory, from the bytes it verified;
`plugin list` runs no code that its policy does not accept; grants are keyed by the verified key."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from tests.conftest import Runner
from tests.plugin_helpers import fixture_path, signed_copy


def plugins_dir() -> Path:
    return Path(os.environ["HOME"]) / ".conductor" / "wasm-plugins"


def cache_entries() -> list[Path]:
    return list((Path(os.environ["XDG_CACHE_HOME"]) / "conductor" / "modules").glob("*.cwasm"))


@pytest.fixture
def signed_logger(tmp_path: Path, sign_cli: Runner) -> Path:
    """event_logger signed by a key that is in the trust store."""
    key = SigningKey.generate()
    (tmp_path / "dist").mkdir()
    path = signed_copy("event_logger", tmp_path / "dist", key)
    assert sign_cli("trust", "add", bytes(key.verify_key).hex(), "Author").returncode == 0
    return path


@pytest.mark.parametrize("planted", ["good.wasm", "good.wasm.sig"])
def test_install_through_a_dangling_symlink_is_refused(
    conductor_cli: Runner, tmp_path: Path, planted: str
) -> None:
    source = signed_copy("good", tmp_path, SigningKey.generate())
    outside = tmp_path / "outside" / "planted"
    plugins_dir().mkdir(parents=True)
    (plugins_dir() / planted).symlink_to(outside)

    refused = conductor_cli("plugin", "install", source, "--policy", "self-signed")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"error: {plugins_dir() / planted}: already present, a symlink to {outside} "
        f"(use --force to replace it)"
    )
    assert not outside.exists() and not outside.parent.exists()

    forced = conductor_cli("plugin", "install", source, "--policy", "self-signed", "--force")
    assert forced.returncode == 0, forced.stderr
    assert not outside.exists() and not outside.parent.exists()
    assert not (plugins_dir() / planted).is_symlink()
    assert (plugins_dir() / "good.wasm").read_bytes() == source.read_bytes()


def test_installing_a_file_over_itself_is_a_clear_message(
    conductor_cli: Runner, signed_logger: Path
) -> None:
    assert conductor_cli("plugin", "install", signed_logger).returncode == 0
    installed = plugins_dir() / "event_logger.wasm"
    before = installed.read_bytes(), Path(f"{installed}.sig").read_bytes()
    again = conductor_cli("plugin", "install", installed)
    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"error: {installed}: already installed (use --force to replace it)"
    )
    forced = conductor_cli("plugin", "install", installed, "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["changed"] is False
    assert (installed.read_bytes(), Path(f"{installed}.sig").read_bytes()) == before


def test_install_writes_what_it_verified_and_drops_a_stale_signature(
    conductor_cli: Runner, signed_logger: Path, tmp_path: Path
) -> None:
    assert conductor_cli("plugin", "install", signed_logger).returncode == 0
    unsigned = tmp_path / "event_logger.wasm"
    shutil.copyfile(fixture_path("event_logger"), unsigned)
    replaced = conductor_cli("plugin", "install", unsigned, "--policy", "unsigned", "--force")
    assert replaced.returncode == 0, replaced.stderr
    assert "UNSIGNED" in replaced.stderr
    assert not Path(f"{plugins_dir() / 'event_logger.wasm'}.sig").exists()
    assert sorted(os.listdir(plugins_dir())) == ["event_logger.wasm"]  # no temp files left


def test_shadowing_a_bundled_plugin_warns(conductor_cli: Runner, tmp_path: Path) -> None:
    impostor = tmp_path / "obs.wasm"
    shutil.copyfile(fixture_path("good"), impostor)
    result = conductor_cli("plugin", "install", impostor, "--policy", "unsigned")
    assert result.returncode == 0, result.stderr
    warning = next(line for line in result.stderr.splitlines() if "shadows" in line)
    assert "bundled plugin" in warning and "[plugins.config.obs]" in warning


def test_list_runs_no_code_its_policy_does_not_accept(
    conductor_cli: Runner, signed_logger: Path, tmp_path: Path
) -> None:
    plugins_dir().mkdir(parents=True)
    shutil.copyfile(fixture_path("good"), plugins_dir() / "good.wasm")  # unsigned, copied by hand
    tampered = plugins_dir() / "trap.wasm"
    shutil.copyfile(fixture_path("trap"), tampered)
    Path(f"{tampered}.sig").write_text(Path(f"{signed_logger}.sig").read_text())

    listed = conductor_cli("plugin", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["plugin"]: row for row in json.loads(listed.stdout)["plugins"]}
    assert rows["good"]["signature"]["status"] == "missing"
    assert rows["good"]["version"] is None and rows["good"]["requested"] is None
    assert rows["trap"]["signature"]["status"] == "invalid" and rows["trap"]["version"] is None
    assert cache_entries() == []  # nothing was even compiled

    opted_in = conductor_cli("plugin", "list", "--policy", "unsigned", "--json")
    rows = {row["plugin"]: row for row in json.loads(opted_in.stdout)["plugins"]}
    assert rows["good"]["version"] == "1.2.3" and rows["trap"]["version"] is None


def test_list_does_not_warn_not_granted_for_granted_plugins(
    conductor_cli: Runner, signed_logger: Path
) -> None:
    assert conductor_cli("plugin", "install", signed_logger).returncode == 0
    assert conductor_cli("plugin", "grant", "event_logger", "Filesystem").returncode == 0
    listed = conductor_cli("plugin", "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "event_logger" in line)
    assert "1.0.0" in row and row.rstrip().rstrip("│").rstrip().endswith("Filesystem")
    assert listed.stderr == ""


def test_grants_are_keyed_by_the_verified_signer(
    conductor_cli: Runner, signed_logger: Path
) -> None:
    """A `.sig` naming another key than the one that signed cannot steer where grants go."""
    forged = json.loads(Path(f"{signed_logger}.sig").read_text())
    forged["public_key"] = bytes(SigningKey.generate().verify_key).hex()
    Path(f"{signed_logger}.sig").write_text(json.dumps(forged))
    result = conductor_cli("plugin", "grant", signed_logger, "Filesystem")
    assert result.returncode == 1
    assert "approvals are kept per signing key" in result.stderr
    grants = Path(os.environ["XDG_CONFIG_HOME"]) / "conductor" / "grants.toml"
    assert not grants.exists()
