"""CLI start-up: how long `conductor --version` and `conductor-sign verify` take as whole
processes, against the interpreter's own start (`python -c pass`) measured in the same run.

The commands run as an installed CLI runs for a user: bytecode cached (the runs write it if the
environment says not to), the three commands in turn so a drift of the machine's speed hits all
of them alike.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from conductor.signing import Developer, TrustStore, sign_plugin

RUNS = 25
WARMUP = 3
PLUGIN = (
    Path(__file__).resolve().parent.parent / "fixtures" / "demo" / "plugins" / "pad_counter.wasm"
)
TARGETS = {
    "conductor_version": ("p50 ≤ 150 ms", lambda r: r["conductor_version"]["p50_ms"] <= 150),
    "sign_verify": ("p50 ≤ 100 ms", lambda r: r["sign_verify"]["p50_ms"] <= 100),
}


def _signed_plugin(directory: Path) -> tuple[Path, Path]:
    """A signed copy of a demo plugin and a trust store that trusts its key."""
    key = SigningKey.generate()
    plugin = directory / PLUGIN.name
    plugin.write_bytes(PLUGIN.read_bytes())
    signature = sign_plugin(
        plugin.read_bytes(),
        key,
        Developer("Bench", "bench@example.org"),
        dt.datetime.now(dt.UTC),
        2,
    )
    Path(f"{plugin}.sig").write_text(signature.to_json())
    store = directory / "trust.toml"
    TrustStore(store).add(key.verify_key.encode().hex(), "Bench", "bench@example.org")
    return plugin, store


def _wall_ms(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True)
    wall = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-500:]!r}")
    return wall


def run() -> dict[str, Any]:
    scripts = Path(sys.executable).parent
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as work:
        plugin, store = _signed_plugin(Path(work))
        commands = {
            "python_pass": [sys.executable, "-c", "pass"],
            "conductor_version": [str(scripts / "conductor"), "--version"],
            "sign_verify": [
                str(scripts / "conductor-sign"),
                "verify",
                str(plugin),
                "--trust-store",
                str(store),
            ],
        }
        walls: dict[str, list[float]] = {name: [] for name in commands}
        for round_number in range(WARMUP + RUNS):
            for name, command in commands.items():
                wall = _wall_ms(command, env)
                if round_number >= WARMUP:
                    walls[name].append(wall)
    baseline = walls["python_pass"]
    results: dict[str, Any] = {}
    for name, samples in walls.items():
        entry: dict[str, Any] = {"p50_ms": round(statistics.median(samples), 1), "n": len(samples)}
        if name != "python_pass":
            ratios = [wall / base for wall, base in zip(samples, baseline, strict=True)]
            entry["ratio_to_python_pass"] = round(statistics.median(ratios), 2)
        results[name] = entry
    return results
