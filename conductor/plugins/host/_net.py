"""Network plumbing shared by HTTP and WebSockets: DNS bounded by the call's budget (socket
timeouts do not bound `getaddrinfo`), and a watchdog that cuts a socket at the deadline."""

from __future__ import annotations

import concurrent.futures
import contextlib
import socket
import ssl
import threading
from collections.abc import Callable

from conductor.plugins.host._state import HostCallError
from conductor.plugins.host.codes import Code

_resolver = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="conductor-dns")


def resolve(host: str, port: int, budget_s: float) -> list[tuple[int, str]]:
    """(family, address) pairs for `host`, or TIMEOUT/IO; never waits past `budget_s`."""
    future = _resolver.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=budget_s)
    except concurrent.futures.TimeoutError:
        raise HostCallError(
            Code.TIMEOUT, f"resolving {host} took longer than the call's budget"
        ) from None
    except OSError as exc:
        raise HostCallError(Code.IO, f"cannot resolve {host}: {exc.strerror or exc}") from None
    return [(family, info[0]) for family, _, _, _, info in infos]


def tls_context() -> ssl.SSLContext:
    """System trust (honours SSL_CERT_FILE / SSL_CERT_DIR); certificate and name are verified."""
    return ssl.create_default_context()


class Watchdog:
    """Calls `cut` once when the budget runs out, unless cancelled first."""

    def __init__(self, budget_s: float, cut: Callable[[], None]) -> None:
        self.fired = False

        def fire() -> None:
            self.fired = True
            with contextlib.suppress(OSError):
                cut()

        self._timer = threading.Timer(budget_s, fire)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()


def shutdown_socket(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
