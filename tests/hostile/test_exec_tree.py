"""`exec` against commands that try to outlive their call: background children, `setsid`, double
forks, stdin nobody reads, and Conductor itself dying mid-call. Every process is checked gone
afterwards by pid, through /proc (a zombie still answers kill -0)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conductor.plugins.host.codes import Code
from conductor.plugins.limits import Limits
from conductor.plugins.runtime import PluginHost
from conductor.plugins.sandbox import plugin_data_dir
from conductor.processes import OUTPUT_CAP, run_bounded
from tests.plugin_helpers import fixture_path
from tests.test_host_functions import answer, call, probe

TIMEOUT = Code.TIMEOUT
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the process-tree guarantee is Linux's"
)


def running(pid: int) -> bool:
    """True while `pid` is a live (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def survivors(pids: list[int], within_s: float = 0.0) -> list[int]:
    """The pids still running after `within_s` (polled; 0 means: right now)."""
    deadline = time.monotonic() + within_s
    while True:
        alive = [pid for pid in pids if running(pid)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.02)


def pids_in(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def shell(host: PluginHost, tmp_path: Path, timeout_ms: int = 5000):
    return probe(host, tmp_path, Limits(timeout_ms=timeout_ms), extra_commands=("sh", "sleep"))


def test_a_background_child_holding_stdout_does_not_hold_the_call(
    host: PluginHost, tmp_path: Path
) -> None:
    loaded = shell(host, tmp_path)
    started = time.monotonic()
    code, text, _ = call(
        loaded, "exec", {"argv": ["sh", "-c", "sleep 20 & echo $!; echo hi"], "timeout_ms": 1000}
    )
    elapsed = time.monotonic() - started
    assert code == 0, text
    out = answer(text)["stdout"].split()
    assert out[1] == "hi" and elapsed < 1.0  # the pipe is not waited on until sleep ends
    assert survivors([int(out[0])]) == []  # gone when the call returns, not later


def test_a_child_that_calls_setsid_or_forks_twice_does_not_escape(
    host: PluginHost, tmp_path: Path
) -> None:
    loaded = shell(host, tmp_path)
    pids = plugin_data_dir("host_probe") / "pids"
    script = (
        "setsid sleep 21 >/dev/null 2>&1 & echo $! > pids; "
        # a double fork into a new session: its pid is known only from the inside
        "setsid -f sh -c 'echo $$ >> pids; exec sleep 22' >/dev/null 2>&1; "
        "while [ $(wc -l < pids) -lt 2 ]; do :; done; echo started"
    )
    code, text, _ = call(loaded, "exec", {"argv": ["sh", "-c", script], "timeout_ms": 3000})
    assert code == 0 and answer(text)["stdout"] == "started\n", text
    assert len(pids_in(pids)) == 2
    assert survivors(pids_in(pids)) == []


def test_the_budget_kills_the_whole_tree_and_covers_stdin(host: PluginHost, tmp_path: Path) -> None:
    loaded = shell(host, tmp_path)
    pids = plugin_data_dir("host_probe") / "pids"
    script = (
        "sleep 31 >/dev/null 2>&1 & echo $! > pids; "
        "setsid sleep 32 >/dev/null 2>&1 & echo $! >> pids; "
        "echo $$ >> pids; exec sleep 33"
    )
    started = time.monotonic()
    code, text, _ = call(loaded, "exec", {"argv": ["sh", "-c", script], "timeout_ms": 500})
    assert code == TIMEOUT and "was killed" in text and time.monotonic() - started < 1.0
    assert len(pids_in(pids)) == 3 and survivors(pids_in(pids)) == []
    # 900 KB of stdin for a command that never reads it: written within the budget, not before it
    started = time.monotonic()
    code, text, _ = call(
        loaded, "exec", {"argv": ["sleep", "30"], "stdin": "x" * 900_000, "timeout_ms": 500}
    )
    assert code == TIMEOUT and time.monotonic() - started < 1.0, text


def test_stdin_is_written_while_output_is_read(host: PluginHost, tmp_path: Path) -> None:
    loaded = shell(host, tmp_path)
    code, text, _ = call(
        loaded, "exec", {"argv": ["sh", "-c", "wc -c; echo done >&2"], "stdin": "y" * 900_000}
    )
    assert code == 0, text
    assert answer(text) == {
        "status": 0,
        "truncated": False,
        "stdout": "900000\n",
        "stderr": "done\n",
    }


@pytest.mark.parametrize(
    "how", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=["SIGKILL", "SIGTERM", "SIGINT"]
)
def test_nothing_the_call_started_survives_conductor(tmp_path: Path, how: signal.Signals) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[plugins]\nsignature_policy = "unsigned"\n'
        '[plugins.commands]\nhost_probe = ["sh"]\n'
        '[plugins.grants]\nhost_probe = ["Subprocess"]\n'
    )
    script = (
        "sleep 97 >/dev/null 2>&1 & echo $! > pids; "
        "setsid sleep 98 >/dev/null 2>&1 & echo $! >> pids; wait"
    )
    params = {"fn": "exec", "arg": json.dumps({"argv": ["sh", "-c", script]})}
    command = ["plugin", "exec", str(fixture_path("host_probe")), "--config", str(config)]
    command += ["--timeout-ms", "60000"]  # the call is still running when Conductor goes
    conductor = subprocess.Popen(
        [sys.executable, "-m", "conductor", *command, "--params", json.dumps(params)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pids = plugin_data_dir("host_probe") / "pids"
    deadline = time.monotonic() + 30
    while len(pids_in(pids)) < 2 and time.monotonic() < deadline and conductor.poll() is None:
        time.sleep(0.02)
    assert len(pids_in(pids)) == 2 and survivors(pids_in(pids)) == pids_in(pids)
    conductor.send_signal(how)
    conductor.wait(timeout=30)
    assert survivors(pids_in(pids), within_s=5) == []


def test_a_holder_left_by_a_tool_runs_on_until_it_ends_but_not_past_the_budget(
    tmp_path: Path,
) -> None:
    """`capture=False` (clipboard tools: a holder process owns the selection) keeps what the
    command leaves behind once it has ended; a command still running at the budget goes whole."""
    marker = tmp_path / "holder"
    done = run_bounded(
        ["sh", "-c", f"sleep 40 >/dev/null 2>&1 & echo $! > {marker}"], 5, capture=False
    )
    assert done.status == 0 and not done.timed_out
    holder = pids_in(marker)
    assert survivors(holder) == holder  # kept: it is what the tool handed its work to
    subprocess.run(["kill", str(holder[0])], check=True)
    assert survivors(holder, within_s=5) == []
    killed = run_bounded(
        ["sh", "-c", f"sleep 41 >/dev/null 2>&1 & echo $! > {marker}; exec sleep 42"],
        0.5,
        capture=False,
    )
    assert killed.timed_out and survivors(pids_in(marker)) == []


def test_output_caps_and_statuses(tmp_path: Path) -> None:
    flood = run_bounded(["sh", "-c", "yes | head -c 300000; exit 3"], 5)
    assert flood.status == 3 and flood.truncated and len(flood.stdout) == OUTPUT_CAP
    assert run_bounded(["sh", "-c", "kill -9 $$"], 5).status == -signal.SIGKILL
    with pytest.raises(FileNotFoundError):
        run_bounded([str(tmp_path / "missing")], 5)
