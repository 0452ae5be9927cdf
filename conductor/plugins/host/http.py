"""`http_request`: one HTTP(S) exchange for a plugin with the Network capability.

Every hop's URL is checked against the plugin's approved hosts before anything is contacted;
`Authorization` and `Cookie` are dropped when a redirect changes origin; no proxy is taken from
the environment; TLS is verified; DNS, connect, send and every read are bounded by the call's
deadline, and a watchdog cuts the socket at the deadline so a trickling server cannot hold on.

urllib3 does the protocol work: it can connect to an address we resolved ourselves (bounded
DNS) while verifying the certificate against the host name, and it never reads proxy settings.
"""

from __future__ import annotations

import base64
import contextlib
import ssl
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import urllib3
import urllib3.connection
import urllib3.exceptions

from conductor.plugins.host import _net
from conductor.plugins.host._state import DEADLINE_GUARD_S, HostCallError, InstanceState
from conductor.plugins.host.codes import Code
from conductor.plugins.host.hosts import split_url

MAX_REQUEST_BODY = 1024 * 1024
MAX_RESPONSE_BODY = 4 * 1024 * 1024
MAX_REDIRECTS = 5
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
ORIGIN_BOUND_HEADERS = frozenset({"authorization", "cookie"})


def check_host(
    state: InstanceState, function: str, scheme: str, host: str, port: int, url: str
) -> None:
    """DENIED unless the URL's scheme, host and port match an approved pattern."""
    allowed, declared = state.plugin.hosts.decide(scheme, host, port)
    if allowed:
        return
    name = state.name
    if declared is not None:
        reason = f"{declared.text} is declared but not approved"
        fix = f"conductor plugin grant {name} Network --host {declared.text}"
    else:
        pattern = f"{scheme}://{host}" + ("" if port in (80, 443) else f":{port}")
        reason = f"{pattern} is not in the plugin's hosts"
        fix = f'add it under [plugins.hosts] {name} = ["{pattern}"] in the config'
    state.plugin.log_denial(function, f"{url[:200]}: {reason}", fix)
    raise HostCallError(Code.DENIED, f"{reason} (allow it with: {fix})")


def parse_request(
    document: dict[str, Any],
) -> tuple[str, str, list[tuple[str, str]], bytes | None, float | None, bool]:
    method = document.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise HostCallError(Code.INVALID, f"method must be one of {', '.join(sorted(METHODS))}")
    url = document.get("url")
    if not isinstance(url, str):
        raise HostCallError(Code.INVALID, "url must be a string")
    headers = document.get("headers", [])
    if not isinstance(headers, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
        for pair in headers
    ):
        raise HostCallError(Code.INVALID, "headers must be a list of [name, value] string pairs")
    if any("\r" in k or "\n" in k or "\r" in v or "\n" in v for k, v in headers):
        raise HostCallError(Code.INVALID, "header names and values must not contain line breaks")
    body: bytes | None = None
    if "body" in document and "body_base64" in document:
        raise HostCallError(Code.INVALID, "give body or body_base64, not both")
    if isinstance(document.get("body"), str):
        body = document["body"].encode("utf-8")
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
    timeout = document.get("timeout_ms")
    if timeout is not None and (type(timeout) is not int or timeout <= 0):
        raise HostCallError(Code.INVALID, "timeout_ms must be a positive integer")
    follow = document.get("follow_redirects", True)
    if not isinstance(follow, bool):
        raise HostCallError(Code.INVALID, "follow_redirects must be true or false")
    return method.upper(), url, [(k, v) for k, v in headers], body, timeout, follow


def _exchange(
    state: InstanceState,
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: bytes | None,
    timeout_ms: float | None,
) -> tuple[int, list[tuple[str, str]], bytes]:
    scheme, host, port = split_url(url, ("http", "https"))
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    _, address = _net.resolve(host, port, state.budget(timeout_ms))[0]
    budget = state.budget(timeout_ms)
    if scheme == "https":
        connection: urllib3.connection.HTTPConnection = urllib3.connection.HTTPSConnection(
            address,
            port,
            timeout=budget,
            ssl_context=_net.tls_context(),
            server_hostname=host,
            assert_hostname=host,
        )
    else:
        connection = urllib3.connection.HTTPConnection(address, port, timeout=budget)
    watchdog: _net.Watchdog | None = None
    try:
        connection.connect()
        sock = (
            connection.sock
        )  # http.client forgets it once a response is read; the watchdog must not
        watchdog = _net.Watchdog(state.budget(timeout_ms), lambda: _net.shutdown_socket(sock))
        request_headers = {
            "Host": host if port in (80, 443) else f"{host}:{port}",
            "User-Agent": "conductor",
            "Accept-Encoding": "identity",
        }
        request_headers.update(dict(headers))
        connection.request(
            method, target, body=body, headers=request_headers, preload_content=False
        )
        response = connection.getresponse()
        chunks, size = [], 0
        while True:
            if sock is not None:
                with contextlib.suppress(OSError):  # http.client may have let go of it already
                    sock.settimeout(state.budget(timeout_ms))  # re-armed before every read
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
    except (urllib3.exceptions.SSLError, OSError, urllib3.exceptions.HTTPError, ValueError) as exc:
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
        connection.close()


def _describe(exc: BaseException) -> str:
    """One readable line: the certificate problem, the OS error, or the exception's own text."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed ({exc.reason}: {exc.verify_message})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _origin(url: str) -> tuple[str, str, int]:
    return split_url(url, ("http", "https"))


def http_request(state: InstanceState, pointer: int, length: int) -> int:
    method, url, headers, body, timeout_ms, follow = parse_request(state.read_json(pointer, length))
    for hop in range(MAX_REDIRECTS + 1):
        try:
            scheme, host, port = split_url(url, ("http", "https"))
        except ValueError as exc:
            raise HostCallError(Code.INVALID, str(exc)) from None
        check_host(state, "http_request", scheme, host, port, url)
        status, response_headers, content = _exchange(state, method, url, headers, body, timeout_ms)
        location = next((v for k, v in response_headers if k.lower() == "location"), None)
        if not follow or status not in REDIRECTS or location is None:
            break
        if hop == MAX_REDIRECTS:
            raise HostCallError(
                Code.IO, f"more than {MAX_REDIRECTS} redirects, last to {location[:200]}"
            )
        next_url = urljoin(url, location)
        try:
            changed_origin = _origin(next_url) != _origin(url)
        except ValueError:
            raise HostCallError(
                Code.INVALID, f"redirect to an unsupported URL {next_url[:200]!r}"
            ) from None
        if changed_origin:
            headers = [(k, v) for k, v in headers if k.lower() not in ORIGIN_BOUND_HEADERS]
        if status == 303 or (status in (301, 302) and method == "POST"):
            method, body = "GET", None
            headers = [
                (k, v) for k, v in headers if k.lower() not in ("content-type", "content-length")
            ]
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
