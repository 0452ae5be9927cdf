"""Signature policies as objects, the trust roots they are composed with, and the one entry
point from a plugin file to a verdict (`verify_file`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from conductor.engine.config import parse_config
from conductor.engine.plugins import load_config_plugins
from conductor.errors import FileError, PolicyError, SignatureError
from conductor.plugins.runtime import PluginHost
from conductor.signing import (
    BUNDLED_KEY,
    UNSIGNED_KEY,
    AcceptAnyValidKey,
    AcceptUnsigned,
    Developer,
    DigestManifest,
    Evidence,
    RequireTrustedKey,
    SignaturePolicy,
    Status,
    TrustedKey,
    TrustRoots,
    TrustStore,
    sign_plugin,
    verify_file,
)
from tests.plugin_helpers import signed_copy

PLUGIN = b"\0asm\x01\0\0\0 some plugin"
KEY = SigningKey(bytes(range(32)))
SIGNATURE = sign_plugin(PLUGIN, KEY, Developer("Ada", "ada@example.org"), dt.datetime.now(dt.UTC))
STORE = Path("/nowhere/trusted_keys.toml")
TRUSTED_AS = TrustedKey(SIGNATURE.public_key, "Ada", "", "")


def _evidence(signed: bool, trusted: bool) -> Evidence:
    return Evidence(
        SIGNATURE if signed else None, TRUSTED_AS if trusted else None, STORE, Path("p.wasm.sig")
    )


@pytest.mark.parametrize(
    ("policy", "unsigned", "untrusted", "trusted"),
    [
        (RequireTrustedKey(), Status.MISSING, Status.UNTRUSTED, Status.TRUSTED),
        (AcceptAnyValidKey(), Status.MISSING, Status.SELF_SIGNED, Status.TRUSTED),
        (AcceptUnsigned(), Status.UNSIGNED, Status.SELF_SIGNED, Status.TRUSTED),
    ],
)
def test_each_policy_decides_on_the_evidence(
    policy: RequireTrustedKey, unsigned: Status, untrusted: Status, trusted: Status
) -> None:
    assert policy.decide(_evidence(signed=False, trusted=False)).status is unsigned
    assert policy.decide(_evidence(signed=True, trusted=False)).status is untrusted
    verdict = policy.decide(_evidence(signed=True, trusted=True))
    assert verdict.status is trusted and verdict.trusted_as == TRUSTED_AS


def test_the_config_spelling_maps_to_one_policy_object_each() -> None:
    assert isinstance(SignaturePolicy.TRUSTED.rule, RequireTrustedKey)
    assert isinstance(SignaturePolicy.SELF_SIGNED.rule, AcceptAnyValidKey)
    assert isinstance(SignaturePolicy.UNSIGNED.rule, AcceptUnsigned)
    assert SignaturePolicy.parse("self-signed") is SignaturePolicy.SELF_SIGNED
    with pytest.raises(PolicyError) as caught:
        SignaturePolicy.parse("sometimes", "--policy")
    assert caught.value.value == "sometimes" and caught.value.where == "--policy"


def test_refusals_say_why_and_which_error_they_are() -> None:
    missing = RequireTrustedKey().decide(_evidence(signed=False, trusted=False))
    assert missing.reason == "no signature file p.wasm.sig"
    untrusted = RequireTrustedKey().decide(_evidence(signed=True, trusted=False))
    assert SIGNATURE.public_key.hex() in untrusted.reason and str(STORE) in untrusted.reason
    assert untrusted.exit_code == 3
    with pytest.raises(SignatureError, match="no signature file"):
        missing.raise_unless_accepted("p.wasm")
    unsigned = AcceptUnsigned().decide(_evidence(signed=False, trusted=False))
    assert unsigned.accepted and unsigned.warnings  # accepted, loudly


def test_the_signer_key_grants_are_keyed_by() -> None:
    assert (
        RequireTrustedKey().decide(_evidence(True, True)).signer_key
        == KEY.verify_key.encode().hex()
    )
    assert AcceptUnsigned().decide(_evidence(False, False)).signer_key == UNSIGNED_KEY


def test_a_verdict_in_words() -> None:
    verdict = RequireTrustedKey().decide(_evidence(True, True))
    assert verdict.summary() == (
        f"trusted: signed by Ada <ada@example.org>, key {SIGNATURE.public_key.hex()[:16]}…, v2, "
        "trusted as Ada"
    )
    assert [label for label, _ in verdict.details()] == ["signer", "key", "signed", "format"]
    assert verdict.details()[0] == ("signer", "Ada <ada@example.org> (trusted as Ada)")
    refused = RequireTrustedKey().decide(_evidence(True, False))
    assert [label for label, _ in refused.details()][-1] == "reason"


class TestVerifyFile:
    @pytest.fixture
    def store(self, tmp_path: Path) -> TrustStore:
        return TrustStore(tmp_path / "trust.toml")

    def test_a_manifest_vouches_for_its_files_without_a_signature(
        self, tmp_path: Path, store: TrustStore
    ) -> None:
        shipped = tmp_path / "shipped"
        shipped.mkdir()
        plugin = shipped / "official.wasm"
        plugin.write_bytes(PLUGIN)
        os.mkfifo(f"{plugin}.sig")  # never opened: the manifest decides
        manifest = DigestManifest(shipped, {"official.wasm": hashlib.sha256(PLUGIN).hexdigest()})
        roots = TrustRoots(store, manifest)
        checked = verify_file(plugin, SignaturePolicy.TRUSTED, roots)
        assert checked.verdict.status is Status.TRUSTED and checked.verdict.bundled
        assert checked.verdict.signer_key == BUNDLED_KEY
        assert (checked.data, checked.signature) == (PLUGIN, None)
        plugin.write_bytes(PLUGIN + b"changed")
        tampered = verify_file(plugin, SignaturePolicy.UNSIGNED, roots).verdict
        assert tampered.status is Status.INVALID and "digest manifest" in tampered.reason

    def test_a_file_of_the_same_name_elsewhere_needs_its_signature(
        self, tmp_path: Path, store: TrustStore
    ) -> None:
        manifest = DigestManifest(tmp_path / "shipped", {"official.wasm": "00" * 32})
        elsewhere = tmp_path / "official.wasm"
        elsewhere.write_bytes(PLUGIN)
        verdict = verify_file(elsewhere, SignaturePolicy.TRUSTED, TrustRoots(store, manifest))
        assert verdict.verdict.status is Status.MISSING
        assert verdict.verdict.reason == f"no signature file {elsewhere}.sig"

    def test_the_signature_beside_it_or_named(self, tmp_path: Path, store: TrustStore) -> None:
        plugin = tmp_path / "p.wasm"
        plugin.write_bytes(PLUGIN)
        elsewhere = tmp_path / "signatures" / "p.sig"
        elsewhere.parent.mkdir()
        elsewhere.write_text(SIGNATURE.to_json())
        roots = TrustRoots(store)
        assert verify_file(plugin, SignaturePolicy.SELF_SIGNED, roots).verdict.status is (
            Status.MISSING
        )
        named = verify_file(plugin, SignaturePolicy.SELF_SIGNED, roots, signature_path=elsewhere)
        assert named.verdict.status is Status.SELF_SIGNED
        assert named.signature == elsewhere.read_bytes() and named.data == PLUGIN

    def test_the_minimum_format_version(self, tmp_path: Path, store: TrustStore) -> None:
        plugin = signed_copy("good", tmp_path, KEY, version=1)
        roots = TrustRoots(store)
        v1 = verify_file(plugin, SignaturePolicy.SELF_SIGNED, roots).verdict
        assert v1.status is Status.SELF_SIGNED and any("v1" in note for note in v1.warnings)
        refused = verify_file(plugin, SignaturePolicy.SELF_SIGNED, roots, min_version=2).verdict
        assert refused.status is Status.REFUSED and not refused.accepted

    def test_unreadable_files_raise(self, tmp_path: Path, store: TrustStore) -> None:
        plugin = tmp_path / "p.wasm"
        plugin.write_bytes(PLUGIN)
        Path(f"{plugin}.sig").mkdir()
        with pytest.raises(FileError):
            verify_file(plugin, SignaturePolicy.TRUSTED, TrustRoots(store))
        with pytest.raises(FileError):
            verify_file(tmp_path / "absent.wasm", SignaturePolicy.TRUSTED, TrustRoots(store))


def test_a_reload_applies_a_raised_minimum_format_to_running_plugins(tmp_path: Path) -> None:
    """A plugin signed in format v1 runs under min_signature_version 1; once the config asks
    for 2, a reload may not keep it warm: its terms no longer hold."""
    signed_copy("good", tmp_path, KEY, version=1)
    config_text = """
[plugins]
signature_policy = "self-signed"
min_signature_version = {version}
[[modes]]
name = "Default"
[[modes.mappings]]
trigger = {{ Note = {{ note = 36 }} }}
action = {{ WasmPlugin = {{ path = "good.wasm" }} }}
"""
    with PluginHost(tmp_path / "cache") as host:
        first = parse_config(config_text.format(version=1), tmp_path / "config.toml")
        (running,) = load_config_plugins(host, first, tmp_path / "trust.toml", None)
        assert running.loaded is not None and running.error is None
        stricter = parse_config(config_text.format(version=2), tmp_path / "config.toml")
        (again,) = load_config_plugins(
            host, stricter, tmp_path / "trust.toml", None, keep={running.key: running.loaded}
        )
        assert again.loaded is None and isinstance(again.error, SignatureError)
        assert "below the required minimum v2" in again.error.diagnostics()
