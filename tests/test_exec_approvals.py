"""`plugin exec --host/--command`: declared hosts and commands approved for one run, through the
loader's own approver, against a loopback server and a real command; nothing is remembered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from conductor.paths import grants_file
from tests.conftest import Runner
from tests.hostile._helpers import assert_one_error_line

_METADATA_AT, _HTTP_AT, _EXEC_AT = 1024, 4096, 8192


def _wat_string(data: bytes) -> str:
    return '"' + "".join(f"\\{byte:02x}" for byte in data) + '"'


def reaching_plugin(path: Path, server_url: str) -> Path:
    """A plugin that declares `server_url` and `echo`, calls `http_request` (GET /hello) and
    `exec` (echo approved), logs each answer, and returns 1 for a refused request plus 2 for a
    refused command."""
    metadata = json.dumps(
        {
            "name": path.stem,
            "version": "1.0.0",
            "capabilities": ["Network", "Subprocess"],
            "hosts": [server_url],
            "commands": ["echo"],
        }
    ).encode()
    http = json.dumps({"method": "GET", "url": f"{server_url}/hello"}).encode()
    run = json.dumps({"argv": ["echo", "approved"]}).encode()
    text = f"""
    (module
      (import "conductor" "log" (func $log (param i32 i32 i32) (result i32)))
      (import "conductor" "http_request" (func $http (param i32 i32) (result i64)))
      (import "conductor" "exec" (func $exec (param i32 i32) (result i64)))
      (memory (export "memory") 4)
      (data (i32.const {_METADATA_AT}) {_wat_string(metadata)})
      (data (i32.const {_HTTP_AT}) {_wat_string(http)})
      (data (i32.const {_EXEC_AT}) {_wat_string(run)})
      (global $heap (mut i32) (i32.const 65536))
      (func (export "alloc") (param $size i32) (result i32)
        (local $p i32)
        (local.set $p (global.get $heap))
        (global.set $heap (i32.add (global.get $heap) (local.get $size)))
        (local.get $p))
      (func (export "init") (result i64)
        (i64.or (i64.shl (i64.const {_METADATA_AT}) (i64.const 32)) (i64.const {len(metadata)})))
      (func $answer (param $result i64) (result i32)
        (if (i64.lt_s (local.get $result) (i64.const 0)) (then (return (i32.const 1))))
        (drop (call $log (i32.const 1)
          (i32.wrap_i64 (i64.shr_u (local.get $result) (i64.const 32)))
          (i32.wrap_i64 (local.get $result))))
        (i32.const 0))
      (func (export "execute") (param i32 i32) (result i32)
        (i32.add
          (call $answer (call $http (i32.const {_HTTP_AT}) (i32.const {len(http)})))
          (i32.mul (i32.const 2)
            (call $answer (call $exec (i32.const {_EXEC_AT}) (i32.const {len(run)}))))))
    )
    """
    path.write_bytes(wasmtime.wat2wasm(text))
    return path


def exec_json(conductor_cli: Runner, plugin: Path, *flags: str) -> tuple[int, dict[str, Any]]:
    result = conductor_cli(
        "plugin", "exec", plugin, "--policy", "unsigned", "--grant", "Subprocess", *flags, "--json"
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)["result"]


def test_host_and_command_are_approved_for_this_run_only(
    conductor_cli: Runner, tmp_path: Path, http_server: Any
) -> None:
    plugin = reaching_plugin(tmp_path / "reach.wasm", http_server.url)
    code, refused = exec_json(conductor_cli, plugin)
    assert (code, refused["code"]) == (1, 3)  # neither declared thing was approved
    assert http_server.recorded.requests == []

    code, host_only = exec_json(conductor_cli, plugin, "--host", http_server.url)
    assert (code, host_only["code"]) == (1, 2)
    assert [r["path"] for r in http_server.recorded.requests] == ["/hello"]
    assert '"status":200' in host_only["output"]["logs"][0]["message"]

    code, both = exec_json(conductor_cli, plugin, "--host", http_server.url, "--command", "echo")
    assert (code, both["code"]) == (0, 0)
    messages = [log["message"] for log in both["output"]["logs"]]
    assert len(http_server.recorded.requests) == 2
    assert '"stdout":"approved\\n"' in messages[1]

    code, again = exec_json(conductor_cli, plugin)  # nothing was remembered
    assert (code, again["code"]) == (1, 3)
    assert not grants_file().exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--host", "http://127.0.0.1:1"],
            "--host http://127.0.0.1:1: reach does not declare it (it declares: URL); a config's "
            "[plugins.hosts] adds hosts of your own",
        ),
        (
            ["--command", "cat", "--grant", "Subprocess"],
            "--command cat: reach does not declare it (it declares: echo)",
        ),
        (["--command", "echo"], "--command needs reach to have Subprocess: add --grant Subprocess"),
        (["--host", "ftp://x"], "--host: host pattern 'ftp://x': scheme must be http, https"),
    ],
)
def test_what_the_plugin_does_not_declare_is_a_usage_error(
    conductor_cli: Runner, tmp_path: Path, http_server: Any, flags: list[str], message: str
) -> None:
    plugin = reaching_plugin(tmp_path / "reach.wasm", http_server.url)
    result = conductor_cli("plugin", "exec", plugin, "--policy", "unsigned", *flags)
    assert result.returncode == 2
    assert_one_error_line(result.stderr, message.replace("URL", http_server.url))
    assert http_server.recorded.requests == []
