"""The module cache holds native code: only an entry authenticated for the exact verified bytes
is used, only from a directory nobody else can write, and entries are read like any other file."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Runner
from tests.plugin_helpers import fixture_path


def cache_dir() -> Path:
    return Path(os.environ["XDG_CACHE_HOME"]) / "conductor" / "modules"


def entries() -> set[Path]:
    return set(cache_dir().glob("*.cwasm"))


def exec_json(conductor_cli: Runner, *args: str | os.PathLike[str]) -> dict[str, Any]:
    """`plugin exec … --json`; system-utils without an action exits 1 but still reports."""
    result = conductor_cli("plugin", "exec", *args, "--json")
    assert "Traceback" not in result.stderr, result.stderr
    return dict(json.loads(result.stdout))


def test_a_swapped_entry_is_ignored_and_rebuilt(conductor_cli: Runner) -> None:
    first = exec_json(conductor_cli, "system-utils")
    (bundled_entry,) = entries()
    exec_json(conductor_cli, fixture_path("good"), "--policy", "unsigned")
    (other_entry,) = entries() - {bundled_entry}
    shutil.copyfile(other_entry, bundled_entry)  # good's native code under system-utils' name

    swapped = exec_json(conductor_cli, "system-utils")
    assert swapped["metadata"] == first["metadata"]
    assert swapped["metadata"]["name"] == "system-utils"
    assert swapped["compiled_from_cache"] is False and swapped["signature"]["bundled"] is True
    assert bundled_entry.read_bytes() != other_entry.read_bytes()  # rebuilt in place

    again = exec_json(conductor_cli, "system-utils")
    assert again["compiled_from_cache"] is True and again["metadata"] == first["metadata"]


def test_an_entry_under_another_key_is_ignored(conductor_cli: Runner) -> None:
    exec_json(conductor_cli, fixture_path("good"), "--policy", "unsigned")
    key = cache_dir() / "cache.key"
    key.write_bytes(bytes(32))  # entries were authenticated under the old secret
    report = exec_json(conductor_cli, fixture_path("good"), "--policy", "unsigned")
    assert report["compiled_from_cache"] is False and report["result"]["ok"]


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory"])
def test_special_files_as_entries_are_ignored(conductor_cli: Runner, kind: str) -> None:
    exec_json(conductor_cli, fixture_path("good"), "--policy", "unsigned")
    (entry,) = entries()
    entry.unlink()
    if kind == "fifo":
        os.mkfifo(entry)
    elif kind == "dev-zero":
        entry.symlink_to("/dev/zero")
    else:
        entry.mkdir()
    report = exec_json(conductor_cli, fixture_path("good"), "--policy", "unsigned")
    assert report["compiled_from_cache"] is False and report["result"]["ok"]


def test_directories_and_secret_are_private_whatever_the_umask(conductor_cli: Runner) -> None:
    previous = os.umask(0)
    try:
        exec_json(conductor_cli, fixture_path("good"), "--policy", "unsigned")
    finally:
        os.umask(previous)
    modes = {
        path.name: stat.S_IMODE(path.stat().st_mode)
        for path in (cache_dir().parent, cache_dir(), cache_dir() / "cache.key", *entries())
    }
    assert modes.pop("conductor") == 0o700 and modes.pop("modules") == 0o700
    assert set(modes.values()) == {0o600} and len(modes) == 2


def two_plugin_config(tmp_path: Path) -> Path:
    config = tmp_path / "two.toml"
    config.write_text(
        '[plugins]\nsignature_policy = "unsigned"\n[[modes]]\nname = "Main"\n'
        + "".join(
            f"[[modes.mappings]]\ntrigger = {{ Note = {{ note = {note} }} }}\n"
            f'action = {{ WasmPlugin = {{ path = "{fixture_path(name)}" }} }}\n'
            for note, name in ((36, "good"), (37, "trivial"))
        )
    )
    return config


def assert_refused_once(conductor_cli: Runner, tmp_path: Path, reason: str) -> None:
    checked = conductor_cli("check", two_plugin_config(tmp_path))
    assert checked.returncode == 0, checked.stderr
    warnings = [line for line in checked.stderr.splitlines() if "module cache not used" in line]
    assert len(warnings) == 1 and reason in warnings[0], checked.stderr
    assert str(cache_dir()) in warnings[0]
    assert entries() == set() and not (cache_dir() / "cache.key").exists()


def test_a_cache_directory_others_can_write_is_refused(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    cache_dir().mkdir(parents=True)
    cache_dir().chmod(0o777)
    assert_refused_once(conductor_cli, tmp_path, "writable by group or others")


def test_a_cache_directory_owned_by_another_user_is_refused(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a directory to another user needs root")
    cache_dir().mkdir(parents=True, mode=0o700)
    os.chown(cache_dir(), pwd.getpwnam("nobody").pw_uid, -1)
    assert_refused_once(conductor_cli, tmp_path, "owned by another user")
