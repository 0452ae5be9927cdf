"""Property tests of the trust store and the grants file: whatever the file holds, reading gives
the entries or one clear line, and a change either lands keeping every other entry or leaves the
file exactly as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import SigningKey

from conductor.errors import ConductorError
from conductor.plugins.capabilities import Capability
from conductor.plugins.grants import Grant, GrantStore
from conductor.signing import TrustStore
from tests.hostile._helpers import one_line

NEW_KEY = bytes(SigningKey(bytes([7] * 32)).verify_key).hex()
OLD_KEY = bytes(SigningKey(bytes([9] * 32)).verify_key).hex()

# Near-valid TOML: real store lines, shuffled, cut and mixed with noise, so the interesting paths
# (entries with wrong types, duplicated tables, deep nesting) are reached, not only parse errors.
TRUST_LINES = [
    "[[keys]]",
    f'public_key = "{OLD_KEY}"',
    f'public_key = "{OLD_KEY.upper()}"',
    'public_key = "zz"',
    "public_key = 5",
    'name = "Old"',
    "name = [1]",
    'email = "o@x.test"',
    "added_at = 2024-01-01T00:00:00Z",
    "keys = 3",
    "keys = [1, 2]",
    "[keys]",
    "[[keys.sub]]",
    "keys = " + "[" * 200 + "]" * 200,
]
GRANT_LINES = [
    "[[grants]]",
    'plugin = "p"',
    "plugin = 1",
    'key = "unsigned"',
    'capabilities = ["Filesystem"]',
    'capabilities = ["Nope"]',
    "capabilities = {}",
    'hosts = ["http://x.test"]',
    "hosts = 1",
    'commands = { echo = "/bin/echo" }',
    "commands = [1]",
    "grants = {}",
    "[grants]",
    "grants = " + "{a = " * 150 + "1" + "}" * 150,
]


def _documents(lines: list[str]) -> st.SearchStrategy[bytes]:
    text = st.lists(st.sampled_from(lines) | st.text(max_size=30), max_size=12).map("\n".join)
    return text.map(str.encode) | st.binary(max_size=512)


def _write(factory: pytest.TempPathFactory, name: str, data: bytes) -> Path:
    path = factory.mktemp("store") / name
    path.write_bytes(data)
    return path


@given(data=_documents(TRUST_LINES))
def test_trust_store_reads_or_fails_with_one_line_and_add_keeps_or_leaves(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    store = TrustStore(_write(tmp_path_factory, "trusted_keys.toml", data))
    try:
        before = store.keys()
    except ConductorError as error:
        assert one_line(error.diagnostics())
        before = None
    try:
        store.add(NEW_KEY, "New")
    except ConductorError as error:
        assert one_line(error.diagnostics())
        assert store.path.read_bytes() == data  # refused: left exactly as it was
        return
    assert before is not None  # a store that did not read cannot have been changed
    after = store.keys()
    assert [entry.hex for entry in after] == [entry.hex for entry in before] + [NEW_KEY]


@given(data=_documents(GRANT_LINES))
def test_grants_file_reads_or_fails_with_one_line_and_update_keeps_or_leaves(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    grants = GrantStore(_write(tmp_path_factory, "grants.toml", data))
    try:
        before = grants.all()
    except ConductorError as error:
        assert one_line(error.diagnostics())
        before = None
    try:
        grants.update("new", "unsigned", add=frozenset({Capability.FILESYSTEM}))
    except ConductorError as error:
        assert one_line(error.diagnostics())
        assert grants.path.read_bytes() == data
        return
    assert before is not None
    after = grants.all()

    def others(entries: list[Grant]) -> list[Grant]:
        return [grant for grant in entries if (grant.plugin, grant.key) != ("new", "unsigned")]

    assert others(after) == others(before)
    assert Capability.FILESYSTEM in grants.approved("new", "unsigned")
