"""A private JACK server with the dummy driver for benchmarks (as the test suite starts one),
in realtime mode as JACK is normally run: without it, on a busy machine the scheduler can leave a
client's cycle unfinished and JACK drops that cycle's MIDI, which measures the machine, not us."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PERIOD, RATE = 64, 48000


@dataclass(frozen=True)
class JackServer:
    name: str
    realtime: bool
    log: Path

    def xruns(self) -> dict[str, int]:
        """Per client, the cycles it did not finish in time: JACK drops or delays their MIDI."""
        return dict(
            Counter(
                re.findall(
                    r"JackEngine::XRun: client = (\S+)", self.log.read_text("utf-8", "replace")
                )
            )
        )


@contextlib.contextmanager
def jack_server(label: str) -> Iterator[JackServer | None]:
    """Start `jackd -d dummy` under a private name and point this process (and the processes it
    starts) at it; yields the server, or None when JACK is not installed."""
    jackd, jack_wait = shutil.which("jackd"), shutil.which("jack_wait")
    if jackd is None or jack_wait is None:
        yield None
        return
    name = f"conductor-bench-{label}-{os.getpid()}"
    saved = {key: os.environ.get(key) for key in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["JACK_NO_START_SERVER"] = "1"
    server = None
    log = Path(tempfile.mkdtemp(prefix="conductor-bench-jack-")) / "jackd.log"
    try:
        for realtime in ("-R", "-r"):  # realtime where allowed
            command = [jackd, realtime, "-n", name, "-d", "dummy", "-r", str(RATE), "-p"]
            with log.open("w") as output:
                server = subprocess.Popen(
                    [*command, str(PERIOD)],
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env={**os.environ, "JACK_NO_AUDIO_RESERVATION": "1"},
                )
            ready = subprocess.run([jack_wait, "-s", name, "-w", "-t", "15"], capture_output=True)
            if ready.returncode == 0 and server.poll() is None:
                break
            _stop(server)
        else:
            raise RuntimeError("jackd did not start")
        yield JackServer(name, realtime == "-R", log)
    finally:
        if server is not None:
            _stop(server)
        shutil.rmtree(log.parent, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
