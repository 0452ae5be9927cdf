"""`http_request`: one HTTP(S) exchange for a plugin with the Network capability.

Every hop's URL is checked against the plugin's approved hosts before anything is contacted, and
the address connected to against the kind of approval (`_net.connect`); `Authorization` and
`Cookie` are dropped when a redirect changes origin; no proxy is taken from the environment; TLS
is verified; DNS, connect, send and every read are bounded by the call's deadline, and a watchdog
cuts the socket at the deadline so a trickling server cannot hold on. Whatever a server answers,
the plugin gets an answer or one line of error, never a host traceback.

urllib3 does the protocol work on a socket we connected and checked ourselves, verifying the
certificate against the host name; it never reads proxy settings.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import urllib3
import urllib3.connection
import urllib3.exceptions

from conductor._text import visible
from conductor.plugins.host import _net
from conductor.plugins.host._state import DEADLINE_GUARD_S, HostCallError, InstanceState
from conductor.plugins.host.codes import Code
from conductor.plugins.network.patterns import Decision, host_header, split_url

MAX_REQUEST_BODY = 1024 * 1024
MAX_RESPONSE_BODY = 4 * 1024 * 1024
MAX_REDIRECTS = 5
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
ORIGIN_BOUND_HEADERS = frozenset({"authorization", "cookie"})
DEFAULT_HEADERS = {"User-Agent": "conductor", "Accept-Encoding": "identity"}
# Printable ASCII stays as the plugin wrote it; anything else is percent-encoded as UTF-8.
_URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes | None
    timeout_ms: int | None
    follow_redirects: bool


def parse_request(document: dict[str, Any]) -> HttpRequest:
    """The request as the plugin sent it, or INVALID / TOO_BIG naming what is wrong."""
    method = document.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise HostCallError(Code.INVALID, f"method must be one of {', '.join(sorted(METHODS))}")
    url, scheme, host, port = _net.url_parts(document, ("http", "https"))
    body: bytes | None = None
    if "body" in document and "body_base64" in document:
        raise HostCallError(Code.INVALID, "give body or body_base64, not both")
    if isinstance(document.get("body"), str):
        try:
            body = document["body"].encode("utf-8")
        except UnicodeError:
            raise HostCallError(Code.INVALID, "body must be valid Unicode text") from None
    elif "body_base64" in document:
        try:
            body = base64.b64decode(document["body_base64"], validate=True)
        except (ValueError, TypeError):
            raise HostCallError(Code.INVALID, "body_base64 is not valid base64") from None
    elif "body" in document and document["body"] is not None:
        raise HostCallError(Code.INVALID, "body must be a string (use body_base64 for bytes)")
    if body is not None and len(body) > MAX_REQUEST_BODY:
        raise HostCallError(
            Code.TOO_BIG, f"request body of {len(body)} bytes is over {MAX_REQUEST_BODY}"
        )
    headers = _net.parse_headers(
        document.get("headers", []),
        _net.host_owned_values(scheme, host, port, len(body or b"")),
    )
    timeout = document.get("timeout_ms")
    if timeout is not None and (type(timeout) is not int or timeout <= 0):
        raise HostCallError(Code.INVALID, "timeout_ms must be a positive integer")
    follow = document.get("follow_redirects", True)
    if not isinstance(follow, bool):
        raise HostCallError(Code.INVALID, "follow_redirects must be true or false")
    return HttpRequest(method.upper(), url, headers, body, timeout, follow)


class _OnOurSocket(urllib3.connection.HTTPConnection):
    """urllib3 on a socket `_net.connect` made and checked, instead of one it connects itself."""

    our_socket: socket.socket

    def _new_conn(self) -> socket.socket:
        return self.our_socket


class _HttpsOnOurSocket(_OnOurSocket, urllib3.connection.HTTPSConnection):
    pass


def _exchange(
    state: InstanceState,
    decision: Decision,
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: bytes | None,
    timeout_ms: float | None,
) -> tuple[int, list[tuple[str, str]], bytes]:
    scheme, host, port = split_url(url, ("http", "https"))
    parts = urlsplit(url)
    target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), _URL_SAFE)
    sock = _net.connect(state, "http_request", url, host, port, timeout_ms, decision)
    # The watchdog's own handle on the connection: TLS detaches `sock`, and http.client lets go
    # of its socket once a response is read.
    handle = sock.dup()
    watchdog: _net.Watchdog | None = None
    connection: _OnOurSocket | None = None
    try:
        budget = state.budget(timeout_ms)
        if scheme == "https":
            connection = _HttpsOnOurSocket(
                host,
                port,
                timeout=budget,
                ssl_context=_net.tls_context(),
                server_hostname=host,
                assert_hostname=host,
            )
        else:
            connection = _OnOurSocket(host, port, timeout=budget)
        connection.our_socket = sock
        watchdog = _net.Watchdog(budget, lambda: _net.shutdown_socket(handle))
        connection.connect()
        live = connection.sock
        request_headers = {
            "Host": host_header(scheme, host, port),
            **{
                name: value
                for name, value in DEFAULT_HEADERS.items()
                if name.lower() not in {given.lower() for given, _ in headers}
            },
            **dict(headers),
        }
        # decode_content=False: a compressed body reaches the plugin as sent (no gzip bomb here).
        connection.request(
            method,
            target,
            body=body,
            headers=request_headers,
            preload_content=False,
            decode_content=False,
        )
        response = connection.getresponse()
        chunks, size = [], 0
        while True:
            if live is not None:
                with contextlib.suppress(OSError):  # http.client may have let go of it already
                    live.settimeout(state.budget(timeout_ms))  # re-armed before every read
            chunk = response.read1(65536) if method != "HEAD" else b""
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_RESPONSE_BODY:
                raise HostCallError(
                    Code.TOO_BIG, f"response body is over {MAX_RESPONSE_BODY} bytes"
                )
            chunks.append(chunk)
        return response.status, [(k, v) for k, v in response.headers.items()], b"".join(chunks)
    except HostCallError:
        raise
    except (
        OSError,
        ValueError,
        http.client.HTTPException,
        urllib3.exceptions.HTTPError,
    ) as exc:
        if (
            watchdog is not None and watchdog.fired
        ) or state.deadline - time.monotonic() <= DEADLINE_GUARD_S:
            raise HostCallError(Code.TIMEOUT, f"{url[:200]}: deadline reached") from None
        if isinstance(exc, TimeoutError | urllib3.exceptions.TimeoutError):
            raise HostCallError(Code.TIMEOUT, f"{url[:200]}: timed out") from None
        raise HostCallError(Code.IO, f"{url[:200]}: {_describe(exc)}") from None
    finally:
        if watchdog is not None:
            watchdog.cancel()
        if connection is not None:
            connection.close()
        sock.close()
        handle.close()


def _describe(exc: BaseException) -> str:
    """One readable line: the certificate problem, the OS error, or what broke the protocol."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed ({exc.reason}: {exc.verify_message})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}"
    text = visible(str(exc).strip())[:200]
    if isinstance(exc, http.client.HTTPException | urllib3.exceptions.ProtocolError):
        return f"the server broke the HTTP protocol ({type(exc).__name__}: {text})"
    return f"{type(exc).__name__}: {text}"


def _origin(url: str) -> tuple[str, str, int]:
    return split_url(url, ("http", "https"))


def http_request(state: InstanceState, pointer: int, length: int) -> int:
    request = parse_request(state.read_json(pointer, length))
    method, url, headers, body = request.method, request.url, request.headers, request.body
    for hop in range(MAX_REDIRECTS + 1):
        try:
            scheme, host, port = split_url(url, ("http", "https"))
        except ValueError as exc:
            if hop == 0:
                raise HostCallError(Code.INVALID, str(exc)) from None
            raise HostCallError(
                Code.IO, f"the server redirected to a URL that cannot be followed: {exc}"
            ) from None
        decision = _net.admit(state, "http_request", url, scheme, host, port)
        status, response_headers, content = _exchange(
            state, decision, method, url, headers, body, request.timeout_ms
        )
        location = next((v for k, v in response_headers if k.lower() == "location"), None)
        if not request.follow_redirects or status not in REDIRECTS or location is None:
            break
        if hop == MAX_REDIRECTS:
            raise HostCallError(
                Code.IO, f"more than {MAX_REDIRECTS} redirects, last to {visible(location[:200])}"
            )
        try:
            next_url = urljoin(url, location)
            changed_origin = _origin(next_url) != _origin(url)
        except ValueError as exc:
            raise HostCallError(
                Code.IO,
                f"the server redirected to a URL that cannot be followed: {visible(str(exc))[:200]}",
            ) from None
        if changed_origin:
            headers = [(k, v) for k, v in headers if k.lower() not in ORIGIN_BOUND_HEADERS]
        if status == 303 or (status in (301, 302) and method == "POST"):
            method, body = "GET", None
            headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
        url = next_url
    answer: dict[str, Any] = {
        "status": status,
        "headers": [[k, v] for k, v in response_headers],
        "url": url,
    }
    try:
        answer["body"] = content.decode("utf-8")
    except UnicodeDecodeError:
        answer["body_base64"] = base64.b64encode(content).decode("ascii")
    return state.answer_json(answer)
