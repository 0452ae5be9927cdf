"""Property tests for what the host functions parse from plugins: the request JSON of
`http_request`, `ws_connect` and `exec`, headers, host patterns and URLs, and the address
classifier. Any input gives a verdict or one line naming what is wrong; nothing else escapes."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from conductor.errors import PatternError
from conductor.plugins.host import _net
from conductor.plugins.host._state import HostCallError
from conductor.plugins.host.exec import parse_request as parse_exec
from conductor.plugins.host.http import parse_request as parse_http
from conductor.plugins.host.websocket import parse_connect
from conductor.plugins.network.addresses import Scope, address_scope, host_scope, literal_address
from conductor.plugins.network.patterns import HostPattern, split_url

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
HOSTS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["localhost", "a.localhost", "127.1", "0", "[::1]", "example.com", "0x7f.1"]),
    st.integers(0, 2**32 - 1).map(str),
)
URLS = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda scheme, host, port, rest: f"{scheme}://{host}{port}{rest}",
        st.sampled_from(["http", "https", "ws", "wss", "ftp", "HTTPS", ""]),
        HOSTS,
        st.sampled_from(["", ":0", ":443", ":99999", ":x", ":-1"]),
        st.text(max_size=20),
    ),
)
OWNED = set(_net.host_owned_values("https", "example.com", 443, 0))
HEADERS = st.lists(st.lists(st.text(max_size=20), min_size=0, max_size=3), max_size=4) | JSON


def request(keys: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Documents with the keys a parser reads (each any JSON or a plausible value), and noise."""
    return st.fixed_dictionaries(
        {}, optional={key: strategy | JSON for key, strategy in keys.items()}
    ).flatmap(
        lambda known: st.dictionaries(st.text(max_size=10), JSON, max_size=3).map(
            lambda noise: {**noise, **known}
        )
    )


def one_line_error(error: HostCallError | ValueError) -> None:
    text = str(error)
    assert text and "\n" not in text and "\r" not in text
    if isinstance(error, HostCallError):
        assert error.code < 0


@given(
    request(
        {
            "method": st.sampled_from(["GET", "post", "BREW"]),
            "url": URLS,
            "headers": HEADERS,
            "body": st.text(),
            "body_base64": st.text(max_size=20),
            "timeout_ms": st.integers(),
            "follow_redirects": st.booleans(),
        }
    )
)
def test_http_request_json_gives_a_request_or_one_line(document: dict[str, Any]) -> None:
    try:
        parsed = parse_http(document)
    except HostCallError as error:
        one_line_error(error)
        return
    assert parsed.method in {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
    assert all(name.lower() not in OWNED for name, _ in parsed.headers)


@given(
    request(
        {
            "url": URLS,
            "headers": HEADERS,
            "subprotocols": st.lists(st.text(max_size=10), max_size=3),
            "timeout_ms": st.integers(),
        }
    )
)
def test_ws_connect_json_gives_a_request_or_one_line(document: dict[str, Any]) -> None:
    try:
        parsed = parse_connect(document)
    except HostCallError as error:
        one_line_error(error)
        return
    assert parsed.scheme in ("ws", "wss") and 0 <= parsed.port <= 65535


@given(
    request(
        {
            "argv": st.lists(st.text(max_size=10), max_size=4),
            "stdin": st.text(),
            "timeout_ms": st.integers(),
        }
    )
)
def test_exec_json_gives_a_request_or_one_line(document: dict[str, Any]) -> None:
    try:
        parsed = parse_exec(document)
    except HostCallError as error:
        one_line_error(error)
        return
    assert parsed.argv and all("\0" not in argument for argument in parsed.argv)


@given(HEADERS)
def test_headers_give_pairs_or_one_line(headers: Any) -> None:
    try:
        parsed = _net.parse_headers(headers, _net.host_owned_values("https", "example.com", 443, 0))
    except HostCallError as error:
        one_line_error(error)
        return
    for name, value in parsed:
        assert _net.is_token(name) and name.lower() not in OWNED
        assert not set("\r\n\0") & set(value)
        value.encode("latin-1")


@given(URLS)
def test_host_patterns_parse_or_give_one_line(text: str) -> None:
    try:
        pattern = HostPattern.parse(text)
    except PatternError as error:
        one_line_error(error)
        return
    assert pattern.scheme in ("http", "https", "ws", "wss") and 0 < pattern.port <= 65535
    if pattern.auto_approvable:  # only an https/wss DNS name, never this machine or an address
        assert pattern.scheme in ("https", "wss") and host_scope(pattern.host) is None


@given(URLS, st.sampled_from([("http", "https"), ("ws", "wss")]))
def test_urls_split_or_give_one_line(url: str, schemes: tuple[str, ...]) -> None:
    try:
        scheme, host, port = split_url(url, schemes)
    except ValueError as error:
        one_line_error(error)
        return
    assert scheme in schemes and host and 0 <= port <= 65535


@given(st.text())
def test_any_host_spelling_gets_a_scope_or_none(host: str) -> None:
    assert host_scope(host) in (None, *Scope)


@given(st.integers(0, 2**32 - 1), st.sampled_from(["dotted", "int", "hex", "octal", "short"]))
def test_every_spelling_of_an_ipv4_address_is_judged_as_the_address(
    value: int, spelling: str
) -> None:
    address = ipaddress.IPv4Address(value)
    a, b, c, d = address.packed
    text = {
        "dotted": str(address),
        "int": str(value),
        "hex": hex(value),
        "octal": ".".join(f"0{part:o}" for part in (a, b, c, d)),
        "short": f"{a}.{value & 0xFFFFFF}",
    }[spelling]
    assert literal_address(text) == address
    assert host_scope(text) is address_scope(address)
    assert not HostPattern.parse(f"https://{text}").auto_approvable
    # The C resolver agrees that this spelling is this address.
    resolved = socket.getaddrinfo(text, 443, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    assert resolved == str(address)


@given(st.integers(0, 2**128 - 1))
def test_every_ipv6_address_gets_a_scope_and_mapped_ipv4_is_judged_as_ipv4(value: int) -> None:
    address = ipaddress.IPv6Address(value)
    scope = address_scope(address)
    if address.ipv4_mapped is not None:
        assert scope is address_scope(address.ipv4_mapped)
    if scope is Scope.PUBLIC:
        assert address.is_global
