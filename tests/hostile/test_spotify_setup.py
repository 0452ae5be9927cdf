"""`conductor plugin setup spotify` against a loopback accounts server, with the stray, idle and
forged callbacks a browser or another local program can make."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.conftest import Runner
from tests.spotify_api import SpotifyApi


class SetupFlow:
    """`plugin setup spotify` as a real process, with the address it asks the user to open."""

    def __init__(self, accounts: str, timeout: float = 30, port: int = 0) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "conductor", "plugin", "setup", "spotify"),
                *("--client-id", "client-1", "--accounts-base", accounts, "--no-browser"),
                *("--port", str(port), "--timeout", str(timeout)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = ""
        while not line.startswith("http"):
            line = self.process.stdout.readline().strip()
            assert line or self.process.poll() is None, self.process.stderr.read()  # type: ignore[union-attr]
        self.authorize_url = line
        query = parse_qs(urlsplit(line).query)
        self.redirect_uri = query["redirect_uri"][0]
        self.state = query["state"][0]
        self.port = urlsplit(self.redirect_uri).port or 0

    def callback(self, **params: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(
                f"{self.redirect_uri}?{urlencode(params)}", timeout=10
            ) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def finish(self) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=60)
        return self.process.returncode, out, err


@pytest.fixture
def idle_connection() -> Iterator[list[socket.socket]]:
    """Connections a browser's preconnect leaves open without a byte, or half a request."""
    sockets: list[socket.socket] = []
    yield sockets
    for item in sockets:
        item.close()


def open_idle(flow: SetupFlow, sockets: list[socket.socket]) -> None:
    silent = socket.create_connection(("127.0.0.1", flow.port))
    partial = socket.create_connection(("127.0.0.1", flow.port))
    partial.sendall(b"GET /callback?code=half")  # never finishes its request line
    sockets += [silent, partial]


def token_file() -> Path:
    return Path(os.environ["XDG_CONFIG_HOME"]) / "conductor" / "spotify-refresh-token"


def test_the_flow_completes_past_idle_connections_and_a_forged_error(
    spotify_api: SpotifyApi, idle_connection: list[socket.socket]
) -> None:
    flow = SetupFlow(spotify_api.url)
    open_idle(flow, idle_connection)
    assert flow.callback(error="access_denied") == (
        400,
        "Conductor: this is not the answer to the pending authorization.",
    )
    assert flow.callback(error="access_denied", state="guessed")[0] == 400
    assert flow.process.poll() is None  # still waiting for its own answer
    with urllib.request.urlopen(flow.authorize_url, timeout=10) as answer:  # the user's browser
        assert b"authorization received" in answer.read()
    code, out, err = flow.finish()
    assert code == 0, err
    assert token_file().read_text().strip() == "issued-refresh-token"
    assert stat.S_IMODE(token_file().stat().st_mode) == 0o600
    assert "access_denied" not in out + err


def test_timeout_is_wall_time_even_with_an_idle_connection(
    spotify_api: SpotifyApi, idle_connection: list[socket.socket]
) -> None:
    flow = SetupFlow(spotify_api.url, timeout=2)
    open_idle(flow, idle_connection)
    code, _, err = flow.finish()
    elapsed = time.monotonic() - flow.started
    assert code == 1
    assert err.strip() == f"error: no authorization arrived at {flow.redirect_uri} within 2 s"
    assert elapsed < 2 + 8, elapsed  # the bug: it waited for the idle connection to go away
    assert not token_file().exists()


def test_the_refusal_text_is_shown_sanitised(spotify_api: SpotifyApi) -> None:
    flow = SetupFlow(spotify_api.url)
    status, _ = flow.callback(error="denied\x1b]52;c;ZXZpbA==\x07\x1b[2J", state=flow.state)
    assert status == 200
    code, _, err = flow.finish()
    assert code == 1 and "\x1b" not in err and "\x07" not in err
    assert err.strip() == (
        "error: Spotify refused the authorization: denied\\x1b]52;c;ZXZpbA==\\x07\\x1b[2J"
    )


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (200, b"[1,2]", "answered HTTP 200 without a JSON object"),
        (200, b"<html>\x1b[31mgarbage", "answered HTTP 200 without a JSON object"),
        (
            400,
            b'{"error": "invalid_grant", "error_description": "bad\\u001b]0;pwned\\u0007"}',
            "the token exchange failed: bad\\x1b]0;pwned\\x07",
        ),
        (200, b'{"refresh_token": "two\\nlines"}', "answered an unusable refresh_token"),
        (200, b'{"refresh_token": 5}', "the token exchange failed: HTTP 200"),
    ],
    ids=["json-array", "garbage", "escape-in-error", "newline-token", "number-token"],
)
def test_a_hostile_token_endpoint_gets_one_clear_line(
    http_server: Any, status: int, body: bytes, reason: str
) -> None:
    def authorize(handler: Any, _: bytes) -> None:
        query = parse_qs(urlsplit(handler.path).query)
        target = (
            query["redirect_uri"][0] + "?" + urlencode({"code": "c", "state": query["state"][0]})
        )
        handler._send(302, b"", {"Location": target})

    http_server.routes["/authorize"] = authorize
    http_server.routes["/api/token"] = lambda handler, _: handler._send(status, body)
    flow = SetupFlow(http_server.url)
    with urllib.request.urlopen(flow.authorize_url, timeout=10) as answer:
        assert answer.status == 200
    code, _, err = flow.finish()
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "\x1b" not in err, err
    assert lines[0].startswith("error: the token exchange failed") and reason in lines[0]
    assert not token_file().exists()


def test_a_taken_port_is_one_clear_line(conductor_cli: Runner) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = conductor_cli(
            "plugin", "setup", "spotify", "--client-id", "c", "--no-browser", "--port", port
        )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: 127.0.0.1:{port} is already in use (another set-up still running?): stop it, "
        f"or pass --port N and register http://127.0.0.1:N/callback in your Spotify app"
    )


def test_the_default_redirect_port_is_the_documented_one(conductor_cli: Runner) -> None:
    help_text = conductor_cli("plugin", "setup", "--help").stdout
    assert "[default: 8888]" in help_text
    docs = (Path(__file__).resolve().parents[2] / "docs" / "official-plugins.md").read_text()
    assert "http://127.0.0.1:8888/callback" in docs
