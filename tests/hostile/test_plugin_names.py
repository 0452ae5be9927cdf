"""A plugin's name is its file name without .wasm and follows one rule (SPEC §2): a file named
`..wasm` must not get `plugin-data/..` (all of Conductor's data) as its sandbox root."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conductor.errors import PluginNameError
from conductor.plugins.names import NAME_RULE
from conductor.plugins.sandbox import plugin_data_dir
from tests.conftest import Runner
from tests.hostile._helpers import assert_one_error_line, config_for
from tests.plugin_helpers import fixture_path

BAD_NAMES = ["..", ".", "", ".hidden", "with space", "esc\x1b[2J", "dotted.name", "x" * 65, "-dash"]


def _data_root() -> Path:
    return Path(os.environ["XDG_DATA_HOME"]) / "conductor"


@pytest.fixture
def escapist(tmp_path: Path) -> Path:
    """fs_probe (a plugin that reads and writes its `/`) under the name `..`."""
    target = tmp_path / "...wasm"
    shutil.copyfile(fixture_path("fs_probe"), target)
    return target


@pytest.mark.parametrize("name", BAD_NAMES)
def test_exec_refuses_every_name_outside_the_rule(
    conductor_cli: Runner, tmp_path: Path, name: str
) -> None:
    plugin = tmp_path / f"{name}.wasm"
    shutil.copyfile(fixture_path("good"), plugin)
    result = conductor_cli(
        "plugin", "exec", plugin, "--policy", "unsigned", "--grant", "Filesystem"
    )
    assert result.returncode == 1
    assert_one_error_line(result.stderr, "is not a valid plugin name", NAME_RULE)
    assert "\x1b" not in result.stderr  # the name is shown, control characters visible


def test_dotdot_plugin_gets_no_sandbox_root_anywhere(
    conductor_cli: Runner, escapist: Path, tmp_path: Path
) -> None:
    before = sorted(_data_root().rglob("*")) if _data_root().exists() else []
    result = conductor_cli(
        "plugin",
        "exec",
        escapist,
        "--policy",
        "unsigned",
        "--grant",
        "Filesystem",
    )
    assert result.returncode == 1
    assert_one_error_line(result.stderr, "'..' is not a valid plugin name")
    after = sorted(_data_root().rglob("*")) if _data_root().exists() else []
    assert after == before  # nothing created, in plugin-data or beside it


def test_every_command_that_makes_a_name_checks_it(
    conductor_cli: Runner, escapist: Path, tmp_path: Path
) -> None:
    inspect = conductor_cli("plugin", "inspect", escapist)
    assert inspect.returncode == 1
    assert_one_error_line(inspect.stderr, "is not a valid plugin name")

    install = conductor_cli("plugin", "install", escapist, "--policy", "unsigned")
    assert install.returncode == 1
    assert_one_error_line(install.stderr, "is not a valid plugin name")
    assert not (Path(os.environ["HOME"]) / ".conductor" / "wasm-plugins" / "...wasm").exists()

    grant = conductor_cli("plugin", "grant", escapist, "Filesystem")
    assert grant.returncode == 1
    assert_one_error_line(grant.stderr, "is not a valid plugin name")
    assert not (Path(os.environ["XDG_CONFIG_HOME"]) / "conductor" / "grants.toml").exists()

    config = tmp_path / "config.toml"
    config.write_text(config_for(escapist, '[plugins.grants]\n".." = ["Filesystem"]'))
    check = conductor_cli("check", config, "--json")
    assert check.returncode == 1
    assert "is not a valid plugin name" in check.stdout

    run = conductor_cli("run", config, "--replay", tmp_path / "never-read.mid")
    assert run.returncode == 1
    assert_one_error_line(run.stderr, "is not a valid plugin name")


def test_bare_names_follow_the_rule_too(conductor_cli: Runner) -> None:
    result = conductor_cli("plugin", "exec", "bad name", "--policy", "unsigned")
    assert result.returncode == 1
    assert_one_error_line(result.stderr, "is not a valid plugin name")


def test_plugin_list_reports_a_badly_named_file_and_lists_the_rest(
    conductor_cli: Runner,
) -> None:
    installed = Path(os.environ["HOME"]) / ".conductor" / "wasm-plugins"
    installed.mkdir(parents=True)
    shutil.copyfile(fixture_path("good"), installed / "..wasm")
    shutil.copyfile(fixture_path("good"), installed / "good.wasm")
    result = conductor_cli("plugin", "list", "--policy", "unsigned", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["plugin"]: row for row in json.loads(result.stdout)["plugins"]}
    assert "is not a valid plugin name" in rows["."]["error"]
    assert rows["good"]["error"] is None and rows["good"]["signature"]["accepted"]


def test_data_dir_is_always_a_direct_child_of_plugin_data() -> None:
    base = _data_root() / "plugin-data"
    assert plugin_data_dir("good_one-2") == base / "good_one-2"
    for name in [*BAD_NAMES, "a/b", "../x", "/abs"]:
        with pytest.raises(PluginNameError):
            plugin_data_dir(name)
