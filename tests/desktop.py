"""A real headless desktop for the SystemControl tests, started and stopped by the suite: Xvfb,
a private session bus with dunst, PulseAudio with a null sink, and a recording browser."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.midi_helpers import require

DBUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <servicedir>{services}</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""
PULSE_CONFIG = """load-module module-native-protocol-unix auth-anonymous=1 socket={socket}
load-module module-null-sink sink_name=conductor_test
set-default-sink conductor_test
"""
RECORDER = """#!/bin/sh
printf '%s\\n' "$1" >> {log}
"""


def start_xvfb(log: Path, size: str = "640x480x24") -> tuple[subprocess.Popen[bytes], str]:
    """Xvfb on the first free display number, waited for by its socket.

    Not -displayfd: a pipe's descriptor number can be closed under it by a library thread that
    closes a stale descriptor of the same number (JACK's client threads have done so here).
    """
    for number in range(90, 200):
        if Path(f"/tmp/.X{number}-lock").exists() or Path(f"/tmp/.X11-unix/X{number}").exists():
            continue
        with log.open("ab") as output:
            process = subprocess.Popen(
                ["Xvfb", f":{number}", "-screen", "0", size, "-nolisten", "tcp"],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            if Path(f"/tmp/.X11-unix/X{number}").exists():
                return process, f":{number}"
            time.sleep(0.02)
        process.kill()
        process.wait()
    raise AssertionError(f"no Xvfb display could be started: {log.read_text()[-2000:]}")


@dataclass
class Desktop:
    env: dict[str, str]
    opened_urls: Path


def _start(
    argv: list[str], log: Path, env: dict[str, str], **kwargs: object
) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            **kwargs,
        )  # type: ignore[arg-type]


def _wait(check: object, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not start")


@pytest.fixture(scope="session")
def desktop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desktop]:
    with running_desktop(tmp_path_factory.mktemp("desktop")) as running:
        yield running


@contextlib.contextmanager
def running_desktop(root: Path) -> Iterator[Desktop]:
    """Start the desktop services under `root`, point os.environ at them, and stop them after."""
    root.mkdir(parents=True, exist_ok=True)
    for tool in (
        "Xvfb",
        "xclip",
        "dunst",
        "dunstctl",
        "notify-send",
        "dbus-daemon",
        "pulseaudio",
        "pactl",
        "import",
        "xsetroot",
        "xdg-open",
    ):
        require(tool)
    processes: list[subprocess.Popen[bytes]] = []
    saved = dict(os.environ)
    try:
        xvfb, display = start_xvfb(root / "xvfb.log")
        processes.append(xvfb)
        env = dict(os.environ)
        env["DISPLAY"] = display

        bus = root / "bus"
        services = (
            root / "no-services"
        )  # empty: the bus must not start a notification daemon itself
        services.mkdir()
        (root / "dbus.conf").write_text(DBUS_CONFIG.format(socket=bus, services=services))
        processes.append(
            _start(
                ["dbus-daemon", f"--config-file={root / 'dbus.conf'}", "--nofork"],
                root / "dbus.log",
                env,
            )
        )
        _wait(bus.exists, "dbus-daemon")
        env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={bus}"
        processes.append(_start(["dunst"], root / "dunst.log", env))
        _wait(
            lambda: (
                subprocess.run(["dunstctl", "is-paused"], env=env, capture_output=True).returncode
                == 0
            ),
            "dunst",
        )

        pulse_home = root / "pulse-home"
        pulse_home.mkdir()
        pulse_socket = root / "pulse.sock"
        (root / "pulse.pa").write_text(PULSE_CONFIG.format(socket=pulse_socket))
        pulse_env = {
            **env,
            "HOME": str(pulse_home),
            "XDG_RUNTIME_DIR": str(pulse_home),
            "XDG_CONFIG_HOME": str(pulse_home),
        }
        processes.append(
            _start(
                [
                    "pulseaudio",
                    "-n",
                    "-F",
                    str(root / "pulse.pa"),
                    "--exit-idle-time=-1",
                    "--daemonize=no",
                    "--use-pid-file=no",
                    "--realtime=no",
                    "--high-priority=no",
                    "--disallow-exit",
                    "--log-target=stderr",
                ],
                root / "pulse.log",
                pulse_env,
            )
        )
        env["PULSE_SERVER"] = f"unix:{pulse_socket}"
        _wait(
            lambda: subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0,
            "pulseaudio",
        )

        opened = root / "opened-urls.txt"
        recorder = root / "record-url"
        recorder.write_text(RECORDER.format(log=opened))
        recorder.chmod(0o755)
        env["BROWSER"] = str(recorder)
        env["XDG_CURRENT_DESKTOP"] = "X-Generic"
        os.environ.update(
            {
                k: env[k]
                for k in (
                    "DISPLAY",
                    "DBUS_SESSION_BUS_ADDRESS",
                    "PULSE_SERVER",
                    "BROWSER",
                    "XDG_CURRENT_DESKTOP",
                )
            }
        )
        yield Desktop(env, opened)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
