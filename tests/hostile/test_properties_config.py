"""Property tests of the config file and of `--event` specs: any TOML, any bytes, any spec gives a
result or one clear line, never a traceback or a hang."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomlkit
from hypothesis import assume, given
from hypothesis import strategies as st

from conductor.engine import actions, triggers
from conductor.engine.config import Config, ConfigError, load_config, parse_config
from conductor.errors import EventSpecError
from conductor.plugins.abi import EventContext
from tests.conftest import REPO
from tests.hostile._helpers import one_line

CONFIG_PATH = Path("/nonexistent/config.toml")
KEYS = [
    *("device", "name", "auto_connect", "auto_reconnect", "plugins", "dir", "signature_policy"),
    *("min_signature_version", "trust_store", "limits", "max_fuel", "timeout_ms", "grants"),
    *("config", "hosts", "commands", "advanced_settings", "chord_timeout_ms", "modes", "color"),
    *("mappings", "global_mappings", "trigger", "action", "description", "type", "note"),
    *("velocity_min", "channel", "cc", "value_min", "notes", "path", "params", "context"),
    *("actions", "ms", "mode", "port", "message_type", "direction", "value_max", "level"),
    *("devices", "program", "button", "buttons", "axis", "threshold"),
    *(triggers.TRIGGER_KINDS + actions.ACTION_KINDS),
]
WORDS = [
    *("Default", "trusted", "self-signed", "unsigned", "Filesystem", "Network", "note_on"),
    *("clockwise", "soft", "http://127.0.0.1:9", "https://*.x.test", "${HOME}", "$${X}"),
    *("${CONDUCTOR_UNSET_VARIABLE}", "good", "../x.wasm", "~"),
]
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
leaves = (
    st.integers(-10, 200)
    | st.integers()
    | st.booleans()
    | st.floats()
    | st.sampled_from(WORDS)
    | text
)
keys = st.sampled_from(KEYS) | text
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)
tagged = st.dictionaries(
    st.sampled_from(KEYS), st.dictionaries(keys, values, max_size=4), max_size=2
)
mapping = st.fixed_dictionaries(
    {"trigger": tagged | values, "action": tagged | values},
    optional={"description": text, "extra": values},
)
mode = st.fixed_dictionaries(
    {"name": st.sampled_from(WORDS) | text},
    optional={"mappings": st.lists(mapping, max_size=3), "color": values},
)
configs = st.fixed_dictionaries(
    {},
    optional={
        "modes": st.lists(mode, max_size=3),
        "global_mappings": st.lists(mapping, max_size=2),
        "plugins": st.dictionaries(keys, values, max_size=5),
        "device": values,
        "devices": st.lists(st.dictionaries(keys, values, max_size=3), max_size=3) | values,
        "advanced_settings": st.dictionaries(keys, values, max_size=3),
        "unknown": values,
    },
)


def _parse_or_one_line(source: str) -> Config | None:
    try:
        return parse_config(source, CONFIG_PATH)
    except ConfigError as error:
        assert one_line(error.diagnostics()), error.diagnostics()
        assert str(CONFIG_PATH) in error.diagnostics()
        return None


@given(document=configs)
def test_any_config_shaped_document_loads_or_fails_with_one_line(document: dict[str, Any]) -> None:
    try:
        source = tomlkit.dumps(document)
    except Exception:  # not every generated value has a TOML spelling
        assume(False)
    _parse_or_one_line(source)


@given(source=st.text(max_size=400))
def test_any_text_loads_or_fails_with_one_line(source: str) -> None:
    _parse_or_one_line(source)


@pytest.mark.parametrize("example", sorted((REPO / "examples").glob("*.toml")), ids=str)
@given(cuts=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 40)), max_size=4))
def test_damaged_example_configs_load_or_fail_with_one_line(
    example: Path, cuts: list[tuple[int, int]]
) -> None:
    source = example.read_text()
    for position, length in cuts:
        at = position % (len(source) + 1)
        source = source[:at] + source[at + length :]
    _parse_or_one_line(source)


@given(data=st.binary(max_size=600))
def test_any_bytes_on_disk_load_or_fail_with_one_line(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("config") / "config.toml"
    path.write_bytes(data)
    try:
        load_config(path)
    except ConfigError as error:
        assert one_line(error.diagnostics())


event_specs = st.text(max_size=30) | st.from_regex(
    r"(note|cc|NOTE|Cc|pc|)(:[-+]?[0-9_]{0,5}){0,5}", fullmatch=True
)


@given(spec=event_specs)
def test_any_event_spec_gives_a_context_or_one_line(spec: str) -> None:
    try:
        context = EventContext.from_spec(spec, 0, "test")
    except EventSpecError as error:
        assert one_line(error.diagnostics())
        return
    first = context.note if context.trigger == "Note" else context.cc
    second = context.velocity if context.trigger == "Note" else context.value
    assert context.trigger in ("Note", "CC")
    assert first is not None and 0 <= first <= 127
    assert second is not None and 0 <= second <= 127
    assert context.channel is not None and 0 <= context.channel <= 15
