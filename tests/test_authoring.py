"""Plugin authoring: `plugin new` scaffolds build NAME.wasm with their one command and pass
`plugin exec`; the Rust scaffold follows the rustc it finds; the C header as C and C++; the
documented walkthrough from the product page's example; `plugin inspect` explains imports; grants
with hosts and commands; `plugin exec --config`; the signing demo."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conductor.plugins.scaffold import find_rust_toolchain
from tests.conftest import Runner
from tests.midi_helpers import require
from tests.plugin_helpers import fixture_path
from tests.spotify_api import SpotifyApi

DEBIAN_FIRST = {"PATH": "/usr/bin:" + os.environ.get("PATH", "")}  # Debian's rustc before rustup's
README = Path(__file__).resolve().parent.parent / "README.md"
WALKTHROUGH = README.parent / "docs" / "plugin-authoring.md"


def require_debian_rust() -> None:
    """Debian's cargo and wasm32 standard library (libstd-rust-dev-wasm32), as CI installs them."""
    require("cargo", "cargo")
    if not Path("/usr/bin/cargo").exists() or not Path("/usr/lib/rustlib/wasm32-wasi").exists():
        message = "Debian's cargo and libstd-rust-dev-wasm32 are not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def make(project: Path) -> subprocess.CompletedProcess[str]:
    """The project's one build command, with this shell's PATH (rustup's cargo may come first)."""
    built = subprocess.run(
        ["make"], cwd=project, capture_output=True, text=True, timeout=600, env=dict(os.environ)
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return built


@pytest.mark.parametrize(
    ("lang", "tools"), [("c", {"clang": "clang"}), ("wat", {"wat2wasm": "wabt"}), ("rust", {})]
)
def test_scaffolds_build_name_wasm_and_run(
    conductor_cli: Runner, tmp_path: Path, lang: str, tools: dict[str, str]
) -> None:
    for tool, package in {"make": "make", **tools}.items():
        require(tool, package)
    if lang == "rust":
        require_debian_rust()
    name = f"my-{lang}-pads"  # a dash: the built file must still be my-…-pads.wasm
    created = conductor_cli(
        "plugin", "new", name, "--lang", lang, "--dir", tmp_path, "--json", env=DEBIAN_FIRST
    )
    assert created.returncode == 0, created.stderr
    report = json.loads(created.stdout)
    project = tmp_path / name
    assert report["build"] == "make" and report["artifact"] == str(project / f"{name}.wasm")
    make(project)
    result = conductor_cli(
        "plugin",
        "exec",
        project / f"{name}.wasm",
        "--policy",
        "unsigned",
        "--params",
        '{"action": "play"}',
        "--event",
        "note:60:100",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    ran = json.loads(result.stdout)
    assert ran["plugin"] == name and ran["metadata"]["name"] == name
    assert ran["result"]["code"] == 0 and ran["result"]["output"]["logs"]


def test_rust_scaffold_with_debians_rustc_builds_offline_against_debians_crates(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    require_debian_rust()
    created = conductor_cli(
        "plugin", "new", "offline", "--lang", "rust", "--dir", tmp_path, env=DEBIAN_FIRST
    )
    assert created.returncode == 0, created.stderr
    assert "rustc 1." in created.stdout and "Debian's registry" in created.stdout
    project = tmp_path / "offline"
    config = (project / ".cargo" / "config.toml").read_text()
    assert 'replace-with = "debian"' in config and "/usr/share/cargo/registry" in config
    version = rustc_version(
        subprocess.run(["/usr/bin/rustc", "--version"], capture_output=True, text=True).stdout
    )
    assert version is not None
    expected = "wasm32-wasip1" if version >= (1, 78) else "wasm32-wasi"
    assert f'target = "{expected}"' in config
    makefile = (project / "Makefile").read_text()
    assert "CARGO ?= /usr/bin/cargo" in makefile and "export RUSTC ?= /usr/bin/rustc" in makefile
    # The network is unreachable for cargo here: only Debian's directory registry can serve it.
    unreachable = {"CARGO_NET_OFFLINE": "true", "CARGO_HOME": str(tmp_path / "cargo-home")}
    built = subprocess.run(
        ["make"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **unreachable},
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert (project / "offline.wasm").read_bytes()[:4] == b"\0asm"


def fake_rustc(directory: Path, version: str) -> Path:
    """A rustc outside /usr that reports `version`, as rustup's proxy in ~/.cargo/bin does."""
    directory.mkdir(parents=True, exist_ok=True)
    rustc = directory / "rustc"
    rustc.write_text(f"#!/bin/sh\necho 'rustc {version} (59807616e 2026-04-14)'\n")
    rustc.chmod(0o755)
    return rustc


@pytest.mark.parametrize(
    ("version", "target"),
    [("1.95.0", "wasm32-wasip1"), ("1.78.0", "wasm32-wasip1"), ("1.77.2", "wasm32-wasi")],
)
def test_rust_scaffold_for_a_rustup_toolchain_uses_its_target_and_crates_io(
    conductor_cli: Runner, tmp_path: Path, version: str, target: str
) -> None:
    rustc = fake_rustc(tmp_path / "rustup-bin", version)
    created = conductor_cli(
        "plugin",
        "new",
        "online",
        "--lang",
        "rust",
        "--dir",
        tmp_path,
        env={"PATH": f"{rustc.parent}:/usr/bin:/bin"},
    )
    assert created.returncode == 0, created.stderr
    assert f"rustc {version} at {rustc}: target {target}, crates from crates.io" in created.stdout
    project = tmp_path / "online"
    config = (project / ".cargo" / "config.toml").read_text()
    assert f'target = "{target}"' in config
    assert "[source" not in config and "/usr/share/cargo" not in config
    makefile = (project / "Makefile").read_text()
    assert "CARGO ?= cargo" in makefile and "RUSTC" not in makefile
    assert "cp target/$(TARGET)/release/online.wasm online.wasm" in makefile
    readme = (project / "README.md").read_text()
    assert f"rustc {version} at {rustc}" in readme and "from crates.io" in readme


def test_rust_scaffold_follows_rustc_env_and_assumes_a_current_rust_without_one(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    old = fake_rustc(tmp_path / "old", "1.70.0")
    pinned = conductor_cli(
        "plugin", "new", "pinned", "--lang", "rust", "--dir", tmp_path, env={"RUSTC": str(old)}
    )
    assert pinned.returncode == 0, pinned.stderr
    assert 'target = "wasm32-wasi"' in (tmp_path / "pinned" / ".cargo" / "config.toml").read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    none = conductor_cli(
        "plugin", "new", "bare", "--lang", "rust", "--dir", tmp_path, env={"PATH": str(empty)}
    )
    assert none.returncode == 0, none.stderr
    assert "no rustc" in none.stdout
    config = (tmp_path / "bare" / ".cargo" / "config.toml").read_text()
    assert 'target = "wasm32-wasip1"' in config and "[source" not in config


def test_debians_rustc_with_an_incomplete_registry_gets_crates_io_and_the_packages_to_add(
    tmp_path: Path,
) -> None:
    if not Path("/usr/bin/rustc").exists():
        require_debian_rust()  # fails in CI, skips elsewhere
    registry = tmp_path / "registry"
    for crate in ("serde-1.0.152", "serde_json-1.0.87"):
        (registry / crate).mkdir(parents=True)
    toolchain = find_rust_toolchain({"PATH": "/usr/bin"}, registry)
    assert toolchain.rustc == "/usr/bin/rustc" and toolchain.registry is None
    assert toolchain.registry_lacks == ("serde_derive",)
    complete = registry / "serde_derive-1.0.152"
    complete.mkdir()
    assert find_rust_toolchain({"PATH": "/usr/bin"}, registry).registry == registry


def test_rust_scaffold_with_rustups_real_rustc(conductor_cli: Runner, tmp_path: Path) -> None:
    found = shutil.which("rustc")
    if found is None or Path(found).resolve().name != "rustup":
        pytest.skip(
            "no rustup proxy first on PATH (rustup is no Debian 12 package; see the stand-ins)"
        )
    home = Path(pwd.getpwuid(os.getuid()).pw_dir)  # HOME is private in tests; rustup's is not
    rustup_env = {"RUSTUP_HOME": str(home / ".rustup"), "CARGO_HOME": str(home / ".cargo")}
    created = conductor_cli(
        "plugin", "new", "rustup", "--lang", "rust", "--dir", tmp_path, env=rustup_env
    )
    assert created.returncode == 0, created.stderr
    version = rustc_version(created.stdout)
    assert version is not None and "crates from crates.io" in created.stdout, created.stdout
    config = (tmp_path / "rustup" / ".cargo" / "config.toml").read_text()
    expected = "wasm32-wasip1" if version >= (1, 78) else "wasm32-wasi"
    assert f'target = "{expected}"' in config and "[source" not in config


def rustc_version(text: str) -> tuple[int, int] | None:
    match = re.search(r"rustc (\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2])) if match else None


def test_c_header_compiles_as_c_and_cpp(conductor_cli: Runner, tmp_path: Path) -> None:
    require("clang", "clang")
    clangxx = require("clang++", "clang")
    sdk = README.parent / "sdk" / "c"
    (tmp_path / "greet.cpp").write_text(CPP_PLUGIN)
    built = subprocess.run(
        [
            clangxx,
            "--target=wasm32-wasi",
            "-mexec-model=reactor",
            "-O2",
            "-fno-exceptions",
            "-nostdlib++",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-I",
            str(sdk),
            "greet.cpp",
            "-o",
            "greet.wasm",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    ran = conductor_cli(
        "plugin",
        "exec",
        tmp_path / "greet.wasm",
        "--policy",
        "unsigned",
        "--params",
        '{"name": "pads"}',
        "--json",
    )
    assert ran.returncode == 0, ran.stderr
    logs = json.loads(ran.stdout)["result"]["output"]["logs"]
    assert [entry["message"] for entry in logs] == ["hello, pads"]
    strict_c = subprocess.run(
        [
            "clang",
            "--target=wasm32-wasi",
            "-std=c99",
            "-pedantic",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-fsyntax-only",
            "-I",
            str(sdk),
            "-x",
            "c",
            "-",
        ],
        input=C_PLUGIN,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert strict_c.returncode == 0, strict_c.stderr


CPP_PLUGIN = """#define CONDUCTOR_PLUGIN_MAIN
#define CONDUCTOR_METADATA "{\\"name\\":\\"greet\\",\\"version\\":\\"1.0.0\\"}"
#include "conductor_plugin.h"

namespace {
struct Greeting {
    char text[80];
    explicit Greeting(const char *name) {
        strcpy(text, "hello, ");
        strncat(text, name, sizeof text - strlen(text) - 1);
    }
};
}  // namespace

int plugin_execute(const char *request, size_t len) {
    char name[64] = "world";
    cp_json_get_string(request, len, "name", name, sizeof name);
    Greeting greeting(name);
    size_t answer_len = 0;
    char *answer = cp_answer_text(conductor_config_get("absent", 6), &answer_len);
    free(answer);
    conductor_log(CONDUCTOR_INFO, greeting.text);
    return 0;
}
"""

C_PLUGIN = """#define CONDUCTOR_PLUGIN_MAIN
#define CONDUCTOR_METADATA "{}"
#include "conductor_plugin.h"
int plugin_execute(const char *request, size_t len) { (void)request; (void)len; return 0; }
"""


def walkthrough_blocks() -> dict[str, str]:
    """The code blocks of the walkthrough in docs/plugin-authoring.md, by their
    `<!-- walkthrough:NAME -->` marker."""
    pattern = re.compile(r"<!-- walkthrough:(\S+) -->\n```\w*\n(.*?)\n```", re.DOTALL)
    return {name: code + "\n" for name, code in pattern.findall(WALKTHROUGH.read_text())}


def test_walkthrough_takes_the_pages_spotify_example_to_a_working_plugin(
    conductor_cli: Runner, tmp_path: Path, spotify_api: SpotifyApi
) -> None:
    require("make", "make")
    require_debian_rust()
    blocks = walkthrough_blocks()
    assert set(blocks) == {
        "page-cargo",
        "page-lib",
        "alloc",
        "sdk-dependencies",
        "sdk-lib",
        "sdk-config",
    }
    created = conductor_cli(
        "plugin", "new", "my-wasm-plugin", "--lang", "rust", "--dir", tmp_path, env=DEBIAN_FIRST
    )
    assert created.returncode == 0, created.stderr
    project = tmp_path / "my-wasm-plugin"
    plugin = project / "my-wasm-plugin.wasm"

    def run(
        *extra: str | Path, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return conductor_cli(
            "plugin",
            "exec",
            plugin,
            "--policy",
            "unsigned",
            "--params",
            '{"action": "next"}',
            *extra,
            env=env,
        )

    # Steps 2-4: the page's example as given builds, and is refused with the hint.
    (project / "Cargo.toml").write_text(blocks["page-cargo"])
    (project / "src" / "lib.rs").write_text(blocks["page-lib"])
    make(project)
    refused = run()
    assert refused.returncode == 1
    assert (
        "missing required export 'alloc': the host writes each request into memory"
        in refused.stderr
    )
    assert "conductor-plugin" in refused.stderr and "conductor_plugin.h" in refused.stderr

    # Steps 5-6: with an allocator it works.
    with (project / "src" / "lib.rs").open("a") as source:
        source.write("\n" + blocks["alloc"])
    make(project)
    works = run("--json")
    assert works.returncode == 0, works.stderr
    assert json.loads(works.stdout)["result"]["output"]["stdout"] == "next\n"

    # Steps 7-8: on the SDK, talking to a Web API (the loopback stand-in for Spotify's).
    cargo = blocks["page-cargo"].split("[dependencies]")[0] + blocks["sdk-dependencies"]
    (project / "Cargo.toml").write_text(cargo)
    (project / "src" / "lib.rs").write_text(blocks["sdk-lib"])
    make(project)
    config = tmp_path / "my.toml"
    config.write_text(
        blocks["sdk-config"]
        + f'api_base = "{spotify_api.url}"\n[plugins.hosts]\n"my-wasm-plugin" = ["{spotify_api.url}"]\n'
    )
    spotify_api.current_token = "walkthrough-token"
    skipped = run("--config", config, env={"SPOTIFY_ACCESS_TOKEN": "walkthrough-token"})
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    (call,) = spotify_api.api_calls()
    assert (call["method"], call["path"], call["authorization"]) == (
        "POST",
        "/v1/me/player/next",
        "Bearer walkthrough-token",
    )
    inspected = json.loads(conductor_cli("plugin", "inspect", plugin, "--json").stdout)
    assert [a["name"] for a in inspected["actions"]] == ["play", "pause", "next", "previous"]


def test_signing_demo_tampers_a_byte_in_place(tmp_path: Path) -> None:
    demo = subprocess.run(
        ["bash", "fixtures/demo/signing-demo.sh", str(Path(sys.executable).parent)],
        cwd=README.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert demo.returncode == 0, demo.stderr
    tampered = demo.stdout.split("== tamper")[1]
    assert "SHA-256 does not match" in tampered and "bytes but the signature is for" not in tampered
    assert tampered.rstrip().endswith("exit code 1")
    assert "exit code 3" in demo.stdout.split("== trust add")[0]


def test_no_lock_file_is_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "*.toml.lock"], cwd=README.parent, capture_output=True, text=True
    )
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    assert tracked.stdout == ""
    assert "*.toml.lock" in (README.parent / ".gitignore").read_text().splitlines()


def test_new_refuses_bad_names_languages_and_existing_dirs(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    assert conductor_cli("plugin", "new", "Bad Name", "--dir", tmp_path).returncode == 2
    assert (
        conductor_cli("plugin", "new", "ok", "--lang", "cobol", "--dir", tmp_path).returncode == 2
    )
    assert conductor_cli("plugin", "new", "twice", "--dir", tmp_path).returncode == 0
    again = conductor_cli("plugin", "new", "twice", "--dir", tmp_path)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_inspect_warns_about_an_import_whose_capability_is_not_requested(
    conductor_cli: Runner,
) -> None:
    report = json.loads(
        conductor_cli("plugin", "inspect", fixture_path("undeclared_network"), "--json").stdout
    )
    assert report["import_warnings"] == [
        "imports conductor.http_request, which needs Network, but the metadata does not request it"
    ]
    probe = json.loads(
        conductor_cli("plugin", "inspect", fixture_path("host_probe"), "--json").stdout
    )
    assert probe["import_warnings"] == []
    assert probe["hosts"] == ["https://api.example.test", "http://127.0.0.1:1"]
    assert {c["name"]: c["risk"] for c in probe["capabilities"]} == {
        "Network": "low",
        "Subprocess": "high",
        "SystemControl": "high",
    }


def test_grant_hosts_and_commands_with_resolved_paths(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    copy = tmp_path / "host_probe.wasm"
    copy.write_bytes(fixture_path("host_probe").read_bytes())
    granted = conductor_cli(
        "plugin",
        "grant",
        copy,
        "Subprocess",
        "--command",
        "echo",
        "--host",
        "http://127.0.0.1:1",
        "--json",
    )
    assert granted.returncode == 0, granted.stderr
    grant = json.loads(granted.stdout)
    assert grant["commands"] == {"echo": str(Path("/usr/bin/echo").resolve())}
    assert grant["hosts"] == ["http://127.0.0.1:1"] and grant["key"] == "unsigned"
    ran = conductor_cli(
        "plugin",
        "exec",
        copy,
        "--policy",
        "unsigned",
        "--params",
        json.dumps({"fn": "exec", "arg": json.dumps({"argv": ["echo", "granted"]})}),
        "--json",
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert (
        '"stdout":"granted\\n"' in json.loads(ran.stdout)["result"]["output"]["logs"][-1]["message"]
    )
    assert conductor_cli("plugin", "grant", copy, "Network", "--host", "ftp://x").returncode == 2
    assert (
        conductor_cli(
            "plugin", "grant", copy, "Subprocess", "--command", "no-such-tool-here"
        ).returncode
        == 2
    )
    revoked = json.loads(
        conductor_cli("plugin", "revoke", copy, "--command", "echo", "--json").stdout
    )
    assert revoked["commands"] == {} and revoked["hosts"] == ["http://127.0.0.1:1"]


def test_exec_with_config_reads_plugin_config_and_redacts_secrets(
    conductor_cli: Runner, tmp_path: Path
) -> None:
    config = tmp_path / "setup.toml"
    config.write_text(
        '[plugins]\nsignature_policy = "unsigned"\n'
        '[plugins.config.host_probe]\ntoken = "${PROBE_TOKEN}"\nliteral = "$${NOT_A_VAR}"\n'
        '[plugins.commands]\nhost_probe = ["echo"]\n'
        '[plugins.grants]\nhost_probe = ["Subprocess"]\n'
        "[plugins.limits]\nmax_fuel = 50000000\n"
    )
    env = {"PROBE_TOKEN": "tok-123456"}
    token = conductor_cli(
        "plugin",
        "exec",
        fixture_path("host_probe"),
        "--config",
        config,
        "--json",
        "--params",
        json.dumps({"fn": "config_get", "arg": "token"}),
        env=env,
    )
    assert token.returncode == 0, token.stderr
    assert "tok-123456" not in token.stdout + token.stderr
    assert json.loads(token.stdout)["result"]["output"]["logs"][-1]["message"] == "answer 10 ***"
    literal = conductor_cli(
        "plugin",
        "exec",
        fixture_path("host_probe"),
        "--config",
        config,
        "--json",
        "--params",
        json.dumps({"fn": "config_get", "arg": "literal"}),
        env=env,
    )
    assert (
        json.loads(literal.stdout)["result"]["output"]["logs"][-1]["message"]
        == "answer 12 ${NOT_A_VAR}"
    )
    echo = conductor_cli(
        "plugin",
        "exec",
        fixture_path("host_probe"),
        "--config",
        config,
        "--json",
        "--params",
        json.dumps({"fn": "exec", "arg": json.dumps({"argv": ["echo", "tok-123456"]})}),
        env=env,
    )
    assert echo.returncode == 0 and "tok-123456" not in echo.stdout and "***" in echo.stdout
    unset = conductor_cli("plugin", "exec", fixture_path("host_probe"), "--config", config)
    assert unset.returncode == 1
    assert (
        "plugins.config.host_probe.token: environment variable PROBE_TOKEN is not set"
        in unset.stderr
    )
