"""Loopback servers the host-function tests talk to: HTTP(S) with a local CA, and WebSockets.
Every server binds 127.0.0.1 and records what reached it."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import http.server
import socket
import ssl
import subprocess
import threading
import time
import zlib
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


class RawServer:
    """A TCP server on loopback that hands each connection to `serve` on its own thread, and
    records how many connections reached it and the first bytes each one sent."""

    def __init__(
        self,
        serve: Any,
        address: str = "127.0.0.1",
        receive_buffer: int | None = None,
    ) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if receive_buffer is not None:  # inherited by accepted sockets: a peer that fills up fast
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.listener.bind((address, 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.serve = serve
        self.connections = 0
        self.first_bytes: list[bytes] = []
        self.stopped = threading.Event()
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(connection)
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _handle(self, connection: socket.socket) -> None:
        try:
            self.serve(self, connection)
        except OSError:
            pass
        finally:
            connection.close()

    def read_head(self, connection: socket.socket) -> bytes:
        """Read up to the end of an HTTP request head; record what came first."""
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = connection.recv(4096)
            if not chunk:
                break
            head += chunk
        self.first_bytes.append(head[:200])
        return head

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()
        for connection in self._open:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def _record_and_close(server: RawServer, connection: socket.socket) -> None:
    """Whatever arrives first (an HTTP request, a TLS ClientHello) is recorded; then goodbye."""
    connection.settimeout(2)
    with contextlib.suppress(OSError):
        server.first_bytes.append(connection.recv(4096))


@pytest.fixture
def loopback_listener() -> Iterator[RawServer]:
    """Records every connection that reaches 127.0.0.1 on its port, and the bytes sent first."""
    server = RawServer(_record_and_close)
    yield server
    server.stop()


@pytest.fixture
def loopback6_listener() -> Iterator[RawServer]:
    """The same on ::1."""
    try:
        server = RawServer(_record_and_close, "::1")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    yield server
    server.stop()


def _stall_after_handshake(server: RawServer, connection: socket.socket) -> None:
    """Complete a WebSocket opening handshake, then never read again."""
    head = server.read_head(connection).decode("latin-1")
    key = next(
        line.split(":", 1)[1].strip()
        for line in head.split("\r\n")
        if line.lower().startswith("sec-websocket-key:")
    )
    accept = base64.b64encode(
        hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    ).decode()
    connection.sendall(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
        ).encode()
    )
    server.stopped.wait()


@pytest.fixture
def stalled_ws_server() -> Iterator[RawServer]:
    """A WebSocket peer that completes the handshake and stops reading (a small receive buffer,
    so a sender's buffers fill after a few MiB)."""
    server = RawServer(_stall_after_handshake, receive_buffer=4096)
    yield server
    server.stop()


GARBAGE_ANSWERS = {
    "/not-http": b"HELLO THERE\r\n\r\n",
    "/bad-status": b"HTTP/1.1 ninety-nine OK\r\nContent-Length: 0\r\n\r\n",
    "/status-out-of-range": b"HTTP/1.1 1000 Too Far\r\nContent-Length: 0\r\n\r\n",
    "/long-status-line": b"HTTP/1.1 200 " + b"O" * 70000 + b"\r\n\r\n",
    "/long-header": b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n",
    "/many-headers": b"HTTP/1.1 200 OK\r\n"
    + b"".join(b"X-%d: 1\r\n" % i for i in range(150))
    + b"Content-Length: 0\r\n\r\n",
    "/short-body": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this",
    "/bad-chunks": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnope\r\n",
    "/control-characters": b"HTTP/1.1 2\x1b[2J\x070 OK\r\n\r\n",
    "/nothing": b"",
    "/bad-location": b"HTTP/1.1 302 Found\r\nLocation: http://[::1\r\nContent-Length: 0\r\n\r\n",
    "/spaced-location": b"HTTP/1.1 302 Found\r\nLocation: /a b\x01\r\nContent-Length: 0\r\n\r\n",
    "/ftp-location": b"HTTP/1.1 302 Found\r\nLocation: ftp://x/\r\nContent-Length: 0\r\n\r\n",
}


@functools.cache
def gzip_bomb() -> bytes:
    """About 64 KiB of gzip that inflates to 64 MiB of zeros, as a complete HTTP answer."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    zeros = bytes(1024 * 1024)
    body = b"".join(packer.compress(zeros) for _ in range(64)) + packer.flush()
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
    return head % len(body) + body


def _answer_garbage(server: RawServer, connection: socket.socket) -> None:
    head = server.read_head(connection)
    path = head.split(b" ", 2)[1].decode("latin-1") if head.count(b" ") >= 2 else ""
    answer = gzip_bomb() if path == "/gzip-bomb" else GARBAGE_ANSWERS.get(path)
    connection.sendall(answer if answer is not None else b"HTTP/1.1 404 Not Found\r\n\r\n")
    connection.shutdown(socket.SHUT_WR)


@pytest.fixture
def garbage_http_server() -> Iterator[RawServer]:
    """Answers each path of GARBAGE_ANSWERS with what no HTTP server should send."""
    server = RawServer(_answer_garbage)
    yield server
    server.stop()
