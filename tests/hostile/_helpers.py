"""What the hostile tests share: plugins built at test time from WAT, the files around them, and
the checks for "one clear line".

`hostile_plugin` makes a plugin whose `init` returns `prefix + <its config value "token"> +
suffix` as its metadata (so a plugin can try to leak its secret through any metadata field), and
whose `execute` logs that value, logs `log`, writes `stdout` to its standard output and returns
`code`. Every byte is written as a WAT escape, so the text may hold anything, control characters
included.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import mido
import wasmtime
from nacl.signing import SigningKey

from conductor.signing import Developer, sign_plugin

_SUFFIX_AT, _LOG_AT, _STDOUT_AT, _PREFIX_AT = 4096, 8192, 12288, 16384


def _wat_string(data: bytes) -> str:
    return '"' + "".join(f"\\{byte:02x}" for byte in data) + '"'


def hostile_plugin(
    prefix: bytes,
    suffix: bytes = b"",
    *,
    log: bytes = b"",
    stdout: bytes = b"",
    code: int = 0,
    extra: str = "",
) -> bytes:
    """The module's bytes; `extra` is spliced into the module (more imports or exports)."""
    start = _PREFIX_AT + len(prefix)  # the first allocation, where config_get puts the token
    text = f"""
    (module
      (import "conductor" "config_get" (func $config_get (param i32 i32) (result i64)))
      (import "conductor" "log" (func $log (param i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write"
        (func $fd_write (param i32 i32 i32 i32) (result i32)))
      {extra}
      (memory (export "memory") 2)
      (data (i32.const 0) "token")
      (data (i32.const {_SUFFIX_AT}) {_wat_string(suffix)})
      (data (i32.const {_LOG_AT}) {_wat_string(log)})
      (data (i32.const {_STDOUT_AT}) {_wat_string(stdout)})
      (data (i32.const {_PREFIX_AT}) {_wat_string(prefix)})
      (global $heap (mut i32) (i32.const {start}))
      (func (export "alloc") (param $size i32) (result i32)
        (local $p i32)
        (local.set $p (global.get $heap))
        (global.set $heap (i32.add (global.get $heap) (local.get $size)))
        (local.get $p))
      (func (export "init") (result i64)
        (local $answer i64) (local $len i32)
        (local.set $answer (call $config_get (i32.const 0) (i32.const 5)))
        (if (i64.gt_s (local.get $answer) (i64.const 0))
          (then (local.set $len (i32.wrap_i64 (local.get $answer)))))
        (memory.copy (i32.add (i32.const {start}) (local.get $len))
                     (i32.const {_SUFFIX_AT}) (i32.const {len(suffix)}))
        (i64.or (i64.shl (i64.const {_PREFIX_AT}) (i64.const 32))
                (i64.extend_i32_u
                  (i32.add (i32.const {len(prefix) + len(suffix)}) (local.get $len)))))
      (func (export "execute") (param i32 i32) (result i32)
        (local $answer i64)
        (local.set $answer (call $config_get (i32.const 0) (i32.const 5)))
        (if (i64.gt_s (local.get $answer) (i64.const 0))
          (then (drop (call $log (i32.const 2)
            (i32.wrap_i64 (i64.shr_u (local.get $answer) (i64.const 32)))
            (i32.wrap_i64 (local.get $answer))))))
        (drop (call $log (i32.const 2) (i32.const {_LOG_AT}) (i32.const {len(log)})))
        (i32.store (i32.const 32) (i32.const {_STDOUT_AT}))
        (i32.store (i32.const 36) (i32.const {len(stdout)}))
        (drop (call $fd_write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 48)))
        (i32.const {code}))
    )
    """
    return wasmtime.wat2wasm(text)


def write_plugin(path: Path, wasm: bytes, key: SigningKey | None = None, version: int = 2) -> Path:
    """Write the plugin, and its signature by `key` when given."""
    path.write_bytes(wasm)
    if key is not None:
        signature = sign_plugin(
            wasm,
            key,
            Developer("Hostile Tester", "hostile@example.org"),
            dt.datetime.now(dt.UTC),
            version,
        )
        Path(f"{path}.sig").write_text(signature.to_json())
    return path


def notes_file(path: Path, count: int = 3, note: int = 60) -> Path:
    """A Standard MIDI File with `count` presses of `note`, for `run --replay`."""
    track = mido.MidiTrack()
    for _ in range(count):
        track.append(mido.Message("note_on", note=note, velocity=100, time=10))
        track.append(mido.Message("note_off", note=note, velocity=0, time=10))
    midi = mido.MidiFile()
    midi.tracks.append(track)
    midi.save(str(path))
    return path


def config_for(plugin: Path, extra: str = "", policy: str = "unsigned", params: str = "{}") -> str:
    """A config that calls `plugin` on note 60 with `params` (a TOML inline table)."""
    return f"""
[plugins]
signature_policy = "{policy}"
{extra}

[[modes]]
name = "Default"

[[modes.mappings]]
trigger = {{ Note = {{ note = 60 }} }}
action = {{ WasmPlugin = {{ path = "{plugin}", params = {params} }} }}
"""


def one_line(message: str) -> bool:
    """A message a person can read in one line: not empty, no line break."""
    return bool(message.strip()) and "\n" not in message and "\r" not in message


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def assert_one_error_line(stderr: str, *fragments: str) -> str:
    """stderr ends in exactly one `error:` line, holding each fragment; no traceback."""
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    for fragment in fragments:
        assert fragment in lines[0], stderr
    return lines[0]


def mkfifo(path: Path) -> Path:
    os.mkfifo(path)
    return path
