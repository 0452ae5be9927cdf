"""Encrypted key files are outside input: the KDF work they ask for is capped before any is done,
and an empty passphrase is refused whether it was typed or set in the environment."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from conductor.errors import KeyFileError
from conductor.signing import load_signing_key
from tests.conftest import Runner
from tests.plugin_helpers import fixture_path

PASSPHRASE = {"CONDUCTOR_KEY_PASSPHRASE": "correct horse"}


@pytest.fixture
def encrypted_key(sign_cli: Runner, tmp_path: Path) -> Path:
    made = sign_cli("generate-key", tmp_path / "enc", "--passphrase", env=PASSPHRASE)
    assert made.returncode == 0, made.stderr
    return tmp_path / "enc.private"


def with_field(path: Path, name: str, value: object) -> Path:
    document = json.loads(path.read_text())
    document[name] = value
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("memlimit", 4294967296, "memlimit 4294967296 is outside"),
        ("opslimit", 2**40, f"opslimit {2**40} is outside"),
        ("opslimit", 0, "opslimit 0 is outside"),
        ("memlimit", -1, "memlimit -1 is outside"),
        ("opslimit", "3", "opslimit must be an integer"),
        ("memlimit", True, "memlimit must be an integer"),
        ("memlimit", 1e12, "memlimit must be an integer"),
    ],
)
def test_kdf_limits_beyond_sensitive_are_refused_before_any_work(
    sign_cli: Runner, encrypted_key: Path, tmp_path: Path, name: str, value: object, reason: str
) -> None:
    hostile = with_field(encrypted_key, name, value)
    plugin = shutil.copyfile(fixture_path("good"), tmp_path / "good.wasm")
    started = time.monotonic()
    result = sign_cli("sign", plugin, hostile, "--name", "A", "--email", "a@b", env=PASSPHRASE)
    elapsed = time.monotonic() - started
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {hostile}: {reason}"), lines
    assert not Path(f"{plugin}.sig").exists()
    assert elapsed < 10, elapsed  # the bug: 4.2 GB and minutes, or never finishing
    with pytest.raises(KeyFileError, match=reason):  # refused before the passphrase is asked
        load_signing_key(hostile, lambda: pytest.fail("the passphrase was asked"))


def test_an_empty_passphrase_from_the_environment_is_refused(
    sign_cli: Runner, encrypted_key: Path, tmp_path: Path
) -> None:
    empty = {"CONDUCTOR_KEY_PASSPHRASE": ""}
    made = sign_cli("generate-key", tmp_path / "open", "--passphrase", env=empty)
    assert made.returncode == 1
    assert made.stderr.strip() == (
        "error: an empty passphrase is not allowed (CONDUCTOR_KEY_PASSPHRASE is set but empty)"
    )
    assert not (tmp_path / "open.private").exists() and not (tmp_path / "open.public").exists()
    plugin = shutil.copyfile(fixture_path("good"), tmp_path / "good.wasm")
    signed = sign_cli("sign", plugin, encrypted_key, "--name", "A", "--email", "a@b", env=empty)
    assert signed.returncode == 1 and "empty passphrase is not allowed" in signed.stderr
