"""`exec`: run a declared and approved command for a plugin with the Subprocess capability.

No shell; `argv[0]` must be in the plugin's metadata `commands` and approved (the approval holds
the resolved absolute path, which is what runs); minimal environment; cwd is the plugin's data
directory; its own process group, killed at the budget; output capped at 64 KiB per stream.
"""

from __future__ import annotations

from conductor.plugins.host._process import minimal_environment, run_bounded
from conductor.plugins.host._state import HostCallError, InstanceState
from conductor.plugins.host.codes import Code

MAX_STDIN = 1024 * 1024


def exec_command(state: InstanceState, pointer: int, length: int) -> int:
    request = state.read_json(pointer, length)
    argv = request.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise HostCallError(Code.INVALID, "argv must be a non-empty list of strings")
    if any("\0" in a for a in argv):
        raise HostCallError(Code.INVALID, "argv must not contain NUL characters")
    stdin = request.get("stdin")
    if stdin is not None and not isinstance(stdin, str):
        raise HostCallError(Code.INVALID, "stdin must be a string")
    timeout = request.get("timeout_ms")
    if timeout is not None and (type(timeout) is not int or timeout <= 0):
        raise HostCallError(Code.INVALID, "timeout_ms must be a positive integer")
    name = argv[0]
    plugin = state.plugin
    if name not in plugin.declared_commands:
        reason = f"{name!r} is not in the plugin's metadata commands"
        plugin.log_denial(
            "exec",
            reason,
            f'add it under [plugins.commands] {plugin.name} = ["{name}"] in the config',
        )
        raise HostCallError(Code.DENIED, reason)
    path = plugin.commands.get(name)
    if path is None:
        reason = f"command {name!r} is not approved"
        plugin.log_denial(
            "exec", reason, f"conductor plugin grant {plugin.name} Subprocess --command {name}"
        )
        raise HostCallError(Code.DENIED, reason)
    data = stdin.encode("utf-8") if stdin is not None else None
    if data is not None and len(data) > MAX_STDIN:
        raise HostCallError(Code.TOO_BIG, f"stdin of {len(data)} bytes is over {MAX_STDIN}")
    cwd = plugin.data_dir
    if cwd is not None:
        cwd.mkdir(parents=True, exist_ok=True)
    try:
        done = run_bounded(
            [path, *argv[1:]], state.budget(timeout), stdin=data, env=minimal_environment(), cwd=cwd
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
