"""Loopback servers the host-function tests talk to: HTTP(S) with a local CA, and WebSockets.
Every server binds 127.0.0.1 and records what reached it."""

from __future__ import annotations

import http.server
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websockets.sync.server


@dataclass
class Recorded:
    requests: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _record(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.recorded.requests.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body": body,
            }
        )
        return body

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._route(self._record())

    do_POST = do_PUT = do_DELETE = do_GET

    def _route(self, body: bytes) -> None:
        path = self.path.split("?")[0]
        routes = self.server.routes
        if path in routes:
            routes[path](self, body)
        elif path == "/hello":
            self._send(200, b'{"hello": "world"}', {"Content-Type": "application/json"})
        elif path == "/echo":
            import json

            self._send(
                200,
                json.dumps(
                    {
                        "method": self.command,
                        "body": body.decode(),
                        "query": self.path.partition("?")[2],
                        "headers": dict(self.headers.items()),
                    }
                ).encode(),
            )
        elif path == "/binary":
            self._send(200, bytes(range(256)))
        elif path == "/big":
            self._send(200, b"x" * (5 * 1024 * 1024))
        elif path == "/missing":
            self._send(404, b"not here")
        elif path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.05)
        else:
            self._send(404, b"no route")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.recorded = Recorded()
        self.routes: dict[str, Any] = {}
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)

    def get_request(self) -> tuple[socket.socket, Any]:
        self.recorded.connections += 1
        return super().get_request()

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_http(tls: ssl.SSLContext | None = None) -> _Server:
    server = _Server(tls)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def http_server() -> Iterator[_Server]:
    server = start_http()
    yield server
    server.shutdown()


@pytest.fixture
def other_http_server() -> Iterator[_Server]:
    server = start_http()
    yield server
    server.shutdown()


@dataclass
class LocalCA:
    ca_file: Path
    cert_file: Path
    key_file: Path


@pytest.fixture(scope="session")
def local_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    """A throw-away CA and a server certificate for localhost and 127.0.0.1, made with openssl."""
    directory = tmp_path_factory.mktemp("ca")
    run = lambda *args: subprocess.run(args, cwd=directory, check=True, capture_output=True)  # noqa: E731
    run(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Conductor Test CA",
    )
    run(
        "openssl",
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    )
    (directory / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run(
        "openssl",
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    )
    return LocalCA(directory / "ca.pem", directory / "server.pem", directory / "server.key")


@pytest.fixture
def https_server(local_ca: LocalCA) -> Iterator[_Server]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(local_ca.cert_file, local_ca.key_file)
    server = start_http(context)
    yield server
    server.shutdown()


class WebSocketServer:
    """Echoes messages; `close` closes, `flood N` sends N messages, `ping` pings and records the pong."""

    def __init__(self) -> None:
        self.pongs = 0
        self.close_codes: list[int | None] = []
        self.connections = 0
        self.server = websockets.sync.server.serve(self._handle, "127.0.0.1", 0)
        self.port = self.server.socket.getsockname()[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _handle(self, connection: websockets.sync.server.ServerConnection) -> None:
        self.connections += 1
        try:
            for message in connection:
                if message == "close":
                    connection.close(1000, "bye")
                    break
                if isinstance(message, str) and message.startswith("flood"):
                    for index in range(int(message.split()[1])):
                        connection.send(f"flood {index}")
                    continue
                if message == "ping":
                    if connection.ping().wait(2):
                        self.pongs += 1
                    connection.send("pinged")
                    continue
                connection.send(
                    f"echo: {message}" if isinstance(message, str) else b"echo: " + message
                )
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:
            self.close_codes.append(connection.close_code)

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def ws_server() -> Iterator[WebSocketServer]:
    server = WebSocketServer()
    yield server
    server.stop()
