"""`python -m bench [--only SECTION]... [--soak-events N]`: run the benchmarks, print a table,
write bench/results.json (sections not run keep their last results there)."""

from __future__ import annotations

import argparse
import json
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import engine, hostcalls, native, official, runtime, soak, startup

RESULTS = Path(__file__).resolve().parent / "results.json"
Targets = dict[str, tuple[str, Callable[[dict[str, Any]], bool]]]


def _sections(soak_events: int) -> dict[str, tuple[Callable[[], dict[str, Any]], Targets]]:
    return {
        "runtime": (runtime.run, runtime.TARGETS),
        "engine": (engine.run, engine.TARGETS),
        "hostcalls": (hostcalls.run, hostcalls.TARGETS),
        "official": (official.run, official.TARGETS),
        "native": (native.run, native.TARGETS),
        "soak": (lambda: soak.run(soak_events), soak.TARGETS),
        "startup": (startup.run, startup.TARGETS),
    }


def _table(name: str, results: dict[str, Any], targets: Targets) -> Table:
    table = Table(
        "measure", "p50 µs", "p99 µs", "value", "target", title=f"{name} ({platform.node()})"
    )
    for key, value in results.items():
        target, check = targets.get(key, ("", None))
        verdict = "" if check is None else ("[green]met[/]" if check(results) else "[red]missed[/]")
        if isinstance(value, dict):
            p50 = value.get("p50_us", value.get("median_us"))
            p99 = value.get("p99_us")
            extra = ", ".join(
                f"{k}={v}"
                for k, v in value.items()
                if k not in ("p50_us", "p99_us", "median_us") and not isinstance(v, list)
            )
            table.add_row(
                key,
                "" if p50 is None else f"{p50:.2f}",
                "" if p99 is None else f"{p99:.2f}",
                extra,
                f"{target} {verdict}",
            )
        else:
            table.add_row(key, "", "", str(value), f"{target} {verdict}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", action="append", choices=list(_sections(0)), default=[])
    parser.add_argument(
        "--soak-events",
        type=int,
        default=soak.DEFAULT_EVENTS,
        help=f"events the soak sends at {soak.RATE}/s (default {soak.DEFAULT_EVENTS}; "
        "the full soak is 1000000)",
    )
    arguments = parser.parse_args()
    console = Console(width=160)
    sections = _sections(arguments.soak_events)
    chosen = arguments.only or list(sections)
    previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for name in chosen:
        run, targets = sections[name]
        previous[name] = results = run()
        console.print(_table(name, results, targets))
    RESULTS.write_text(json.dumps(previous, indent=2) + "\n")
    console.print(f"wrote {RESULTS}")


main()
