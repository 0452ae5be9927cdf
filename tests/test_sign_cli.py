"""`conductor-sign` end to end through real processes and Typer's runner, with keys made here."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from typer.testing import CliRunner

from conductor_sign.cli import app
from tests.conftest import Runner

PLUGIN_BYTES = b"\0asm\1\0\0\0" + os.urandom(2000)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.wasm").write_bytes(PLUGIN_BYTES)
    (work / "b.wasm").write_bytes(PLUGIN_BYTES[::-1])
    return work


def _keygen(sign_cli: Runner, prefix: Path) -> str:
    result = sign_cli("generate-key", prefix)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_full_cycle_as_a_newcomer_would(sign_cli: Runner, workdir: Path) -> None:
    public = _keygen(sign_cli, workdir / "key")
    assert (workdir / "key.public").read_text() == public + "\n"
    assert len((workdir / "key.private").read_bytes()) == 32
    assert stat.S_IMODE((workdir / "key.private").stat().st_mode) == 0o600

    signed = sign_cli(
        "sign",
        workdir / "a.wasm",
        workdir / "b.wasm",
        workdir / "key",
        "--name",
        "Ada",
        "--email",
        "ada@example.org",
    )
    assert signed.returncode == 0, signed.stderr
    assert (workdir / "a.wasm.sig").exists() and (workdir / "b.wasm.sig").exists()

    untrusted = sign_cli("verify", workdir / "a.wasm")
    assert untrusted.returncode == 3
    assert "not in the trust store" in untrusted.stdout

    assert sign_cli("verify", workdir / "a.wasm", "--allow-self-signed").returncode == 0
    added = sign_cli("trust", "add", public, "Ada", "--email", "ada@example.org")
    assert added.returncode == 0, added.stderr

    verified = sign_cli("verify", workdir / "a.wasm", workdir / "b.wasm", "--json")
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"] is True
    assert [p["status"] for p in report["plugins"]] == ["trusted", "trusted"]
    assert report["plugins"][0]["signer"] == {"name": "Ada", "email": "ada@example.org"}

    listed = json.loads(sign_cli("trust", "list", "--json").stdout)
    assert [k["public_key"] for k in listed["keys"]] == [public]


def test_ci_signing_from_an_environment_secret_and_a_committed_trust_store(
    sign_cli: Runner, workdir: Path
) -> None:
    key = SigningKey.generate()
    store = workdir / "trusted_keys.toml"
    assert (
        sign_cli(
            "trust", "add", bytes(key.verify_key).hex(), "Release CI", "--trust-store", store
        ).returncode
        == 0
    )
    env = {"PLUGIN_SIGNING_KEY": bytes(key).hex(), "SOURCE_DATE_EPOCH": "1700000000"}
    signed = sign_cli(
        "sign",
        workdir / "a.wasm",
        "--key-env",
        "PLUGIN_SIGNING_KEY",
        "--name",
        "CI",
        "--email",
        "ci@example.org",
        env=env,
    )
    assert signed.returncode == 0, signed.stderr
    assert bytes(key).hex() not in signed.stdout + signed.stderr
    assert sign_cli("verify", workdir / "a.wasm", "--trust-store", store).returncode == 0
    assert (
        sign_cli("verify", workdir / "a.wasm", env={"CONDUCTOR_TRUST_STORE": str(store)}).returncode
        == 0
    )
    missing = sign_cli(
        "sign", workdir / "a.wasm", "--key-env", "NOPE", "--name", "CI", "--email", "x"
    )
    assert missing.returncode == 1 and "NOPE" in missing.stderr


def test_signing_is_reproducible_with_source_date_epoch(sign_cli: Runner, workdir: Path) -> None:
    _keygen(sign_cli, workdir / "key")
    outputs = []
    for _ in range(2):
        result = sign_cli(
            "sign",
            workdir / "a.wasm",
            workdir / "key",
            "--name",
            "A",
            "--email",
            "a@b",
            env={"SOURCE_DATE_EPOCH": "1700000000"},
        )
        assert result.returncode == 0, result.stderr
        outputs.append((workdir / "a.wasm.sig").read_bytes())
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0])["signed_at"] == "2023-11-14T22:13:20Z"


def test_verify_exit_codes_over_several_plugins(sign_cli: Runner, workdir: Path) -> None:
    public = _keygen(sign_cli, workdir / "key")
    sign_cli(
        "sign",
        workdir / "a.wasm",
        workdir / "b.wasm",
        workdir / "key",
        "--name",
        "A",
        "--email",
        "a@b",
    )
    sign_cli("trust", "add", public, "A")
    (workdir / "c.wasm").write_bytes(b"unsigned")
    other = workdir / "other"
    _keygen(sign_cli, other)
    (workdir / "d.wasm").write_bytes(b"by another key")
    sign_cli("sign", workdir / "d.wasm", other, "--name", "B", "--email", "b@b")

    assert sign_cli("verify", workdir / "a.wasm", workdir / "b.wasm").returncode == 0
    assert sign_cli("verify", workdir / "a.wasm", workdir / "d.wasm").returncode == 3
    missing = sign_cli(
        "verify", workdir / "a.wasm", workdir / "c.wasm", workdir / "d.wasm", "--json"
    )
    assert missing.returncode == 1
    statuses = [p["status"] for p in json.loads(missing.stdout)["plugins"]]
    assert statuses == ["trusted", "missing", "untrusted"]
    with (workdir / "b.wasm").open("ab") as handle:
        handle.write(b"\0")
    tampered = sign_cli("verify", workdir / "b.wasm")
    assert tampered.returncode == 1 and "bytes but the signature is for" in tampered.stdout
    assert sign_cli("verify", workdir / "nothere.wasm").returncode == 1


def test_sig_option_names_the_signature_file(sign_cli: Runner, workdir: Path) -> None:
    public = _keygen(sign_cli, workdir / "key")
    sign_cli("sign", workdir / "a.wasm", workdir / "key", "--name", "A", "--email", "a@b")
    sign_cli("trust", "add", public, "A")
    moved = workdir / "elsewhere.sig"
    (workdir / "a.wasm.sig").rename(moved)
    assert sign_cli("verify", workdir / "a.wasm").returncode == 1
    assert sign_cli("verify", workdir / "a.wasm", "--sig", moved).returncode == 0
    assert (
        sign_cli("verify", workdir / "a.wasm", workdir / "b.wasm", "--sig", moved).returncode == 2
    )


def test_bad_signature_files_get_one_line_and_exit_1(sign_cli: Runner, workdir: Path) -> None:
    _keygen(sign_cli, workdir / "key")
    sign_cli("sign", workdir / "a.wasm", workdir / "key", "--name", "A", "--email", "a@b")
    document = json.loads((workdir / "a.wasm.sig").read_text())
    for broken in (b"[]", b"{", json.dumps({**document, "version": "2"}).encode(), b"[" * 50000):
        (workdir / "a.wasm.sig").write_bytes(broken)
        result = sign_cli("verify", workdir / "a.wasm", "--allow-self-signed")
        assert result.returncode == 1
        assert "Traceback" not in result.stdout + result.stderr
        assert "reason:" in result.stdout
    (workdir / "a.wasm.sig").write_bytes(b" " * 70000)
    oversized = sign_cli("verify", workdir / "a.wasm")
    assert oversized.returncode == 1 and oversized.stderr.startswith("error: ")
    assert len(oversized.stderr.strip().splitlines()) == 1


def test_generate_key_refuses_to_overwrite_without_force(sign_cli: Runner, workdir: Path) -> None:
    first = _keygen(sign_cli, workdir / "key")
    again = sign_cli("generate-key", workdir / "key")
    assert again.returncode == 1 and "--force" in again.stderr
    assert (workdir / "key.public").read_text().strip() == first
    forced = sign_cli("generate-key", workdir / "key", "--force")
    assert forced.returncode == 0 and forced.stdout.strip() != first
    assert stat.S_IMODE((workdir / "key.private").stat().st_mode) == 0o600


def test_passphrase_protected_keys(sign_cli: Runner, workdir: Path) -> None:
    env = {"CONDUCTOR_KEY_PASSPHRASE": "correct horse"}
    made = sign_cli("generate-key", workdir / "enc", "--passphrase", env=env)
    assert made.returncode == 0, made.stderr
    private = (workdir / "enc.private").read_bytes()
    assert stat.S_IMODE((workdir / "enc.private").stat().st_mode) == 0o600
    assert b"argon2id" in private and len(private) > 32
    ok = sign_cli(
        "sign",
        workdir / "a.wasm",
        workdir / "enc.private",
        "--name",
        "A",
        "--email",
        "a@b",
        env=env,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads((workdir / "a.wasm.sig").read_text())["public_key"] == made.stdout.strip()
    wrong = sign_cli(
        "sign",
        workdir / "a.wasm",
        workdir / "enc",
        "--name",
        "A",
        "--email",
        "a@b",
        env={"CONDUCTOR_KEY_PASSPHRASE": "wrong"},
    )
    assert wrong.returncode == 1 and "wrong passphrase" in wrong.stderr
    no_tty = sign_cli("sign", workdir / "a.wasm", workdir / "enc", "--name", "A", "--email", "a@b")
    assert no_tty.returncode == 1 and "CONDUCTOR_KEY_PASSPHRASE" in no_tty.stderr


def test_signing_with_a_public_key_file_is_explained(sign_cli: Runner, workdir: Path) -> None:
    _keygen(sign_cli, workdir / "key")
    result = sign_cli(
        "sign", workdir / "a.wasm", workdir / "key.public", "--name", "A", "--email", "a@b"
    )
    assert result.returncode == 1 and "public key" in result.stderr


def test_usage_errors_exit_2(sign_cli: Runner, workdir: Path) -> None:
    assert sign_cli("sign", workdir / "a.wasm", "--name", "A", "--email", "a").returncode == 2
    assert sign_cli("verify", "--bogus").returncode == 2
    assert (
        sign_cli(
            "sign", workdir / "a.wasm", "k", "--name", "A", "--email", "a", "--format", "v9"
        ).returncode
        == 2
    )


def test_trust_store_add_list_remove(sign_cli: Runner, tmp_path: Path) -> None:
    keys = [bytes(SigningKey.generate().verify_key).hex() for _ in range(3)]
    for index, key in enumerate(keys):
        assert sign_cli("trust", "add", key.upper(), f"Dev {index}").returncode == 0
    duplicate = sign_cli("trust", "add", keys[1], "Again")
    assert duplicate.returncode == 1 and "Dev 1" in duplicate.stderr
    assert sign_cli("trust", "remove", keys[1]).returncode == 0
    listed = json.loads(sign_cli("trust", "list", "--json").stdout)["keys"]
    assert [(k["public_key"], k["name"]) for k in listed] == [
        (keys[0], "Dev 0"),
        (keys[2], "Dev 2"),
    ]
    unknown = sign_cli("trust", "remove", keys[1])
    assert unknown.returncode == 1 and "not in the trust store" in unknown.stderr
    store = Path(os.environ["XDG_CONFIG_HOME"]) / "conductor" / "trusted_keys.toml"
    assert store.exists()


def test_empty_trust_store_lists_without_error(sign_cli: Runner) -> None:
    result = sign_cli("trust", "list")
    assert result.returncode == 0 and "no trusted keys" in result.stdout
    assert json.loads(sign_cli("trust", "list", "--json").stdout)["keys"] == []


def test_weak_keys_are_refused_by_trust_add(sign_cli: Runner) -> None:
    for weak in ("01" + "00" * 31, "00" * 32, "ec" + "ff" * 30 + "7f", "abc"):
        result = sign_cli("trust", "add", weak, "Weak")
        assert result.returncode == 1, weak
        assert result.stderr.startswith("error: ")


def test_corrupt_trust_store_is_reported_and_left_untouched(
    sign_cli: Runner, tmp_path: Path
) -> None:
    store = tmp_path / "store.toml"
    store.write_text("keys = [[[ this is not toml")
    before = store.read_bytes()
    key = bytes(SigningKey.generate().verify_key).hex()
    for args in (("trust", "add", key, "X"), ("trust", "list"), ("trust", "remove", key)):
        result = sign_cli(*args, "--trust-store", store)
        assert result.returncode == 1 and "corrupt" in result.stderr
    assert store.read_bytes() == before


def test_reference_written_store_and_v1_signature_interoperate(
    sign_cli: Runner, workdir: Path
) -> None:
    key = SigningKey.generate()
    public = bytes(key.verify_key).hex()
    digest = hashlib.sha256(PLUGIN_BYTES).digest()
    # Written the way the reference writes them: v1 over the raw digest, added_at as a TOML datetime.
    (workdir / "a.wasm.sig").write_text(
        json.dumps(
            {
                "version": 1,
                "algorithm": "Ed25519",
                "plugin_hash": digest.hex(),
                "plugin_size": len(PLUGIN_BYTES),
                "public_key": public,
                "signature": key.sign(digest).signature.hex(),
                "signed_at": "2025-01-15T10:30:00.123456789+00:00",
                "developer": {"name": "Ref Dev", "email": "ref@example.org"},
            },
            indent=2,
        )
    )
    store = workdir / "trusted_keys.toml"
    store.write_text(
        f'[[keys]]\npublic_key = "{public}"\nname = "Ref Dev"\nemail = "ref@example.org"\n'
        "added_at = 2025-01-15T10:30:00Z\n"
    )
    result = sign_cli("verify", workdir / "a.wasm", "--trust-store", store, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    plugin = json.loads(result.stdout)["plugins"][0]
    assert plugin["format_version"] == 1 and plugin["signer_authenticated"] is False
    assert any("not authenticated" in w for w in plugin["warnings"])
    other = bytes(SigningKey.generate().verify_key).hex()
    assert sign_cli("trust", "add", other, "New", "--trust-store", store).returncode == 0
    assert "Ref Dev" in store.read_text() and "2025-01-15T10:30:00Z" in store.read_text()
    # and v1 files we write verify the same way
    sign_cli("generate-key", workdir / "k")
    assert (
        sign_cli(
            "sign",
            workdir / "b.wasm",
            workdir / "k",
            "--name",
            "A",
            "--email",
            "a",
            "--format",
            "v1",
        ).returncode
        == 0
    )
    assert json.loads((workdir / "b.wasm.sig").read_text())["version"] == 1


def test_a_dozen_concurrent_trust_adds_all_land(sign_cli: Runner, tmp_path: Path) -> None:
    store = tmp_path / "concurrent.toml"
    keys = [bytes(SigningKey.generate().verify_key).hex() for _ in range(12)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(
            pool.map(lambda k: sign_cli("trust", "add", k, k[:8], "--trust-store", store), keys)
        )
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    listed = json.loads(sign_cli("trust", "list", "--json", "--trust-store", store).stdout)["keys"]
    assert sorted(k["public_key"] for k in listed) == sorted(keys)


def test_typer_runner_version_and_help() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["--version"]).output.startswith("conductor-sign ")
    for command in (
        ["sign"],
        ["verify"],
        ["generate-key"],
        ["trust", "add"],
        ["trust", "list"],
        ["trust", "remove"],
    ):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output


def test_typer_runner_reports_errors_without_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["verify", str(tmp_path / "missing.wasm")])
    assert result.exit_code == 1
    assert "error:" in result.output and "Traceback" not in result.output
