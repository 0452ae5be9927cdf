#!/usr/bin/env bash
# Builds the official plugins with Debian's Rust toolchain (offline, Debian's crate registry),
# shrinks them with wasm-opt when binaryen is installed, copies them into the package and
# rewrites the digest manifest that makes them trusted.
set -euo pipefail
PYTHON=${1:-$(dirname "$0")/../.venv/bin/python}
PYTHON="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")"  # absolute, symlink kept (venv)
cd "$(dirname "$0")"
# Paths in panic messages name the workspace, not the machine that built it, so two checkouts
# build the same bytes (the manifest's digests depend on it).
export RUSTFLAGS="--remap-path-prefix=$(pwd)=/conductor/plugins --remap-path-prefix=$(cd ../conductor/sdk && pwd)=/conductor/sdk"
PATH=/usr/bin:$PATH cargo build --release --offline
OUT=../conductor/plugins/bundled
for crate in spotify obs system_utils; do
    name=${crate//_/-}
    if command -v wasm-opt >/dev/null; then
        wasm-opt -Oz --enable-bulk-memory --enable-sign-ext "target/wasm32-wasi/release/$crate.wasm" -o "$OUT/$name.wasm"
    else
        cp "target/wasm32-wasi/release/$crate.wasm" "$OUT/$name.wasm"
    fi
    chmod 644 "$OUT/$name.wasm"
done
"$PYTHON" -m conductor.plugins.bundled
