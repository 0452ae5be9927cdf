"""`conductor plugin new`: a plugin project in Rust, C or WAT that builds `NAME.wasm` with one
command and passes `conductor plugin exec` straight away. The SDK (C header, Rust crate) is copied
in, so the project builds without this package installed; a Rust project's target and crate
source follow the rustc found when it is created (`find_rust_toolchain`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from conductor.errors import FileError, UsageError

LANGUAGES = ("rust", "c", "wat")

_RUST_CARGO = """[package]
name = "{name}"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]

[dependencies]
conductor-plugin = {{ path = "conductor-plugin" }}

[profile.release]
opt-level = "s"
lto = true
strip = true
"""

_RUST_LIB = """use conductor_plugin::{{export_plugin, log_info, Metadata, Plugin, Request}};

struct {type_name};

impl Plugin for {type_name} {{
    fn metadata() -> Metadata {{
        Metadata {{
            name: "{name}".into(),
            version: "0.1.0".into(),
            description: "A Conductor plugin".into(),
            ..Default::default()
        }}
    }}

    fn execute(request: Request) -> i32 {{
        let action = request.str("action").unwrap_or("hello");
        log_info(&format!("{name}: {{}} ({{}} note {{:?}})", action, request.context.trigger, request.context.note));
        0
    }}
}}

export_plugin!({type_name});
"""

_RUST_CARGO_CONFIG = """# Written by `conductor plugin new` for {toolchain} (see README.md, Toolchain).
[build]
target = "{target}"
"""

_RUST_DEBIAN_SOURCE = """
# Offline, from Debian's packaged crates (apt: librust-serde-dev librust-serde-derive-dev
# librust-serde-json-dev). Delete these two tables to fetch crates from crates.io instead.
[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "{registry}"
"""

_RUST_MAKEFILE = """# `make` builds {name}.wasm: cargo builds the library (Cargo calls it {module}.wasm), and the
# copy gives it the plugin's name, which Conductor's config, grants and logs go by.
{pinned}TARGET := $(shell sed -n 's/^target = "\\(.*\\)"/\\1/p' .cargo/config.toml)

.PHONY: all run
all:
\t$(CARGO) build --release
\tcp target/$(TARGET)/release/{module}.wasm {name}.wasm

run: all
\tconductor plugin exec {name}.wasm --policy unsigned --params '{{"action": "play"}}'
"""

_RUST_README = """# {name}

A Conductor plugin in Rust, on the `conductor-plugin` SDK (a copy is in `conductor-plugin/`).

    make        # cargo build --release, then copies the module to {name}.wasm
    make run    # conductor plugin exec {name}.wasm --policy unsigned --params '{{"action": "play"}}'

Cargo names the library `target/{target}/release/{module}.wasm` (a crate's `-` becomes `_`);
Conductor names a plugin after its file, so `make` copies it to `{name}.wasm`, the file that
`path = "{name}"`, `[plugins.grants] {name} = [...]` and `[plugins.config.{name}]` refer to.

## Toolchain

`conductor plugin new` looked at the rustc it found ($RUSTC, else the first `rustc` on PATH):
{found}.

- Target `{target}`, set in `.cargo/config.toml`: `wasm32-wasip1` from Rust 1.78 on,
  `wasm32-wasi` (its earlier name) before. With rustup: `rustup target add {target}`;
  with Debian's rustc: `apt-get install libstd-rust-dev-wasm32`.
- Crates: {crates}
  Debian's registry is chosen only when that rustc is the system's own (under /usr, not a rustup
  proxy) and `/usr/share/cargo/registry` holds serde, serde_derive and serde_json; otherwise
  crates.io.

To change your mind, run `conductor plugin new` again with the other rustc first on PATH (or
`RUSTC=/path/to/rustc`), or edit `.cargo/config.toml` (the target; the `[source]` tables) and
the `CARGO`/`RUSTC` lines of the Makefile.
"""

RUST_WASIP1_SINCE = (1, 78)
DEBIAN_REGISTRY = Path("/usr/share/cargo/registry")
_CRATES_NEEDED = ("serde", "serde_derive", "serde_json")


@dataclass(frozen=True)
class RustToolchain:
    """What a generated Rust project builds with, decided from the rustc found at `plugin new`."""

    rustc: str | None
    version: tuple[int, int, int] | None
    registry: Path | None  # Debian's packaged crates (offline), or None for crates.io
    registry_lacks: tuple[str, ...] = ()  # why a system rustc still got crates.io

    @property
    def target(self) -> str:
        old = self.version is not None and self.version[:2] < RUST_WASIP1_SINCE
        return "wasm32-wasi" if old else "wasm32-wasip1"

    def describe(self) -> str:
        if self.rustc is None:
            return "no rustc (assuming a current Rust)"
        version = ".".join(map(str, self.version)) if self.version else "unknown version"
        return f"rustc {version} at {self.rustc}"


def _rustc_version(rustc: str) -> tuple[int, int, int] | None:
    try:
        done = subprocess.run(
            [rustc, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"rustc (\d+)\.(\d+)\.(\d+)", done.stdout)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def _is_system_rustc(rustc: str) -> bool:
    """Installed by the distribution: under /usr (not /usr/local), and not a rustup proxy."""
    resolved = Path(rustc).resolve()
    return (
        resolved.is_relative_to("/usr")
        and not resolved.is_relative_to("/usr/local")
        and resolved.name != "rustup"
    )


def _crates_missing(registry: Path) -> tuple[str, ...]:
    """The crates a project needs that the directory registry does not hold."""
    if not registry.is_dir():
        return _CRATES_NEEDED
    present = {entry.name.rsplit("-", 1)[0] for entry in registry.iterdir()}
    return tuple(crate for crate in _CRATES_NEEDED if crate not in present)


def find_rust_toolchain(env: Mapping[str, str], registry: Path = DEBIAN_REGISTRY) -> RustToolchain:
    """The rustc a build would use ($RUSTC, else the first on PATH), its version, and whether the
    project should take its crates from Debian's registry (system rustc and the crates there)."""
    rustc = shutil.which(env.get("RUSTC") or "rustc", path=env.get("PATH"))
    if rustc is None:
        return RustToolchain(None, None, None)
    version = _rustc_version(rustc)
    if not _is_system_rustc(rustc):
        return RustToolchain(rustc, version, None)
    missing = _crates_missing(registry)
    return RustToolchain(rustc, version, None if missing else registry, missing)


def _write_rust_project(directory: Path, name: str, toolchain: RustToolchain) -> None:
    module = name.replace("-", "_")
    shutil.copytree(
        _sdk() / "rust",
        directory / "conductor-plugin",
        ignore=shutil.ignore_patterns("target", ".cargo", "Cargo.lock"),
    )
    (directory / "src").mkdir()
    (directory / ".cargo").mkdir()
    config = _RUST_CARGO_CONFIG.format(toolchain=toolchain.describe(), target=toolchain.target)
    pinned = "CARGO ?= cargo\n"
    if toolchain.registry is not None and toolchain.rustc is not None:
        config += _RUST_DEBIAN_SOURCE.format(registry=toolchain.registry)
        # Debian's registry only suits Debian's cargo and rustc, even with rustup first on PATH.
        cargo = Path(toolchain.rustc).with_name("cargo")
        pinned = f"CARGO ?= {cargo}\nexport RUSTC ?= {toolchain.rustc}\n"
        crates = f"offline, from Debian's packaged crates in `{toolchain.registry}`."
    else:
        crates = "from crates.io (cargo fetches them on the first build)."
    (directory / ".cargo" / "config.toml").write_text(config)
    (directory / "Cargo.toml").write_text(_RUST_CARGO.format(name=name))
    type_name = "".join(part.capitalize() for part in re.split(r"[-_]", name))
    (directory / "src" / "lib.rs").write_text(_RUST_LIB.format(name=name, type_name=type_name))
    (directory / "Makefile").write_text(
        _RUST_MAKEFILE.format(name=name, module=module, pinned=pinned)
    )
    (directory / "README.md").write_text(
        _RUST_README.format(
            name=name,
            module=module,
            target=toolchain.target,
            found=toolchain.describe(),
            crates=crates,
        )
    )
    (directory / ".gitignore").write_text(f"/target/\n/{name}.wasm\n")


_C_SOURCE = """#include <stdio.h>

#define CONDUCTOR_PLUGIN_MAIN
#define CONDUCTOR_METADATA "{{\\"name\\":\\"{name}\\",\\"version\\":\\"0.1.0\\",\\"description\\":\\"A Conductor plugin\\"}}"
#include "conductor_plugin.h"

int plugin_execute(const char *request, size_t len) {{
    char action[64] = "hello", line[160];
    long long note = -1;
    cp_json_get_string(request, len, "action", action, sizeof action);
    cp_json_get_int(request, len, "note", &note);
    snprintf(line, sizeof line, "{name}: %s (note %lld)", action, note);
    conductor_log(CONDUCTOR_INFO, line);
    return 0;
}}
"""

_C_MAKEFILE = """# `make` builds {name}.wasm with clang for wasm32-wasi (Debian: clang lld wasi-libc
# libclang-rt-14-dev-wasm32). Without those, the pip-installable ziglang works too:
#   pip install ziglang && make CC="python -m ziglang cc" TARGET=wasm32-wasi-musl
ifeq ($(origin CC),default)
CC := clang
endif
TARGET ?= wasm32-wasi
CFLAGS := --target=$(TARGET) -mexec-model=reactor -O2 -I. -Wall -mcpu=mvp
LDFLAGS := -Wl,--strip-all -Wl,-z,stack-size=65536

{name}.wasm: {name}.c conductor_plugin.h
\t$(CC) $(CFLAGS) $(LDFLAGS) {name}.c -o $@

run: {name}.wasm
\tconductor plugin exec {name}.wasm --policy unsigned --params '{{"action": "play"}}'
"""

_WAT_SOURCE = """;; {name}: a plugin in WebAssembly text. It logs its request through conductor.log.
(module
  (import "conductor" "log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "{metadata}")
  (global $heap (mut i32) (i32.const 4096))
  (func (export "alloc") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $size)))
    (local.get $p))
  (func (export "dealloc") (param i32 i32) (global.set $heap (i32.const 4096)))
  (func (export "init") (result i64) (i64.const {metadata_length}))
  (func (export "execute") (param $ptr i32) (param $len i32) (result i32)
    (drop (call $log (i32.const 1) (local.get $ptr) (local.get $len)))
    (i32.const 0)))
"""

_WAT_MAKEFILE = """# `make` builds {name}.wasm with wabt's wat2wasm (Debian: wabt). Without it:
#   python -c "import wasmtime, pathlib; pathlib.Path('{name}.wasm').write_bytes(wasmtime.wat2wasm(pathlib.Path('{name}.wat').read_text()))"
{name}.wasm: {name}.wat
\twat2wasm {name}.wat -o $@
"""


def _sdk() -> Path:
    return Path(str(resources.files("conductor.sdk")))


@dataclass(frozen=True)
class Project:
    """A generated project: where it is, the one command that builds it, and what that makes."""

    directory: Path
    build: str
    artifact: Path
    notes: tuple[str, ...] = ()


def new_plugin(
    name: str, language: str, parent: Path, env: Mapping[str, str] | None = None
) -> Project:
    """Write the project into `parent/name`; the built file is always `name.wasm`."""
    if language not in LANGUAGES:
        raise UsageError(f"--lang: {language!r} is not one of {', '.join(LANGUAGES)}")
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", name):
        raise UsageError(
            f"plugin name {name!r}: use lower-case letters, digits, - and _, starting with a letter"
        )
    directory = parent / name
    if directory.exists():
        raise FileError(f"{directory}: already exists")
    artifact = directory / f"{name}.wasm"
    if language == "rust":
        toolchain = find_rust_toolchain(os.environ if env is None else env)
        directory.mkdir(parents=True)
        _write_rust_project(directory, name, toolchain)
        crates = "Debian's registry (offline)" if toolchain.registry else "crates.io"
        notes = [f"{toolchain.describe()}: target {toolchain.target}, crates from {crates}"]
        if toolchain.registry_lacks:
            packages = " ".join(
                f"librust-{c.replace('_', '-')}-dev" for c in toolchain.registry_lacks
            )
            notes.append(
                f"{DEBIAN_REGISTRY} lacks {', '.join(toolchain.registry_lacks)}: to build offline "
                f"with Debian's crates, apt-get install {packages} and run plugin new again"
            )
        return Project(directory, "make", artifact, tuple(notes))
    directory.mkdir(parents=True)
    if language == "c":
        shutil.copyfile(_sdk() / "c" / "conductor_plugin.h", directory / "conductor_plugin.h")
        (directory / f"{name}.c").write_text(_C_SOURCE.format(name=name))
        (directory / "Makefile").write_text(_C_MAKEFILE.format(name=name))
        return Project(directory, "make", artifact)
    metadata = f'{{"name":"{name}","version":"0.1.0","description":"A Conductor plugin"}}'
    escaped = metadata.replace('"', '\\"')
    (directory / f"{name}.wat").write_text(
        _WAT_SOURCE.format(name=name, metadata=escaped, metadata_length=len(metadata.encode()))
    )
    (directory / "Makefile").write_text(_WAT_MAKEFILE.format(name=name))
    return Project(directory, "make", artifact)
