"""Network plumbing shared by HTTP and WebSockets: the allow-list check, headers a plugin may set,
DNS bounded by the call's budget (socket timeouts do not bound `getaddrinfo`), connecting only
where the approval reaches, and a watchdog that cuts a socket at the deadline."""

from __future__ import annotations

import concurrent.futures
import contextlib
import ipaddress
import json
import re
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any, NoReturn

from conductor.plugins.host._state import HostCallError, InstanceState
from conductor.plugins.host.codes import Code
from conductor.plugins.network.addresses import Scope, address_scope, peer_scope
from conductor.plugins.network.patterns import Decision, host_header, split_url

_resolver = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="conductor-dns")

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def admit(
    state: InstanceState, function: str, url: str, scheme: str, host: str, port: int
) -> Decision:
    """The allow-list's decision for a URL; DENIED, logged with the fix, when nothing allows it."""
    decision = state.plugin.hosts.decide(scheme, host, port)
    if decision.allowed:
        return decision
    name = state.name
    if decision.pattern is not None:
        reason = f"{decision.pattern.text} is declared but not approved"
        fix = f"conductor plugin grant {name} Network --host {decision.pattern.text}"
    else:
        pattern = f"{scheme}://{host_header(scheme, host, port)}"
        reason = f"{pattern} is not in the plugin's hosts"
        fix = f"add it under [plugins.hosts] {name} = [{json.dumps(pattern)}] in the config"
    state.plugin.log_denial(function, f"{url[:200]}: {reason}", fix)
    raise HostCallError(Code.DENIED, f"{reason} (allow it with: {fix})")


def url_parts(document: dict[str, Any], schemes: tuple[str, ...]) -> tuple[str, str, str, int]:
    """The request's `url` with its scheme, normalized host and port, or INVALID naming what is
    wrong with it."""
    url = document.get("url")
    if not isinstance(url, str):
        raise HostCallError(Code.INVALID, "url must be a string")
    try:
        return (url, *split_url(url, schemes))
    except ValueError as exc:
        raise HostCallError(Code.INVALID, str(exc)) from None


def is_token(text: str) -> bool:
    """An HTTP token (RFC 9110): what header names and WebSocket subprotocols are made of."""
    return _TOKEN.fullmatch(text) is not None


def host_owned_values(
    scheme: str, host: str, port: int, body_length: int
) -> dict[str, frozenset[str]]:
    """The framing and routing headers the host sets from the request (SPEC §8), each with the
    values a plugin may repeat: the URL's host (with or without its default port), the body's
    length, keep-alive or close (the connection is closed after the exchange either way).
    Transfer-Encoding: none, the host never sends it."""
    written = host_header(scheme, host, port)
    with_port = written if written.endswith(f":{port}") else f"{written}:{port}"
    return {
        "host": frozenset({written.lower(), with_port.lower()}),
        "content-length": frozenset({str(body_length)}),
        "connection": frozenset({"keep-alive", "close"}),
        "transfer-encoding": frozenset(),
    }


def parse_headers(value: Any, host_owned: dict[str, frozenset[str]]) -> list[tuple[str, str]]:
    """`[[name, value], ...]` from a plugin: names are HTTP tokens, values one line of Latin-1.

    The headers in `host_owned` are set by the host from the request: a plugin that repeats the
    value the host sends anyway (`Content-Length: 0` for an empty PUT) has it dropped; any other
    value is INVALID naming the header.
    """
    if not isinstance(value, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
        for pair in value
    ):
        raise HostCallError(Code.INVALID, "headers must be a list of [name, value] string pairs")
    kept = []
    for name, text in value:
        if not is_token(name):
            raise HostCallError(Code.INVALID, f"header name {name[:60]!r} is not an HTTP token")
        if "\r" in text or "\n" in text or "\0" in text:
            raise HostCallError(
                Code.INVALID, f"header {name}: values must not contain line breaks or NUL"
            )
        if any(ord(c) > 0xFF for c in text):
            raise HostCallError(
                Code.INVALID,
                f"header {name}: values must be Latin-1 text (percent-encode the rest)",
            )
        sent = host_owned.get(name.lower())
        if sent is None:
            kept.append((name, text))
        elif text.strip().lower() not in sent:
            raise HostCallError(
                Code.INVALID, f"header {name} is set by the host from the request; remove it"
            )
    return kept


def resolve(host: str, port: int, budget_s: float) -> list[tuple[int, Any]]:
    """(family, socket address) pairs for `host`, or TIMEOUT/IO; never waits past `budget_s`."""
    future = _resolver.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=budget_s)
    except concurrent.futures.TimeoutError:
        raise HostCallError(
            Code.TIMEOUT, f"resolving {host} took longer than the call's budget"
        ) from None
    except (OSError, UnicodeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)[:100]
        raise HostCallError(Code.IO, f"cannot resolve {host}: {detail}") from None
    return [(family, address) for family, _, _, _, address in infos]


def connect(
    state: InstanceState,
    function: str,
    url: str,
    host: str,
    port: int,
    timeout_ms: float | None,
    decision: Decision,
) -> socket.socket:
    """A TCP connection to `host`, made within the budget, to an address the approval reaches.

    An automatic approval (a declared https/wss name) reaches public addresses only: private,
    loopback, link-local and unspecified ones are skipped, and the connected socket's peer is
    checked again before anything is sent on it, TLS ClientHello included. An explicit approval
    (the user's) reaches wherever the name leads.
    """
    addresses = resolve(host, port, state.budget(timeout_ms))
    if not decision.explicit:
        public = [
            (family, address)
            for family, address in addresses
            if address_scope(ipaddress.ip_address(address[0].partition("%")[0])) is Scope.PUBLIC
        ]
        if not public:
            _refuse(state, function, url, host, str(addresses[0][1][0]), decision)
        addresses = public
    failure: OSError | None = None
    for family, address in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(state.budget(timeout_ms))
            sock.connect(address)
            peer = str(sock.getpeername()[0])
        except OSError as exc:
            sock.close()
            failure = exc
            if isinstance(exc, TimeoutError):
                break
            continue
        except BaseException:
            sock.close()
            raise
        if not decision.explicit and peer_scope(peer) is not Scope.PUBLIC:
            sock.close()
            _refuse(state, function, url, host, peer, decision)
        return sock
    if isinstance(failure, TimeoutError):
        raise HostCallError(Code.TIMEOUT, f"{url[:200]}: connecting timed out")
    detail = (failure.strerror if failure is not None else None) or str(failure)
    raise HostCallError(Code.IO, f"{url[:200]}: cannot connect to {host}:{port}: {detail}")


def _refuse(
    state: InstanceState, function: str, url: str, host: str, address: str, decision: Decision
) -> NoReturn:
    scope = peer_scope(address)
    pattern = decision.pattern.text if decision.pattern is not None else host
    reason = (
        f"{host} leads to {address}, a {scope.value} address, and {pattern} was approved "
        "only automatically (loopback, private, link-local and unspecified addresses need "
        "the user's approval)"
    )
    fix = f"conductor plugin grant {state.name} Network --host {pattern}"
    state.plugin.log_denial(function, f"{url[:200]}: {reason}", fix)
    raise HostCallError(Code.DENIED, f"{reason} (allow it with: {fix})")


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
