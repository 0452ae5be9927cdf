"""Timing helpers: percentiles over many samples, in microseconds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def sample_us(function: Callable[[], object], count: int, warmup: int = 200) -> list[float]:
    for _ in range(warmup):
        function()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(count):
        started = clock()
        function()
        samples.append((clock() - started) / 1000)
    return samples


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50_us": round(statistics.median(samples), 3),
        "p99_us": round(percentile(samples, 0.99), 3),
        "n": len(samples),
    }


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
