"""The WASI sandbox (files, symlinks, environment) and the three signature-policy tiers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from conductor.errors import SignatureError, UntrustedKeyError
from conductor.plugins.abi import EventContext, RequestTemplate
from conductor.plugins.capabilities import Capability
from conductor.plugins.grants import GrantStore
from conductor.plugins.loader import Approval, LoadOptions, load_plugin
from conductor.plugins.runtime import PluginHost
from conductor.plugins.sandbox import plugin_data_dir
from conductor.signing import SignaturePolicy, TrustStore
from tests.plugin_helpers import load_unsigned, signed_copy

ENOENT, ENOTCAPABLE, EPERM = 44, 76, 63  # WASI errno values as wasi-libc reports them


def request(**params: str) -> bytes:
    return RequestTemplate(params).render(EventContext())


def test_without_filesystem_grant_nothing_is_preopened(host: PluginHost, tmp_path: Path) -> None:
    loaded = load_unsigned(host, "fs_probe", tmp_path)
    assert loaded.plugin.granted == frozenset()
    result = loaded.plugin.execute(request(op="write", path="/note.txt", text="hi"))
    assert result.code is not None and result.code >= 100
    assert not plugin_data_dir("fs_probe").exists()


def test_filesystem_grant_gives_the_plugin_its_own_directory(
    host: PluginHost, tmp_path: Path
) -> None:
    loaded = load_unsigned(host, "fs_probe", tmp_path, approvals=frozenset({Capability.FILESYSTEM}))
    assert loaded.plugin.granted == {Capability.FILESYSTEM}
    assert (
        loaded.plugin.execute(request(op="write", path="/note.txt", text="hello sandbox")).code == 0
    )
    data_dir = plugin_data_dir("fs_probe")
    assert (data_dir / "note.txt").read_text() == "hello sandbox"
    read = loaded.plugin.execute(request(op="read", path="note.txt"))
    assert read.code == 0 and read.output.logs == ((1, "hello sandbox"),)


@pytest.mark.parametrize(
    "path",
    ["../escape.txt", "/../escape.txt", "/../../../../tmp/escape.txt", "sub/../../escape.txt"],
)
def test_dot_dot_cannot_leave_the_sandbox(host: PluginHost, tmp_path: Path, path: str) -> None:
    loaded = load_unsigned(host, "fs_probe", tmp_path, approvals=frozenset({Capability.FILESYSTEM}))
    (plugin_data_dir("fs_probe") / "sub").mkdir(parents=True, exist_ok=True)
    result = loaded.plugin.execute(request(op="write", path=path, text="x"))
    assert result.code is not None and result.code >= 100
    assert not (plugin_data_dir("fs_probe").parent / "escape.txt").exists()
    assert not Path("/tmp/escape.txt").exists()
    assert loaded.plugin.execute(request(op="write", path="/ok.txt", text="fine")).code == 0


def test_absolute_host_paths_are_inside_the_sandbox(host: PluginHost, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    loaded = load_unsigned(host, "fs_probe", tmp_path, approvals=frozenset({Capability.FILESYSTEM}))
    result = loaded.plugin.execute(request(op="read", path=str(secret)))
    assert result.code == 100 + ENOENT
    assert "host secret" not in json.dumps(result.to_json())


def test_symlinks_cannot_reach_outside(host: PluginHost, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("host secret")
    loaded = load_unsigned(host, "fs_probe", tmp_path, approvals=frozenset({Capability.FILESYSTEM}))
    data_dir = plugin_data_dir("fs_probe")
    os.symlink(outside, data_dir / "planted")  # a link someone else put in the data dir
    planted = loaded.plugin.execute(request(op="read", path="/planted/secret.txt"))
    assert planted.code is not None and planted.code >= 100
    made = loaded.plugin.execute(request(op="symlink", target=str(outside), path="/mine"))
    followed = loaded.plugin.execute(request(op="read", path="/mine/secret.txt"))
    assert made.code != 0 or (followed.code is not None and followed.code >= 100)
    relative = loaded.plugin.execute(request(op="symlink", target="../../..", path="/up"))
    through = loaded.plugin.execute(request(op="read", path=f"/up{outside}/secret.txt"))
    assert relative.code != 0 or (through.code is not None and through.code >= 100)
    for result in (planted, followed, through):
        assert "host secret" not in json.dumps(result.to_json())


def test_plugins_see_no_environment_arguments_or_stdin(
    host: PluginHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONDUCTOR_TEST_SECRET", "do-not-leak")
    loaded = load_unsigned(host, "env_snoop", tmp_path)
    result = loaded.plugin.execute(request())
    assert result.code == 0
    assert "do-not-leak" not in json.dumps(result.to_json())


def test_approval_without_a_request_grants_nothing(host: PluginHost, tmp_path: Path) -> None:
    loaded = load_unsigned(
        host, "env_snoop", tmp_path, approvals=frozenset({Capability.FILESYSTEM})
    )
    assert loaded.plugin.granted == frozenset()


def test_grants_file_approvals_are_keyed_by_plugin_and_key(
    host: PluginHost, tmp_path: Path
) -> None:
    key = SigningKey.generate()
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    path = signed_copy("fs_probe", plugins, key)
    grants = GrantStore(tmp_path / "grants.toml")
    grants.update("fs_probe", bytes(key.verify_key).hex(), add=frozenset({Capability.FILESYSTEM}))
    options = LoadOptions(
        SignaturePolicy.SELF_SIGNED, TrustStore(tmp_path / "t.toml"), grants=grants
    )
    assert load_plugin(host, path, options).plugin.granted == {Capability.FILESYSTEM}
    other = signed_copy("fs_probe", plugins, SigningKey.generate())  # same name, another key
    assert load_plugin(host, other, options).plugin.granted == frozenset()


def test_interactive_prompt_answers_are_remembered(host: PluginHost, tmp_path: Path) -> None:
    grants = GrantStore(tmp_path / "grants.toml")
    asked: list[tuple[str, str, str]] = []

    def prompt(name: str, approval: Approval) -> bool:
        asked.append((name, approval.kind, approval.value))
        return True

    loaded = load_unsigned(host, "fs_probe", tmp_path, grants=grants, prompt=prompt)
    assert asked == [("fs_probe", "capability", "Filesystem")]
    assert loaded.plugin.granted == {Capability.FILESYSTEM}
    again = load_unsigned(host, "fs_probe", tmp_path, grants=grants, prompt=prompt)
    assert again.plugin.granted == {Capability.FILESYSTEM} and len(asked) == 1


class TestPolicies:
    @pytest.fixture
    def setup(self, tmp_path: Path) -> tuple[SigningKey, Path, TrustStore]:
        key = SigningKey.generate()
        directory = tmp_path / "signed"
        directory.mkdir()
        path = signed_copy("good", directory, key)
        return key, path, TrustStore(tmp_path / "trust.toml")

    def test_trusted_key_loads_under_the_default_policy(self, host: PluginHost, setup) -> None:
        key, path, store = setup
        store.add(bytes(key.verify_key).hex(), "Tester")
        loaded = load_plugin(host, path, LoadOptions(SignaturePolicy.TRUSTED, store))
        assert loaded.verdict.trusted_as is not None and loaded.plugin.execute(request()).ok

    def test_untrusted_key_is_refused_with_exit_3(self, host: PluginHost, setup) -> None:
        _, path, store = setup
        with pytest.raises(UntrustedKeyError) as caught:
            load_plugin(host, path, LoadOptions(SignaturePolicy.TRUSTED, store))
        assert caught.value.exit_code == 3

    def test_self_signed_policy_accepts_any_valid_key(self, host: PluginHost, setup) -> None:
        _, path, store = setup
        loaded = load_plugin(host, path, LoadOptions(SignaturePolicy.SELF_SIGNED, store))
        assert loaded.verdict.status.value == "self-signed"

    def test_unsigned_needs_the_unsigned_policy(self, host: PluginHost, setup) -> None:
        _, path, store = setup
        Path(f"{path}.sig").unlink()
        for policy in (SignaturePolicy.TRUSTED, SignaturePolicy.SELF_SIGNED):
            with pytest.raises(SignatureError, match="no signature"):
                load_plugin(host, path, LoadOptions(policy, store))
        assert (
            load_plugin(host, path, LoadOptions(SignaturePolicy.UNSIGNED, store))
            .plugin.execute(request())
            .ok
        )

    def test_invalid_signature_fails_even_under_unsigned(self, host: PluginHost, setup) -> None:
        _, path, store = setup
        with path.open("ab") as handle:
            handle.write(b"\0")
        with pytest.raises(SignatureError, match="signature is for"):
            load_plugin(host, path, LoadOptions(SignaturePolicy.UNSIGNED, store))
