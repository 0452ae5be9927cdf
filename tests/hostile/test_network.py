"""Network host functions against hostile hosts and peers: loopback in disguise, names that lead to
loopback, a WebSocket peer that stops reading, servers that answer garbage, and requests that try
to set the headers the host owns. All against real loopback servers."""

from __future__ import annotations

import base64
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from conductor.plugins.capabilities import Capability
from conductor.plugins.grants import GrantStore
from conductor.plugins.host.codes import Code
from conductor.plugins.limits import Limits
from conductor.plugins.loader import LoadedPlugin
from conductor.plugins.network.addresses import Scope, peer_scope
from conductor.plugins.network.patterns import split_url
from conductor.plugins.runtime import PluginHost
from tests.plugin_helpers import load_unsigned
from tests.servers import GARBAGE_ANSWERS, RawServer, gzip_bomb
from tests.test_host_functions import answer, call, probe

DENIED, INVALID, TIMEOUT, IO, CLOSED = Code.DENIED, Code.INVALID, Code.TIMEOUT, Code.IO, Code.CLOSED


def declaring(
    host: PluginHost, tmp_path: Path, hosts: list[str], limits: Limits | None = None, **options: Any
) -> LoadedPlugin:
    """The probe, declaring `hosts` in its metadata; Network only (granted automatically)."""
    metadata = {"name": "meta_probe", "capabilities": ["Network"], "hosts": hosts}
    return load_unsigned(
        host,
        "meta_probe",
        tmp_path,
        limits,
        plugin_config={"metadata": json.dumps(metadata)},
        **options,
    )


def no_host_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing was logged with a traceback, and the host's own logger stayed quiet."""
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    assert [r.getMessage() for r in caplog.records if r.name == "conductor.host"] == []


# -- item 5: loopback in disguise, and names that lead to loopback ---------------------------

DISGUISES = ["2130706433", "127.1", "0x7f000001", "0", "0177.0.0.1", "127.0.0.1", "localhost"]


@pytest.mark.parametrize("spelling", DISGUISES)
@pytest.mark.parametrize("scheme", ["https", "wss"])
def test_loopback_in_disguise_is_never_approved_automatically(
    host: PluginHost, tmp_path: Path, loopback_listener: RawServer, spelling: str, scheme: str
) -> None:
    pattern = f"{scheme}://{spelling}:{loopback_listener.port}"
    loaded = declaring(host, tmp_path, [pattern])
    function = "http_request" if scheme == "https" else "ws_connect"
    code, text, _ = call(loaded, function, {"url": f"{pattern}/"})
    assert code == DENIED and "declared but not approved" in text, text
    assert f"conductor plugin grant meta_probe Network --host {pattern}" in text
    assert loopback_listener.connections == 0  # not even a TCP handshake, let alone a ClientHello


@pytest.mark.parametrize("pattern", ["https://[::1]:{port}", "https://[::ffff:127.0.0.1]:{port}"])
def test_ipv6_loopback_is_never_approved_automatically(
    host: PluginHost, tmp_path: Path, loopback6_listener: RawServer, pattern: str
) -> None:
    pattern = pattern.format(port=loopback6_listener.port)
    loaded = declaring(host, tmp_path, [pattern])
    code, text, _ = call(loaded, "http_request", {"url": f"{pattern}/"})
    assert code == DENIED and "declared but not approved" in text, text
    assert loopback6_listener.connections == 0


@pytest.mark.parametrize("declared", ["https://*.localhost:{port}", "https://app.localhost:{port}"])
def test_localhost_names_are_never_approved_automatically(
    host: PluginHost, tmp_path: Path, loopback_listener: RawServer, declared: str
) -> None:
    loaded = declaring(host, tmp_path, [declared.format(port=loopback_listener.port)])
    code, text, _ = call(
        loaded, "http_request", {"url": f"https://app.localhost:{loopback_listener.port}/"}
    )
    assert code == DENIED and "declared but not approved" in text, text
    assert loopback_listener.connections == 0


def local_name() -> str:
    """A name that looks public (no `localhost` in it) and leads to this machine: its host name,
    which /etc/hosts maps to a loopback or private address on every usual set-up."""
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, 443, 0, socket.SOCK_STREAM)}
    except OSError as exc:
        pytest.skip(f"this machine's name {name} does not resolve: {exc}")
    if any(peer_scope(address) is Scope.PUBLIC for address in addresses):
        pytest.skip(f"this machine's name {name} leads to a public address")
    return name


@pytest.mark.parametrize("scheme", ["https", "wss"])
def test_a_public_looking_name_that_leads_to_loopback_is_refused_when_connecting(
    host: PluginHost,
    tmp_path: Path,
    loopback_listener: RawServer,
    scheme: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pattern = f"{scheme}://{local_name()}:{loopback_listener.port}"
    loaded = declaring(host, tmp_path, [pattern])
    decision = loaded.plugin.context.hosts.decide(*split_url(pattern, ("https", "wss")))
    assert decision.allowed and not decision.explicit  # approved automatically at load
    function = "http_request" if scheme == "https" else "ws_connect"
    code, text, _ = call(loaded, function, {"url": f"{pattern}/"})
    assert code == DENIED, text
    assert "approved only automatically" in text and "address" in text
    assert f"conductor plugin grant meta_probe Network --host {pattern}" in text
    assert loopback_listener.connections == 0  # refused before the TLS ClientHello, before TCP
    assert f"meta_probe: {function} denied" in caplog.text  # the denial is visible
    no_host_tracebacks(caplog)


@pytest.mark.parametrize("approval", ["grant", "config"])
def test_the_same_name_approved_by_the_user_is_reached(
    host: PluginHost, tmp_path: Path, loopback_listener: RawServer, approval: str
) -> None:
    pattern = f"https://{local_name()}:{loopback_listener.port}"
    options: dict[str, Any] = {}
    if approval == "grant":  # what `conductor plugin grant meta_probe Network --host …` records
        store = GrantStore(tmp_path / "grants.toml")
        store.update(
            "meta_probe", "unsigned", add=frozenset({Capability.NETWORK}), hosts=(pattern,)
        )
        options["grants"] = store
    else:  # [plugins.hosts] meta_probe = [pattern]
        options["extra_hosts"] = (pattern,)
    loaded = declaring(host, tmp_path, [pattern], **options)
    code, text, _ = call(loaded, "http_request", {"url": f"{pattern}/"})
    assert code == IO, text  # the listener hangs up: what matters is that it was reached
    assert loopback_listener.connections == 1
    assert loopback_listener.first_bytes[0][:1] == b"\x16"  # a TLS handshake record


# -- item 4: a WebSocket peer that stops reading -----------------------------------------------


def test_ws_send_to_a_peer_that_stopped_reading_times_out_at_the_deadline(
    host: PluginHost, tmp_path: Path, stalled_ws_server: RawServer
) -> None:
    url = f"ws://127.0.0.1:{stalled_ws_server.port}"
    loaded = probe(host, tmp_path, Limits(timeout_ms=1000), extra_hosts=(url,))
    assert call(loaded, "ws_connect", {"url": url})[0] == 1
    started = time.monotonic()
    code, text, error = call(
        loaded, "ws_send", "m" * 900_000, handle=1, flags=1, repeat=100, until_error=1
    )
    assert error is None and time.monotonic() - started < 1.0
    assert code == TIMEOUT and "the connection was cut" in text, text
    assert call(loaded, "ws_send", "more", handle=1)[0] == CLOSED
    assert call(loaded, "ws_close", handle=1)[0] == 0
    assert call(loaded, "ws_recv", handle=1, timeout_ms=10)[0] == INVALID  # freed


def test_ws_close_with_a_peer_that_never_answers_ends_within_the_budget(
    host: PluginHost, tmp_path: Path, stalled_ws_server: RawServer
) -> None:
    url = f"ws://127.0.0.1:{stalled_ws_server.port}"
    loaded = probe(host, tmp_path, Limits(timeout_ms=300), extra_hosts=(url,))
    assert call(loaded, "ws_connect", {"url": url})[0] == 1
    started = time.monotonic()
    code, text, error = call(loaded, "ws_close", handle=1)
    assert error is None and time.monotonic() - started < 0.3  # the library alone waits 1 s
    assert code == TIMEOUT and "the handle freed" in text, text
    assert call(loaded, "ws_recv", handle=1, timeout_ms=10)[0] == INVALID


# -- item 9: headers the host owns, and servers that answer garbage ----------------------------


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Host", "evil.example"),
        ("host", "127.0.0.1"),  # the address without the port is another host
        ("Content-Length", "5"),
        ("Transfer-Encoding", "chunked"),
        ("Connection", "upgrade"),
    ],
)
def test_a_plugin_cannot_set_the_headers_the_host_owns(
    host: PluginHost, tmp_path: Path, http_server, ws_server, header: str, value: str
) -> None:
    loaded = probe(host, tmp_path, extra_hosts=(http_server.url, ws_server.url))
    headers = [["X-Fine", "1"], [header, value]]
    code, text, _ = call(loaded, "http_request", {"url": http_server.url, "headers": headers})
    assert code == INVALID and f"header {header} is set by the host" in text, text
    code, text, _ = call(loaded, "ws_connect", {"url": ws_server.url, "headers": headers})
    assert code == INVALID and f"header {header} is set by the host" in text, text
    assert http_server.recorded.connections == 0 and ws_server.connections == 0


def test_repeating_what_the_host_sends_anyway_is_accepted_once(
    host: PluginHost, tmp_path: Path, http_server, ws_server
) -> None:
    """Spotify's API wants `Content-Length: 0` on an empty PUT, and plugins say so themselves."""
    loaded = probe(host, tmp_path, extra_hosts=(http_server.url, ws_server.url))
    address = http_server.url.removeprefix("http://")
    headers = [["Content-Length", "0"], ["HOST", address.upper()], ["Connection", "keep-alive"]]
    code, text, _ = call(
        loaded, "http_request", {"method": "PUT", "url": http_server.url, "headers": headers}
    )
    assert code == 0, text
    (received,) = http_server.recorded.requests
    assert received["headers"]["Content-Length"] == "0" and received["headers"]["Host"] == address
    assert "Connection" not in received["headers"]
    ws_headers = [["Host", ws_server.url.removeprefix("ws://")]]
    assert call(loaded, "ws_connect", {"url": ws_server.url, "headers": ws_headers})[0] == 1
    code, text, _ = call(
        loaded, "ws_connect", {"url": ws_server.url, "headers": [["Sec-WebSocket-Key", "x"]]}
    )
    assert code == INVALID and "header Sec-WebSocket-Key is set by the host" in text


def test_header_names_and_values_are_checked(host: PluginHost, tmp_path: Path, http_server) -> None:
    loaded = probe(host, tmp_path, extra_hosts=(http_server.url,))
    for headers, reason in (
        ([["Sec-WebSocket-Key", "x"]], None),  # fine for HTTP: only WebSockets own it
        ([["Bad Name", "x"]], "is not an HTTP token"),
        ([["X-Ok", "caf\u00e9"]], None),  # Latin-1 is allowed
        ([["X-Ok", "\u2603"]], "must be Latin-1 text"),
        ([["X-Ok", "a\u0000b"]], "line breaks or NUL"),
    ):
        code, text, _ = call(
            loaded, "http_request", {"url": f"{http_server.url}/echo", "headers": headers}
        )
        if reason is None:
            assert code == 0, text
        else:
            assert code == INVALID and reason in text, text
    code, text, _ = call(
        loaded, "http_request", {"url": f"{http_server.url}/echo", "headers": [["user-agent", "p"]]}
    )
    assert json.loads(answer(text)["body"])["headers"]["user-agent"] == "p"  # once, the plugin's


@pytest.mark.parametrize("path", sorted(GARBAGE_ANSWERS))
def test_a_server_answering_garbage_gets_one_clean_io_line(
    host: PluginHost,
    tmp_path: Path,
    garbage_http_server: RawServer,
    path: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{garbage_http_server.port}"
    loaded = probe(host, tmp_path, extra_hosts=(url,))
    code, text, error = call(loaded, "http_request", {"url": f"{url}{path}"})
    assert error is None and code == IO, text
    message = text.split(" ", 2)[2]
    assert "\n" not in message and "\r" not in message and "\x1b" not in message, message
    assert message.startswith(f"http_request: {url}{path}") or "redirect" in message, message
    no_host_tracebacks(caplog)


def test_a_compressed_body_reaches_the_plugin_as_sent(
    host: PluginHost, tmp_path: Path, garbage_http_server: RawServer
) -> None:
    url = f"http://127.0.0.1:{garbage_http_server.port}"
    loaded = probe(host, tmp_path, extra_hosts=(url,))
    code, text, _ = call(loaded, "http_request", {"url": f"{url}/gzip-bomb"})
    assert code == 0, text[:300]
    # The probe's log line holds the first 4000 characters of the answer: enough to see that
    # the body is the gzip stream itself (base64 of 1f 8b …), not 64 MiB inflated in the host.
    body = text.split('"body_base64":"', 1)[1]
    assert base64.b64decode(body[:64])[:2] == b"\x1f\x8b"
    assert int(text.split(" ", 2)[1]) < len(gzip_bomb()) * 2  # the answer's size in bytes


def test_urls_with_spaces_or_controls_are_invalid_and_non_ascii_is_encoded(
    host: PluginHost, tmp_path: Path, http_server
) -> None:
    loaded = probe(host, tmp_path, extra_hosts=(http_server.url,))
    for bad in (f"{http_server.url}/a b", f"{http_server.url}/a\x00", f"{http_server.url}/\x1b[2J"):
        code, text, _ = call(loaded, "http_request", {"url": bad})
        assert code == INVALID and "spaces or control characters" in text, text
    code, text, _ = call(loaded, "http_request", {"url": f"{http_server.url}/echo?q=caf\u00e9"})
    assert code == 0 and json.loads(answer(text)["body"])["query"] == "q=caf%C3%A9"
    assert http_server.recorded.connections == 1
