"""Suspending the machine: logind's Suspend over the system D-Bus (systemctl; elogind's loginctl;
dbus-send where neither can, e.g. systemd's tools outside a systemd boot); pmset on macOS."""

from __future__ import annotations

from conductor.desktop._backends import Backend, attempt

_LOGIND_SUSPEND = [
    "dbus-send",
    "--system",
    "--print-reply",
    "--dest=org.freedesktop.login1",
    "/org/freedesktop/login1",
    "org.freedesktop.login1.Manager.Suspend",
    "boolean:false",  # not interactive: refused rather than waiting for a password
]


def sleep(*, timeout: float) -> None:
    """Put the machine to sleep (suspend to RAM)."""
    attempt(
        "sleep",
        [
            Backend.command(["systemctl", "suspend"]),
            Backend.command(["loginctl", "suspend"]),  # elogind's; systemd's has no suspend
            Backend.command(_LOGIND_SUSPEND),
            Backend.command(["pmset", "sleepnow"], platform="darwin"),
        ],
        timeout,
    )
