"""`exec`: run a declared and approved command for a plugin with the Subprocess capability.

No shell; `argv[0]` must be in the plugin's metadata `commands` and approved (the approval holds
the resolved absolute path, which is what runs); minimal environment; cwd is the plugin's data
directory. The budget covers the whole call, and no process the command starts outlives it
(`conductor.processes.run_bounded`); output is capped at 64 KiB per stream.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from conductor.plugins.host._state import HostCallError, InstanceState
from conductor.plugins.host.codes import Code
from conductor.processes import minimal_environment, run_bounded

MAX_STDIN = 1024 * 1024


@dataclass(frozen=True)
class ExecRequest:
    argv: list[str]
    stdin: bytes | None
    timeout_ms: int | None


def parse_request(document: dict[str, Any]) -> ExecRequest:
    """The request as the plugin sent it, or INVALID / TOO_BIG naming what is wrong."""
    argv = document.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise HostCallError(Code.INVALID, "argv must be a non-empty list of strings")
    if any("\0" in a for a in argv):
        raise HostCallError(Code.INVALID, "argv must not contain NUL characters")
    try:
        for argument in argv:
            os.fsencode(argument)
    except UnicodeError:
        raise HostCallError(Code.INVALID, "argv must be valid Unicode text") from None
    stdin = document.get("stdin")
    if stdin is not None and not isinstance(stdin, str):
        raise HostCallError(Code.INVALID, "stdin must be a string")
    try:
        data = stdin.encode("utf-8") if stdin is not None else None
    except UnicodeError:
        raise HostCallError(Code.INVALID, "stdin must be valid Unicode text") from None
    if data is not None and len(data) > MAX_STDIN:
        raise HostCallError(Code.TOO_BIG, f"stdin of {len(data)} bytes is over {MAX_STDIN}")
    timeout = document.get("timeout_ms")
    if timeout is not None and (type(timeout) is not int or timeout <= 0):
        raise HostCallError(Code.INVALID, "timeout_ms must be a positive integer")
    return ExecRequest(argv, data, timeout)


def exec_command(state: InstanceState, pointer: int, length: int) -> int:
    request = parse_request(state.read_json(pointer, length))
    name = request.argv[0]
    plugin = state.plugin
    if name not in plugin.declared_commands:
        reason = f"{name!r} is not in the plugin's metadata commands"
        plugin.log_denial(
            "exec",
            reason,
            f"add it under [plugins.commands] {plugin.name} = [{json.dumps(name)}] in the config",
        )
        raise HostCallError(Code.DENIED, reason)
    path = plugin.commands.get(name)
    if path is None:
        reason = f"command {name!r} is not approved"
        plugin.log_denial(
            "exec", reason, f"conductor plugin grant {plugin.name} Subprocess --command {name}"
        )
        raise HostCallError(Code.DENIED, reason)
    cwd = plugin.data_dir
    if cwd is not None:
        cwd.mkdir(parents=True, exist_ok=True)
    try:
        done = run_bounded(
            [path, *request.argv[1:]],
            state.budget(request.timeout_ms),
            stdin=request.stdin,
            env=minimal_environment(),
            cwd=cwd,
        )
    except OSError as exc:
        raise HostCallError(Code.IO, f"cannot run {path}: {exc.strerror or exc}") from None
    if done.timed_out:
        raise HostCallError(Code.TIMEOUT, f"{name} ran past the call's budget and was killed")
    return state.answer_json(
        {
            "status": done.status,
            "truncated": done.truncated,
            "stdout": plugin.redact(done.stdout.decode("utf-8", "replace")),
            "stderr": plugin.redact(done.stderr.decode("utf-8", "replace")),
        }
    )
