"""Property tests of the signature file: any input gives a verdict or one clear line, and no
mutation of a valid signature file or of the plugin is ever accepted as a forgery."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from conductor.errors import SignatureError
from conductor.signing import (
    Developer,
    PluginSignature,
    SignaturePolicy,
    TrustStore,
    parse_signature,
    sign_plugin,
    verify_plugin,
)
from tests.hostile._helpers import one_line

PLUGIN = b"\0asm\1\0\0\0" + bytes(range(256)) * 4
KEY = SigningKey(bytes(range(32)))
SIGNED_AT = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
ORIGINALS = {
    version: sign_plugin(PLUGIN, KEY, Developer("Ada", "ada@example.org"), SIGNED_AT, version)
    for version in (1, 2)
}
FIELDS = sorted(json.loads(ORIGINALS[2].to_json()))

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=80)
    | st.sampled_from(
        [ORIGINALS[2].public_key.hex(), ORIGINALS[2].signature.hex(), "Ed25519", "2", 2, 1]
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> TrustStore:
    path = tmp_path_factory.mktemp("trust") / "trust.toml"
    trust = TrustStore(path)
    trust.add(bytes(KEY.verify_key).hex(), "Ada")
    return trust


def _signed_content(signature: PluginSignature) -> tuple[Any, ...]:
    """What the signature vouches for: everything in v2, only the digest in v1."""
    if signature.version == 1:
        digest = (signature.plugin_hash, signature.plugin_size, signature.public_key)
        return (1, *digest, signature.signature)
    return (2, signature.unsigned_document(), signature.signature)


def _assert_no_forgery(store: TrustStore, plugin: bytes, signature_file: bytes) -> None:
    for policy in (SignaturePolicy.TRUSTED, SignaturePolicy.SELF_SIGNED):
        verdict = verify_plugin(plugin, signature_file, policy, store)
        assert one_line(verdict.reason) or verdict.accepted
        if verdict.accepted:
            assert plugin == PLUGIN
            parsed = parse_signature(signature_file)
            assert _signed_content(parsed) == _signed_content(ORIGINALS[parsed.version])


@given(data=st.binary(max_size=4096))
def test_any_bytes_parse_or_fail_with_one_line(data: bytes) -> None:
    try:
        parse_signature(data)
    except SignatureError as error:
        assert one_line(error.diagnostics())


@given(document=json_values)
def test_any_json_parses_or_fails_with_one_line(document: Any) -> None:
    try:
        parse_signature(json.dumps(document).encode())
    except SignatureError as error:
        assert one_line(error.diagnostics())


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    version=st.sampled_from([1, 2]),
    field=st.sampled_from(FIELDS),
    value=json_values,
    flip_plugin=st.none() | st.integers(0, len(PLUGIN) - 1),
)
def test_no_field_replacement_is_an_accepted_forgery(
    store: TrustStore, version: int, field: str, value: Any, flip_plugin: int | None
) -> None:
    document = json.loads(ORIGINALS[version].to_json())
    document[field] = value
    plugin = PLUGIN
    if flip_plugin is not None:
        plugin = PLUGIN[:flip_plugin] + bytes([PLUGIN[flip_plugin] ^ 1]) + PLUGIN[flip_plugin + 1 :]
    _assert_no_forgery(store, plugin, json.dumps(document).encode())


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    version=st.sampled_from([1, 2]),
    edits=st.lists(
        st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.sampled_from("xid")),
        min_size=1,
        max_size=4,
    ),
)
def test_no_byte_edit_of_a_signature_file_is_an_accepted_forgery(
    store: TrustStore, version: int, edits: list[tuple[int, int, str]]
) -> None:
    data = bytearray(ORIGINALS[version].to_json().encode())
    for position, byte, kind in edits:
        at = position % (len(data) + 1)
        if kind == "x" and at < len(data):
            data[at] ^= byte or 1
        elif kind == "i":
            data.insert(at, byte)
        elif at < len(data):
            del data[at]
    _assert_no_forgery(store, PLUGIN, bytes(data))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    plugin=st.binary(max_size=2048),
    version=st.sampled_from([1, 2]),
)
def test_no_other_plugin_passes_with_a_valid_signature(
    store: TrustStore, plugin: bytes, version: int
) -> None:
    verdict = verify_plugin(
        plugin, ORIGINALS[version].to_json().encode(), SignaturePolicy.TRUSTED, store
    )
    assert verdict.accepted == (plugin == PLUGIN)


def test_the_original_signatures_verify(store: TrustStore) -> None:
    """The properties above are only meaningful if the unmutated files are accepted."""
    for original in ORIGINALS.values():
        verdict = verify_plugin(PLUGIN, original.to_json().encode(), SignaturePolicy.TRUSTED, store)
        assert verdict.accepted, verdict.reason
