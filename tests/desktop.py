"""A real headless desktop for the SystemControl tests, started and stopped by the suite: Xvfb,
a private session bus with dunst, PulseAudio with a null sink, and a recording browser; X clients
that record the key and button events they receive; logind (python-dbusmock's template) on a
private system bus; and a mount namespace in which systemd's tools believe systemd booted."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.midi_helpers import missing, require

DBUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>{kind}</type>
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
        (root / "dbus.conf").write_text(
            DBUS_CONFIG.format(kind="session", socket=bus, services=services)
        )
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


# -- X clients that record what they receive ------------------------------------------------

_XEV_EVENT = re.compile(r"^(KeyPress|KeyRelease|ButtonPress|ButtonRelease) event", re.MULTILINE)


@dataclass
class XRecorder:
    """An `xev` window on the headless display; `events()` are the key and button events it
    received, as (kind, detail): the keysym name for keys, `button@x,y` (root coordinates)
    for buttons."""

    window: str
    pid: int
    log: Path

    def events(self) -> list[tuple[str, str]]:
        text = self.log.read_text(errors="replace")
        found = []
        starts = [m.start() for m in _XEV_EVENT.finditer(text)] + [len(text)]
        for start, end in itertools.pairwise(starts):
            block = text[start:end]
            kind = block.split(" ", 1)[0]
            if kind.startswith("Key"):
                keysym = re.search(r"keysym 0x[0-9a-f]+, ([^)]+)\)", block)
                if keysym:
                    found.append((kind, keysym.group(1)))
            else:
                where = re.search(r"root:\((-?\d+),(-?\d+)\)", block)
                button = re.search(r"button (\d+)", block)
                if where and button:
                    found.append((kind, f"{button.group(1)}@{where.group(1)},{where.group(2)}"))
        return found

    def wait_for(
        self, done: Callable[[list[tuple[str, str]]], bool], timeout: float = 10
    ) -> list[tuple[str, str]]:
        """The events once `done(events)` holds (polled; xev flushes after every event)."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events()
            if done(events) or time.monotonic() > deadline:
                return events
            time.sleep(0.05)

    def focus(self, env: dict[str, str]) -> None:
        subprocess.run(
            ["xdotool", "windowfocus", "--sync", self.window], env=env, timeout=10, check=True
        )


def find_window(env: dict[str, str], *search: str) -> str:
    """The id of the first window `xdotool search …` finds, waited for."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = subprocess.run(
            ["xdotool", "search", *search], env=env, capture_output=True, text=True, timeout=10
        ).stdout.split()
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no window for xdotool search {' '.join(search)}")


@pytest.fixture
def x_recorder(desktop: Desktop, tmp_path: Path) -> Iterator[XRecorder]:
    """An xev window away from the screen's top-left corner (the screenshot test reads that
    pixel), focused, for one test."""
    for tool, package in (("xev", "x11-utils"), ("xdotool", "xdotool")):
        require(tool, package)
    log = tmp_path / "xev.log"
    name = f"conductor-recorder-{os.getpid()}-{time.monotonic_ns()}"
    process = _start(
        [
            "xev",
            "-name",
            name,
            "-geometry",
            "200x200+420+260",
            "-event",
            "keyboard",
            "-event",
            "button",
        ],
        log,
        desktop.env,
    )
    try:
        recorder = XRecorder(find_window(desktop.env, "--name", name), process.pid, log)
        recorder.focus(desktop.env)
        yield recorder
    finally:
        process.terminate()
        process.wait(timeout=5)


# -- logind on a private system bus -----------------------------------------------------------


@dataclass
class Logind:
    """python-dbusmock's logind template on a private system bus; `calls()` are the methods it
    was called with, as logged lines such as `Suspend True`."""

    address: str
    log: Path

    def calls(self) -> list[str]:
        if not self.log.exists():
            return []
        return [line.split(" ", 1)[1] for line in self.log.read_text().splitlines() if " " in line]

    def wait_for(self, call: str, timeout: float = 10) -> list[str]:
        deadline = time.monotonic() + timeout
        while call not in self.calls() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.calls()

    def call(
        self, method: str, *arguments: str, interface: str = "org.freedesktop.DBus.Mock"
    ) -> None:
        subprocess.run(
            [
                "dbus-send",
                "--system",
                "--print-reply",
                "--dest=org.freedesktop.login1",
                "/org/freedesktop/login1",
                f"{interface}.{method}",
                *arguments,
            ],
            env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.address},
            capture_output=True,
            timeout=10,
            check=True,
        )


@pytest.fixture(scope="session")
def logind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logind]:
    """A private system bus with logind on it. Tests point DBUS_SYSTEM_BUS_ADDRESS at it: the
    real logind is never asked to suspend or lock anything."""
    require("dbus-daemon", "dbus")
    require("dbus-send", "dbus")
    python = _python_with_dbusmock()
    root = tmp_path_factory.mktemp("logind")
    bus = root / "system_bus_socket"
    (root / "system.conf").write_text(
        DBUS_CONFIG.format(kind="system", socket=bus, services=root / "no-services")
    )
    (root / "no-services").mkdir()
    address = f"unix:path={bus}"
    env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": address}
    processes = [
        _start(
            ["dbus-daemon", f"--config-file={root / 'system.conf'}", "--nofork"],
            root / "dbus.log",
            env,
        )
    ]
    try:
        _wait(bus.exists, "the private system bus")
        log = root / "calls.log"
        processes.append(
            _start(
                [python, "-m", "dbusmock", "--system", "--template", "logind", "-l", str(log)],
                root / "dbusmock.log",
                env,
            )
        )
        running = Logind(address, log)
        _wait(lambda: _answers(running), "logind (dbusmock)")
        # logind answers the path session/auto for the caller's own session (loginctl
        # lock-session uses it); the template has no such alias, so give it that session.
        running.call(
            "AddSession", "string:auto", "string:seat0", "uint32:0", "string:root", "boolean:true"
        )
        yield running
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=5)


def _python_with_dbusmock() -> str:
    """Debian's python3-dbusmock belongs to the system Python, which may not be first on PATH."""
    candidates = dict.fromkeys(p for p in ("/usr/bin/python3", shutil.which("python3")) if p)
    for python in candidates:
        if subprocess.run([python, "-c", "import dbusmock"], capture_output=True).returncode == 0:
            return python
    missing(f"no Python here imports dbusmock (tried {', '.join(candidates)}; python3-dbusmock)")
    raise AssertionError("unreachable")


def _answers(logind: Logind) -> bool:
    try:
        logind.call("Ping", interface="org.freedesktop.DBus.Peer")
    except subprocess.CalledProcessError:
        return False
    return True


# -- a mount namespace where systemd's tools run as on a systemd machine ---------------------

NAMESPACE_SCRIPT = 'mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system && exec "$@"'


def run_as_if_systemd_booted(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run Python `code` in a private mount namespace whose /run is an empty tmpfs with
    /run/systemd/system in it: systemctl and loginctl then talk to the D-Bus they are given
    (they refuse to where systemd did not boot), and the real systemd's private socket is out
    of reach. Skips where namespaces are not permitted (an unprivileged container)."""
    unshare = require("unshare", "util-linux")
    probe = subprocess.run(
        [unshare, "--mount", "sh", "-c", "mount -t tmpfs tmpfs /run"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here: {probe.stderr.strip()}")
    return subprocess.run(
        [unshare, "--mount", "sh", "-c", NAMESPACE_SCRIPT, "sh", sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


_LAUNCH_RECORDER = """#!/bin/sh
# what it was asked to start, and its session: a detached launch has a session of its own
printf '%s %s\\n' "$1" "$(cut -d' ' -f6 /proc/$$/stat)" >> {log}
"""


class LaunchRecorder:
    """An application that records what it was started with and in which session, with a
    desktop entry (`entry_id`, named "Pad Recorder") that starts it with `entry_arg`."""

    def __init__(self, directory: Path, entry_id: str, entry_arg: str) -> None:
        require("gio", "libglib2.0-bin")
        self.log = directory / "launched.txt"
        self.path = directory / "bin" / "conductor-recorder"
        self.path.parent.mkdir()
        self.path.write_text(_LAUNCH_RECORDER.format(log=self.log))
        self.path.chmod(0o755)
        self.applications = Path(os.environ["XDG_DATA_HOME"]) / "applications"
        self.applications.mkdir(parents=True)
        (self.applications / f"{entry_id}.desktop").write_text(
            f"[Desktop Entry]\nType=Application\nName=Pad Recorder\nExec={self.path} {entry_arg}\n"
        )

    def recorded(self, count: int) -> list[tuple[str, int]]:
        """(what it was started with, its session) for each start, once `count` have come."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
            not self.log.exists() or len(self.log.read_text().splitlines()) < count
        ):
            time.sleep(0.05)
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [(line.rsplit(" ", 1)[0], int(line.rsplit(" ", 1)[1])) for line in lines]
