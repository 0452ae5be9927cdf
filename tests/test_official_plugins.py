"""What the three bundled plugins share: the product page's file names, the `actions` their
metadata lists (SPEC §9) as `plugin inspect` shows them, and an unknown action answered with 3 and
the list of actions; and any plugin's `actions`, however malformed or hostile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

from conductor.errors import MetadataError
from conductor.plugins import bundled
from conductor.plugins.abi import parse_metadata
from conductor.plugins.loader import resolve_plugin
from tests.conftest import Runner

# SPEC §9: the reference's names, then the product page's aliases.
ACTIONS = {
    "spotify": [
        "play_pause",
        "play",
        "pause",
        "next_track",
        "previous_track",
        "volume_up",
        "volume_down",
        "set_volume",
        "adjust_volume",
        "shuffle",
        "repeat",
        "play_playlist",
        "like_current_track",
    ],
    "obs": [
        "switch_scene",
        "start_recording",
        "stop_recording",
        "toggle_recording",
        "pause_recording",
        "resume_recording",
        "start_streaming",
        "stop_streaming",
        "toggle_streaming",
        "toggle_mute",
        "mute",
        "unmute",
        "set_volume",
        "toggle_source",
        "toggle_replay_buffer",
        "save_replay_buffer",
        "toggle_studio_mode",
    ],
    "system-utils": [
        "show_notification",
        "copy_to_clipboard",
        "take_screenshot",
        "volume_up",
        "volume_down",
        "set_volume",
        "mute_system",
        "unmute_system",
        "toggle_mute",
        "open_url",
        "lock_screen",
        "media",
        "run_command",
        "brightness",
        "sleep",
        "send_keys",
        "type_text",
    ],
}
ALIASES = {
    "spotify": {"next_track": ["next"], "previous_track": ["previous"], "set_volume": ["volume"]},
    "obs": {},
    "system-utils": {"show_notification": ["notification"], "lock_screen": ["lock"]},
}
PAGE_NAMES = {
    "conductor_wasm_spotify": "spotify",
    "conductor_wasm_obs_control": "obs",
    "conductor_wasm_system_utils": "system-utils",
}


@pytest.mark.parametrize("page_name", sorted(PAGE_NAMES))
def test_the_product_pages_file_names_resolve_to_the_bundled_plugins(
    page_name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    expected = bundled.path_of(PAGE_NAMES[page_name])
    assert expected is not None
    empty = tmp_path_factory.mktemp("no-installed-plugins")
    for spec in (page_name, f"{page_name}.wasm"):
        assert resolve_plugin(spec, empty, empty) == expected
    installed = empty / f"{page_name}.wasm"
    installed.write_bytes(b"\0asm")
    assert resolve_plugin(page_name, empty, empty) == installed  # an installed plugin wins
    assert resolve_plugin(f"{page_name}.wasm", empty, empty) == installed
    assert resolve_plugin(f"./{page_name}.wasm", empty, empty) == empty / f"{page_name}.wasm"


def test_a_path_that_only_resembles_a_page_name_stays_a_path(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    empty = tmp_path_factory.mktemp("elsewhere")
    assert (
        resolve_plugin("sub/conductor_wasm_spotify.wasm", empty, empty)
        == empty / "sub" / "conductor_wasm_spotify.wasm"
    )


@pytest.mark.parametrize("page_name", sorted(PAGE_NAMES))
def test_inspect_lists_the_actions_with_params_and_aliases(
    conductor_cli: Runner, page_name: str
) -> None:
    name = PAGE_NAMES[page_name]
    report = json.loads(conductor_cli("plugin", "inspect", page_name, "--json").stdout)
    assert report["plugin"] == name
    assert [a["name"] for a in report["actions"]] == ACTIONS[name]
    assert report["actions"] == report["metadata"]["actions"]
    assert {a["name"]: a["aliases"] for a in report["actions"] if a["aliases"]} == ALIASES[name]
    assert all(a["description"] and "\n" not in a["description"] for a in report["actions"])
    text = conductor_cli("plugin", "inspect", f"{page_name}.wasm")
    assert text.returncode == 0, text.stderr
    lines = [line.split(None, 1)[1] for line in text.stdout.splitlines() if "  action  " in line]
    assert len(lines) == len(ACTIONS[name])
    for action, line in zip(report["actions"], lines, strict=True):
        assert line.startswith(action["name"]) and action["description"] in line
        for alias in action["aliases"]:
            assert f"(also: {alias})" in line


def test_inspect_shows_params_and_marks_optional_ones(conductor_cli: Runner) -> None:
    report = json.loads(conductor_cli("plugin", "inspect", "obs", "--json").stdout)
    toggle_source = next(a for a in report["actions"] if a["name"] == "toggle_source")
    assert toggle_source["params"] == [
        {"name": "source_name", "required": True},
        {"name": "scene_name", "required": False},
    ]
    text = conductor_cli("plugin", "inspect", "obs").stdout
    assert "toggle_source(source_name, scene_name?) — Show or hide a source" in text
    utils = json.loads(conductor_cli("plugin", "inspect", "system-utils", "--json").stdout)
    brightness = next(a for a in utils["actions"] if a["name"] == "brightness")
    assert [p["name"] for p in brightness["params"]] == ["percent", "delta"]


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_an_unknown_or_missing_action_returns_3_and_lists_the_actions(
    conductor_cli: Runner, name: str
) -> None:
    for params, problem in (
        ('{"action": "moonwalk"}', 'unknown action "moonwalk"'),
        ("{}", 'missing param "action"'),
    ):
        ran = conductor_cli("plugin", "exec", name, "--params", params, "--json")
        assert ran.returncode == 1
        result = json.loads(ran.stdout)["result"]
        assert result["code"] == 3
        (log,) = result["output"]["logs"]
        assert log["message"].startswith(f"{name}: {problem}; actions: ")
        listed = log["message"].split("; actions: ", 1)[1]
        for action in ACTIONS[name]:
            assert action in listed
        for aliases in ALIASES[name].values():
            assert all(f" or {alias}" in listed for alias in aliases)


def _plugin_with_metadata(path: Path, metadata: dict[str, Any]) -> Path:
    """A minimal module whose `init` returns `metadata` (built here with wasmtime's wat2wasm)."""
    text = json.dumps(metadata).encode()
    data = "".join(f"\\{byte:02x}" for byte in text)
    path.write_bytes(
        wasmtime.wat2wasm(
            f"""(module
  (memory (export "memory") 1)
  (data (i32.const 1024) "{data}")
  (func (export "alloc") (param i32) (result i32) (i32.const 8192))
  (func (export "init") (result i64) (i64.const {(1024 << 32) | len(text)}))
  (func (export "execute") (param i32 i32) (result i32) (i32.const 0)))"""
        )
    )
    return path


def test_a_plugins_actions_cannot_drive_the_terminal(conductor_cli: Runner, tmp_path: Path) -> None:
    plugin = _plugin_with_metadata(
        tmp_path / "liar.wasm",
        {
            "name": "liar",
            "actions": [
                {
                    "name": "go\x1b[2J",
                    "aliases": ["\x07bell"],
                    "params": ["x\x1b]52;c;Zm9v\x07", {"name": "y", "required": False}],
                    "description": "clears\x1b[H your screen\nand adds a line",
                }
            ],
        },
    )
    shown = conductor_cli("plugin", "inspect", plugin)
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    (line,) = [line for line in shown.stdout.splitlines() if "  action  " in line]
    assert "go\\x1b[2J(x\\x1b]52;c;Zm9v\\x07, y?) — clears\\x1b[H your screen\\x0aand" in line
    report = json.loads(conductor_cli("plugin", "inspect", plugin, "--json").stdout)
    assert report["actions"][0]["description"] == "clears\x1b[H your screen\nand adds a line"


def test_malformed_actions_are_a_metadata_error_naming_the_entry(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    plugin = _plugin_with_metadata(
        tmp_path / "bad.wasm", {"name": "bad", "actions": [{"name": "ok"}, {"params": []}]}
    )
    shown = conductor_cli("plugin", "inspect", plugin, "--json")
    assert shown.returncode == 1
    assert (
        "metadata 'actions[1]' must be an object with a string 'name'"
        in (json.loads(shown.stdout)["metadata_error"])
    )


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_ACTION = st.fixed_dictionaries(
    {"name": st.text(max_size=8)},
    optional={
        "params": st.lists(
            st.text(max_size=6)
            | st.fixed_dictionaries({"name": st.text(max_size=6)}, optional={"required": _JSON}),
            max_size=3,
        )
        | _JSON,
        "description": st.text(max_size=20) | _JSON,
        "aliases": st.lists(st.text(max_size=6), max_size=2) | _JSON,
    },
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_ACTION | _JSON, max_size=4) | _JSON)
def test_any_actions_value_gives_actions_or_one_metadata_error(actions: object) -> None:
    data = json.dumps({"name": "p", "actions": actions}).encode()
    try:
        metadata = parse_metadata(data, "p")
    except MetadataError as error:
        assert str(error).startswith("metadata ") and "\n" not in str(error)
        return
    assert all(isinstance(action.usage, str) for action in metadata.actions)
    assert json.loads(json.dumps(metadata.to_json()))["actions"] == [
        action.to_json() for action in metadata.actions
    ]
