"""`conductor plugin new`: a plugin project in Rust, C or WAT that builds with one command and
passes `conductor plugin exec` straight away. The SDK (C header, Rust crate) is copied in, so the
project builds offline and without this package installed."""

from __future__ import annotations

import re
import shutil
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

_RUST_README = """# {name}

Build (offline, with Debian's rustc/cargo, libstd-rust-dev-wasm32 and librust-serde-json-dev):

    PATH=/usr/bin:$PATH cargo build --release

Run it once:

    conductor plugin exec target/wasm32-wasi/release/{module}.wasm --policy unsigned --params '{{"action": "play"}}'
"""

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


def new_plugin(name: str, language: str, parent: Path) -> tuple[Path, str]:
    """Write the project into `parent/name`; return its directory and the build command."""
    if language not in LANGUAGES:
        raise UsageError(f"--lang: {language!r} is not one of {', '.join(LANGUAGES)}")
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", name):
        raise UsageError(
            f"plugin name {name!r}: use lower-case letters, digits, - and _, starting with a letter"
        )
    directory = parent / name
    if directory.exists():
        raise FileError(f"{directory}: already exists")
    directory.mkdir(parents=True)
    module = name.replace("-", "_")
    if language == "rust":
        shutil.copytree(
            _sdk() / "rust", directory / "conductor-plugin", ignore=shutil.ignore_patterns("target")
        )
        (directory / ".cargo").mkdir()
        shutil.copyfile(
            _sdk() / "rust" / ".cargo" / "config.toml", directory / ".cargo" / "config.toml"
        )
        (directory / "src").mkdir()
        (directory / "Cargo.toml").write_text(_RUST_CARGO.format(name=name))
        type_name = "".join(part.capitalize() for part in re.split(r"[-_]", name))
        (directory / "src" / "lib.rs").write_text(_RUST_LIB.format(name=name, type_name=type_name))
        (directory / "README.md").write_text(_RUST_README.format(name=name, module=module))
        return directory, "cargo build --release"
    if language == "c":
        shutil.copyfile(_sdk() / "c" / "conductor_plugin.h", directory / "conductor_plugin.h")
        (directory / f"{name}.c").write_text(_C_SOURCE.format(name=name))
        (directory / "Makefile").write_text(_C_MAKEFILE.format(name=name))
        return directory, "make"
    metadata = f'{{"name":"{name}","version":"0.1.0","description":"A Conductor plugin"}}'
    escaped = metadata.replace('"', '\\"')
    (directory / f"{name}.wat").write_text(
        _WAT_SOURCE.format(name=name, metadata=escaped, metadata_length=len(metadata.encode()))
    )
    (directory / "Makefile").write_text(_WAT_MAKEFILE.format(name=name))
    return directory, "make"
