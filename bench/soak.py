"""Soak: `conductor run` as a real process listening on a virtual JACK port, fed note-ons at 2,000
events/s for a long run; its resident memory is sampled throughout.

Reports what was sent and what came out (`--log-format json`, one object per event): drops,
errors, resident memory at warm-up and at the end, and event → plugin start latency (measured by
the engine from the port callback's arrival stamp to the plugin call's start).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

from bench._jack import jack_server
from bench._stats import percentile

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "plugins"
CONFIG = f"""
[plugins]
signature_policy = "unsigned"
[[modes]]
name = "Soak"
[[modes.mappings]]
trigger = {{ Note = {{ note = 60 }} }}
action = {{ WasmPlugin = {{ path = "{FIXTURES}/trivial.wasm", params = {{ action = "soak" }} }} }}
"""
RATE = 2000  # events per second
DEFAULT_EVENTS = 100_000
WARMUP_FRACTION = 0.1  # resident memory after this share of the events is the warm-up figure
RSS_SAMPLE_S = 1.0


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class _Output:
    """Reads the run's JSON lines as they come: counts and latencies, nothing else kept."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.probes = 0
        self.records = 0
        self.delivered = 0
        self.errors = 0
        self.undelivered = 0
        self.latencies_ms = array("d")
        self.per_10ms: Counter[int] = Counter()  # events by arrival, in 10 ms slots
        self.stderr: list[str] = []
        self._process = process
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_stdout(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            record = json.loads(line)
            if record["mapping"] is None:
                self.probes += 1  # the note-offs that find out when the port is connected
                continue
            self.records += 1
            self.per_10ms[record["time_ms"] // 10] += 1
            self.undelivered += len(record["undelivered"])
            for result in record["results"]:
                if result["ok"]:
                    self.delivered += 1
                else:
                    self.errors += 1
                self.latencies_ms.append(result["latency_ms"])

    def _read_stderr(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            self.stderr.append(line)

    def wait_stderr(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.stderr):
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError(f"{text!r} never came: {''.join(self.stderr)[-2000:]}")
            time.sleep(0.05)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(10)


def soak(events: int = DEFAULT_EVENTS, rate: int = RATE) -> dict[str, Any]:
    with jack_server("soak") as server:
        if server is None:
            return {"skipped": "jackd not installed (Debian package jackd2)"}
        import rtmidi

        work = Path(tempfile.mkdtemp(prefix="conductor-soak-"))
        config = work / "soak.toml"
        config.write_text(CONFIG)
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "conductor", "run", str(config)),
                *("--virtual", "soak-in", "--api", "jack", "--log-format", "json"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        output = _Output(process)
        sender = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="soak-sender")
        try:
            output.wait_stderr("listening on", 60)
            port = next(i for i, p in enumerate(sender.get_ports()) if "soak-in" in p)
            sender.open_port(port)
            while output.probes == 0:  # JACK connects at its next cycle: send until one lands
                sender.send_message([0x80, 60, 0])  # a note-off: no mapping, not counted as sent
                time.sleep(0.01)
                if process.poll() is not None:
                    raise RuntimeError("".join(output.stderr)[-2000:])
            rss: list[tuple[float, int]] = []
            warmup_kib = 0
            started = time.monotonic()
            next_sample = started
            for index in range(events):
                due = started + index / rate
                while (now := time.monotonic()) < due:
                    time.sleep(due - now if due - now > 0.0003 else 0)
                sender.send_message([0x90, 60, 100])
                if now >= next_sample:
                    rss.append((round(now - started, 1), _rss_kib(process.pid)))
                    next_sample = now + RSS_SAMPLE_S
                if not warmup_kib and index >= events * WARMUP_FRACTION:
                    warmup_kib = _rss_kib(process.pid)
            sending_s = time.monotonic() - started
            deadline = time.monotonic() + 30
            while output.records < events and time.monotonic() < deadline:
                time.sleep(0.05)
            end_kib = _rss_kib(process.pid)
            rss.append((round(time.monotonic() - started, 1), end_kib))
        finally:
            sender.close_port()
            process.send_signal(2)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
            output.join()
        received = output.records
        latencies_us = [ms * 1000 for ms in output.latencies_ms]
        input_drops = sum("dropped at the input" in line for line in output.stderr)
        return {
            "events_sent": events,
            "rate_per_s": round(events / sending_s),
            "events_received": received,
            "lost_before_the_engine": events - received,
            "delivered": output.delivered,
            "dropped_or_skipped": output.undelivered,
            "input_queue_drop_lines": input_drops,
            "errors": output.errors,
            "p50_us": round(percentile(latencies_us, 0.5), 1) if latencies_us else None,
            "p99_us": round(percentile(latencies_us, 0.99), 1) if latencies_us else None,
            "rss_warmup_kib": warmup_kib,
            "rss_end_kib": end_kib,
            "rss_growth_kib": end_kib - warmup_kib,
            "rss_max_kib": max(kib for _, kib in rss),
            "exit_code": process.returncode,
            "most_events_in_10ms": max(output.per_10ms.values(), default=0),  # 20 when steady
            "jack_realtime": server.realtime,
            "jack_xruns": server.xruns(),
            "rss_samples": rss,
        }


def run(events: int = DEFAULT_EVENTS) -> dict[str, Any]:
    return {"soak_over_jack": soak(events)}


# Events JACK drops in its xruns never reach the engine: reported beside it, not judged here.
TARGETS = {
    "soak_over_jack": (
        "engine: no drop, no error; RSS growth < 5 MiB",
        lambda r: (
            "skipped" in r["soak_over_jack"]
            or (
                r["soak_over_jack"]["dropped_or_skipped"] == 0
                and r["soak_over_jack"]["errors"] == 0
                and r["soak_over_jack"]["rss_growth_kib"] < 5 * 1024
            )
        ),
    ),
}
