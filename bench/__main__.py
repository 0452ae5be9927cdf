"""`python -m bench`: run every benchmark, print a table, write bench/results.json."""

from __future__ import annotations

import json
import platform
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import engine, hostcalls, official, runtime

RESULTS = Path(__file__).resolve().parent / "results.json"


def main() -> None:
    console = Console(width=160)
    sections = {
        "runtime": (runtime.run(), runtime.TARGETS),
        "engine": (engine.run(), engine.TARGETS),
        "hostcalls": (hostcalls.run(), hostcalls.TARGETS),
        "official": (official.run(), official.TARGETS),
    }
    for name, (results, targets) in sections.items():
        table = Table(
            "measure", "p50 µs", "p99 µs", "value", "target", title=f"{name} ({platform.node()})"
        )
        for key, value in results.items():
            target, check = targets.get(key, ("", None))
            verdict = (
                "" if check is None else ("[green]met[/]" if check(results) else "[red]missed[/]")
            )
            if isinstance(value, dict):
                p50 = (
                    f"{value.get('p50_us', value.get('median_us')):.2f}"
                    if {"p50_us", "median_us"} & set(value)
                    else ""
                )
                p99 = f"{value['p99_us']:.2f}" if "p99_us" in value else ""
                extra = ", ".join(
                    f"{k}={v}" for k, v in value.items() if k not in ("p50_us", "p99_us")
                )
                table.add_row(key, p50, p99, extra, f"{target} {verdict}")
            else:
                table.add_row(key, "", "", str(value), f"{target} {verdict}")
        console.print(table)
    RESULTS.write_text(
        json.dumps({name: results for name, (results, _) in sections.items()}, indent=2) + "\n"
    )
    console.print(f"wrote {RESULTS}")


main()
