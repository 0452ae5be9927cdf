"""The signing core without the CLI: RFC 8032 vectors, formats, strict parsing and attacks."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nacl.signing import SigningKey, VerifyKey

from conductor.errors import KeyFileError, SignatureError
from conductor.signing import (
    Developer,
    SignaturePolicy,
    Status,
    TrustStore,
    check_signature,
    load_signing_key,
    parse_signature,
    sign_plugin,
    verify_plugin,
)
from conductor.signing.keys import is_valid_public_key, parse_public_key

# RFC 8032 §7.1, tests 1-3: (secret seed, public key, message, signature)
RFC8032_VECTORS = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]

# Order of the Ed25519 base point: adding it to S gives a "malleated" signature.
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493
SMALL_ORDER_POINTS = [
    "0100000000000000000000000000000000000000000000000000000000000000",  # identity
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
    "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
]
PLUGIN = b"\0asm\1\0\0\0" + bytes(range(256)) * 4
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
DEV = Developer("Ada Lovelace", "ada@example.org")


@pytest.mark.parametrize(("seed", "public", "message", "signature"), RFC8032_VECTORS)
def test_rfc8032_vectors_through_the_key_loader(
    tmp_path: Path, seed: str, public: str, message: str, signature: str
) -> None:
    (tmp_path / "k.private").write_bytes(bytes.fromhex(seed))
    key = load_signing_key(tmp_path / "k", lambda: pytest.fail("raw keys need no passphrase"))
    assert bytes(key.verify_key).hex() == public
    assert key.sign(bytes.fromhex(message)).signature.hex() == signature
    VerifyKey(bytes.fromhex(public)).verify(bytes.fromhex(message), bytes.fromhex(signature))


def _signed(version: int = 2, key: SigningKey | None = None) -> tuple[SigningKey, dict]:
    key = key or SigningKey.generate()
    signature = sign_plugin(PLUGIN, key, DEV, WHEN, version=version)
    return key, json.loads(signature.to_json())


def _dump(document: object) -> bytes:
    return json.dumps(document).encode()


@pytest.mark.parametrize("version", [1, 2])
def test_round_trip(version: int) -> None:
    key, document = _signed(version)
    parsed = check_signature(PLUGIN, _dump(document))
    assert parsed.public_key == bytes(key.verify_key)
    assert parsed.developer == DEV
    assert document["signed_at"] == "2026-01-02T03:04:05Z"


def test_v1_is_the_reference_format_signing_the_raw_digest() -> None:
    key, document = _signed(1)
    digest = hashlib.sha256(PLUGIN).digest()
    VerifyKey(bytes(key.verify_key)).verify(digest, bytes.fromhex(document["signature"]))
    assert set(document) == {
        "version",
        "algorithm",
        "plugin_hash",
        "plugin_size",
        "public_key",
        "signature",
        "signed_at",
        "developer",
    }


def test_v2_signs_the_domain_separated_canonical_json() -> None:
    key, document = _signed(2)
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    message = (
        b"conductor-plugin-signature-v2\n"
        + json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )
    VerifyKey(bytes(key.verify_key)).verify(message, bytes.fromhex(document["signature"]))


@pytest.mark.parametrize(
    "plugin",
    [
        pytest.param(PLUGIN[:10] + bytes([PLUGIN[10] ^ 1]) + PLUGIN[11:], id="flipped-byte"),
        pytest.param(PLUGIN[:-1], id="truncated"),
        pytest.param(PLUGIN + b"\0", id="appended"),
    ],
)
def test_modified_plugin_fails(plugin: bytes) -> None:
    _, document = _signed()
    with pytest.raises(SignatureError):
        check_signature(plugin, _dump(document))


def test_edited_metadata_fails_in_v2_but_is_flagged_unauthenticated_in_v1(tmp_path: Path) -> None:
    _, v2 = _signed(2)
    v2["developer"]["name"] = "Mallory"
    with pytest.raises(SignatureError, match="metadata"):
        check_signature(PLUGIN, _dump(v2))
    _, v1 = _signed(1)
    v1["developer"]["name"] = "Mallory"
    verdict = verify_plugin(
        PLUGIN, _dump(v1), SignaturePolicy.SELF_SIGNED, TrustStore(tmp_path / "t.toml")
    )
    assert verdict.status is Status.SELF_SIGNED
    assert any("not authenticated" in warning for warning in verdict.warnings)


@pytest.mark.parametrize("version", [1, 2])
def test_signature_presented_with_another_keys_hex_fails(version: int) -> None:
    _, document = _signed(version)
    document["public_key"] = bytes(SigningKey.generate().verify_key).hex()
    with pytest.raises(SignatureError, match="does not verify"):
        check_signature(PLUGIN, _dump(document))


@pytest.mark.parametrize("version", [1, 2])
def test_malleated_signature_with_s_plus_l_fails(version: int) -> None:
    _, document = _signed(version)
    raw = bytes.fromhex(document["signature"])
    s_value = int.from_bytes(raw[32:], "little") + GROUP_ORDER
    document["signature"] = (raw[:32] + s_value.to_bytes(32, "little")).hex()
    with pytest.raises(SignatureError):
        check_signature(PLUGIN, _dump(document))


@pytest.mark.parametrize("point", SMALL_ORDER_POINTS)
def test_small_order_public_keys_are_refused(point: str) -> None:
    assert not is_valid_public_key(bytes.fromhex(point))
    with pytest.raises(KeyFileError):
        parse_public_key(point, "test")
    # The classic forgery: R = identity, S = 0 "verifies" any message under a small-order key.
    _, document = _signed(1)
    document["public_key"] = point
    document["signature"] = SMALL_ORDER_POINTS[0] + "00" * 32
    with pytest.raises(SignatureError):
        check_signature(PLUGIN, _dump(document))


def _mutations() -> list:
    _, base = _signed()

    def edit(**changes: object) -> bytes:
        document = {**base, **changes}
        return _dump({k: v for k, v in document.items() if v is not ...})

    upper = base["plugin_hash"].upper()
    return [
        pytest.param(b"[1, 2]", "JSON object", id="array"),
        pytest.param(b'"text"', "JSON object", id="string"),
        pytest.param(b"{not json", "not JSON", id="garbage"),
        pytest.param(b"\xff\xfe", "UTF-8", id="not-utf8"),
        pytest.param(_dump(base)[:-1] + b', "version": 2}', "duplicate", id="duplicate-key"),
        pytest.param(edit(version=3), "version 3", id="unknown-version"),
        pytest.param(edit(version=True), "integer", id="version-true"),
        pytest.param(edit(version=2.0), "integer", id="version-float"),
        pytest.param(edit(version="2"), "integer", id="version-string"),
        pytest.param(edit(plugin_size=float(len(PLUGIN))), "integer", id="size-float"),
        pytest.param(edit(plugin_size=str(len(PLUGIN))), "integer", id="size-string"),
        pytest.param(edit(plugin_size=True), "integer", id="size-bool"),
        pytest.param(
            _dump(base).replace(
                b'"plugin_size": ' + str(len(PLUGIN)).encode(), b'"plugin_size": NaN'
            ),
            "not a JSON number",
            id="nan",
        ),
        pytest.param(
            _dump(base).replace(
                b'"plugin_size": ' + str(len(PLUGIN)).encode(), b'"plugin_size": Infinity'
            ),
            "not a JSON number",
            id="infinity",
        ),
        pytest.param(edit(algorithm="RSA"), "algorithm", id="unknown-algorithm"),
        pytest.param(edit(plugin_hash=upper), "lowercase hex", id="uppercase-hex"),
        pytest.param(
            edit(plugin_hash=" " + base["plugin_hash"][1:]), "lowercase hex", id="hex-space"
        ),
        pytest.param(edit(plugin_hash=base["plugin_hash"] + "00"), "lowercase hex", id="hex-long"),
        pytest.param(edit(signature=base["signature"][:-2]), "lowercase hex", id="sig-short"),
        pytest.param(edit(public_key="zz" * 32), "lowercase hex", id="non-hex"),
        pytest.param(edit(signed_at=...), "missing field signed_at", id="missing-field"),
        pytest.param(edit(extra="x"), "unexpected field extra", id="extra-field"),
        pytest.param(edit(developer={"name": "x"}), "developer.email", id="developer-missing"),
        pytest.param(
            edit(developer={"name": "x", "email": "y", "url": "z"}),
            "developer.url",
            id="developer-extra",
        ),
        pytest.param(edit(developer="x"), "developer", id="developer-not-object"),
        pytest.param(edit(signed_at="yesterday"), "RFC 3339", id="bad-time"),
        pytest.param(b"[" * 60000 + b"]" * 60000, "", id="deep-nesting-oversized"),
        pytest.param(b"[" * 30000 + b"]" * 30000, "nested too deeply", id="deep-nesting"),
        pytest.param(
            _dump({**base, "developer": {"name": "x" * 70000, "email": ""}}),
            "limit",
            id="oversized",
        ),
    ]


@pytest.mark.parametrize(("data", "reason"), _mutations())
def test_malformed_signature_files_fail_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(SignatureError) as caught:
        parse_signature(data) if reason != "" else check_signature(PLUGIN, data)
    assert reason in caught.value.diagnostics()


def test_policies(tmp_path: Path) -> None:
    store_path = tmp_path / "trust.toml"
    store = TrustStore(store_path)
    key, document = _signed()
    sig = _dump(document)
    assert verify_plugin(PLUGIN, sig, SignaturePolicy.TRUSTED, store).status is Status.UNTRUSTED
    assert verify_plugin(PLUGIN, sig, SignaturePolicy.TRUSTED, store).exit_code == 3
    assert verify_plugin(PLUGIN, sig, SignaturePolicy.SELF_SIGNED, store).accepted
    assert verify_plugin(PLUGIN, None, SignaturePolicy.SELF_SIGNED, store).status is Status.MISSING
    assert verify_plugin(PLUGIN, None, SignaturePolicy.UNSIGNED, store).accepted
    bad = verify_plugin(PLUGIN + b"x", sig, SignaturePolicy.UNSIGNED, store)
    assert bad.status is Status.INVALID and bad.exit_code == 1
    store.add(bytes(key.verify_key).hex(), "Ada")
    trusted = verify_plugin(PLUGIN, sig, SignaturePolicy.TRUSTED, store)
    assert trusted.status is Status.TRUSTED and trusted.trusted_as.name == "Ada"
