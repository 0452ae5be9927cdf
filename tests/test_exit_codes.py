"""Exit 3 from every command that verifies plugins when the only refusal is an untrusted key, 1
as soon as anything else is wrong too: one rule (`overall_exit_code`), through the real CLIs."""

from __future__ import annotations

from pathlib import Path

import pytest
from nacl.signing import SigningKey

from conductor.engine.check import check_config
from conductor.errors import UntrustedKeyError
from tests.conftest import Runner
from tests.hostile._helpers import assert_one_error_line, notes_file
from tests.plugin_helpers import fixture_path, signed_copy

MAPPING = """
[[global_mappings]]
trigger = {{ Note = {{ note = {note} }} }}
action = {{ WasmPlugin = {{ path = "{path}"{limits} }} }}
"""


@pytest.fixture
def plugins(tmp_path: Path) -> dict[str, Path]:
    """`untrusted`: validly signed by a key no store trusts; `other`: a second plugin signed by
    that key; `unsigned`: no signature at all."""
    key = SigningKey.generate()
    unsigned = tmp_path / "trap.wasm"
    unsigned.write_bytes(fixture_path("trap").read_bytes())
    return {
        "untrusted": signed_copy("good", tmp_path, key),
        "other": signed_copy("trivial", tmp_path, key),
        "unsigned": unsigned,
    }


def config(tmp_path: Path, *paths: Path, twice: bool = False) -> Path:
    text = "".join(
        MAPPING.format(note=index, path=path, limits="") for index, path in enumerate(paths)
    )
    if twice:  # the same plugin under other limits: a second load, refused the same way
        text += MAPPING.format(note=99, path=paths[0], limits=", limits = { max_fuel = 1000 }")
    target = tmp_path / f"config-{len(paths)}-{twice}.toml"
    target.write_text(text)
    return target


def test_verify(sign_cli: Runner, plugins: dict[str, Path]) -> None:
    assert sign_cli("verify", plugins["untrusted"], plugins["other"]).returncode == 3
    assert sign_cli("verify", plugins["untrusted"], plugins["unsigned"]).returncode == 1


@pytest.mark.parametrize(
    ("which", "twice", "code"),
    [
        (["untrusted"], False, 3),
        (["untrusted", "other"], False, 3),
        (["untrusted"], True, 3),
        (["untrusted", "unsigned"], False, 1),
        (["unsigned", "untrusted"], False, 1),
    ],
)
def test_check_and_run_agree(
    conductor_cli: Runner,
    tmp_path: Path,
    plugins: dict[str, Path],
    which: list[str],
    twice: bool,
    code: int,
) -> None:
    path = config(tmp_path, *(plugins[name] for name in which), twice=twice)
    song = notes_file(tmp_path / "notes.mid", count=1)
    checked = conductor_cli("check", path)
    ran = conductor_cli("run", path, "--replay", song, "--speed", "0")
    assert (checked.returncode, ran.returncode) == (code, code), checked.stdout + ran.stderr
    assert ran.stdout == ""  # refused before any event
    line = assert_one_error_line(ran.stderr)
    for name in which:  # one line, naming every plugin that did not load
        assert plugins[name].name in line
    if len(which) > 1:
        assert f"{len(which)} plugins did not load" in line


def test_plugin_exec_and_install(conductor_cli: Runner, plugins: dict[str, Path]) -> None:
    assert conductor_cli("plugin", "exec", plugins["untrusted"]).returncode == 3
    assert conductor_cli("plugin", "exec", plugins["unsigned"]).returncode == 1
    assert conductor_cli("plugin", "install", plugins["untrusted"]).returncode == 3
    assert conductor_cli("plugin", "install", plugins["unsigned"]).returncode == 1


def test_check_as_a_library_call(tmp_path: Path, plugins: dict[str, Path]) -> None:
    """`check_config` (what `conductor check` prints) grades the same way, and counts the
    config's warnings as a failure only under strict."""
    untrusted = check_config(config(tmp_path, plugins["untrusted"], plugins["other"]))
    assert untrusted.exit_code == 3 and not untrusted.failed_on_warnings
    assert [row["ok"] for row in untrusted.plugin_rows()] == [False, False]
    assert all(isinstance(f.error, UntrustedKeyError) for f in untrusted.findings)
    mixed = check_config(config(tmp_path, plugins["untrusted"], plugins["unsigned"]))
    assert mixed.exit_code == 1 and mixed.to_json()["ok"] is False
    warned = tmp_path / "warned.toml"
    warned.write_text("[plugins]\nsignature_policy = 'unsigned'\ncolour = 'red'\n")
    assert check_config(warned).exit_code == 0
    strict = check_config(warned, strict=True)
    assert strict.failed_on_warnings and strict.exit_code == 1
    assert strict.to_json()["warnings"][0]["path"] == "plugins.colour"
