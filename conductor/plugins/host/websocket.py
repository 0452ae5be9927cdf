"""WebSockets for plugins with the Network capability, on the `websockets` sync client.

Handles belong to the instance and survive between calls (a plugin keeps its connection); the
library's background thread answers pings while no call is running. Our own reader thread keeps
a bounded queue and closes the socket when it overflows, rather than silently dropping replies.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import threading
from typing import Any

import websockets.exceptions
import websockets.sync.client

from conductor.plugins.host import _net
from conductor.plugins.host._state import HostCallError, InstanceState
from conductor.plugins.host.codes import Code
from conductor.plugins.host.hosts import split_url
from conductor.plugins.host.http import check_host

MAX_HANDLES = 4
MAX_MESSAGE = 1024 * 1024
QUEUE_LIMIT = 256


class _Socket:
    def __init__(
        self, connection: websockets.sync.client.ClientConnection, exits: contextlib.ExitStack
    ) -> None:
        self.connection = connection
        self.exits = exits
        self.messages: collections.deque[bytes] = collections.deque()
        self.arrived = threading.Condition()
        self.closed_reason = ""
        self.reader = threading.Thread(target=self._read, name="conductor-ws", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        try:
            while True:
                message = self.connection.recv()
                data = message.encode("utf-8") if isinstance(message, str) else bytes(message)
                with self.arrived:
                    if len(self.messages) >= QUEUE_LIMIT:
                        self.closed_reason = (
                            f"receive queue overflow ({QUEUE_LIMIT} unread messages)"
                        )
                        break
                    self.messages.append(data)
                    self.arrived.notify_all()
        except websockets.exceptions.ConnectionClosed as closed:
            self.closed_reason = (
                self.closed_reason
                or f"closed by the peer ({closed.rcvd.code if closed.rcvd else 1006})"
            )
        except Exception as exc:  # a broken connection ends the reader; ws_recv reports CLOSED
            self.closed_reason = self.closed_reason or f"connection failed: {exc}"
        finally:
            if self.closed_reason.startswith("receive queue overflow"):
                self.connection.close(1009, "receive queue overflow")
            with self.arrived:
                self.closed_reason = self.closed_reason or "closed by the peer"
                self.arrived.notify_all()

    def close(self) -> None:
        self.connection.close(1000)
        self.exits.close()
        self.reader.join(timeout=1)


def _socket_of(state: InstanceState, handle: int) -> _Socket:
    sock = state.resources.get(handle)
    if not isinstance(sock, _Socket):
        raise HostCallError(Code.INVALID, f"unknown WebSocket handle {handle}")
    return sock


def ws_connect(state: InstanceState, pointer: int, length: int) -> int:
    request = state.read_json(pointer, length)
    url = request.get("url")
    if not isinstance(url, str):
        raise HostCallError(Code.INVALID, "url must be a string")
    try:
        scheme, host, port = split_url(url, ("ws", "wss"))
    except ValueError as exc:
        raise HostCallError(Code.INVALID, str(exc)) from None
    headers = request.get("headers", [])
    subprotocols = request.get("subprotocols")
    timeout = request.get("timeout_ms")
    if not isinstance(headers, list) or not all(
        isinstance(p, list) and len(p) == 2 for p in headers
    ):
        raise HostCallError(Code.INVALID, "headers must be a list of [name, value] pairs")
    if subprotocols is not None and not (
        isinstance(subprotocols, list) and all(isinstance(p, str) for p in subprotocols)
    ):
        raise HostCallError(Code.INVALID, "subprotocols must be a list of strings")
    if timeout is not None and (type(timeout) is not int or timeout <= 0):
        raise HostCallError(Code.INVALID, "timeout_ms must be a positive integer")
    check_host(state, "ws_connect", scheme, host, port, url)
    open_handles = [h for h, r in state.resources.items() if isinstance(r, _Socket)]
    if len(open_handles) >= MAX_HANDLES:
        raise HostCallError(Code.TOO_BIG, f"at most {MAX_HANDLES} WebSockets per instance are open")

    family, address = _net.resolve(host, port, state.budget(timeout))[0]
    budget = state.budget(timeout)
    raw = socket.socket(family, socket.SOCK_STREAM)
    raw.settimeout(budget)
    try:
        raw.connect((address, port))
        budget = state.budget(timeout)
        raw.settimeout(budget)
        watchdog = _net.Watchdog(budget, lambda: _net.shutdown_socket(raw))
        exits = contextlib.ExitStack()
        try:
            # Entered as a context manager (the library's way) and left in _Socket.close().
            connection = exits.enter_context(
                websockets.sync.client.connect(
                    url,
                    sock=raw,
                    ssl=_net.tls_context() if scheme == "wss" else None,
                    server_hostname=host if scheme == "wss" else None,
                    additional_headers=[(str(k), str(v)) for k, v in headers],
                    subprotocols=subprotocols,
                    open_timeout=budget,
                    max_size=MAX_MESSAGE,
                    close_timeout=1,
                    user_agent_header="conductor",
                )
            )
        finally:
            watchdog.cancel()
        raw.settimeout(None)
    except (OSError, websockets.exceptions.WebSocketException, TimeoutError) as exc:
        raw.close()
        if isinstance(exc, TimeoutError):
            raise HostCallError(Code.TIMEOUT, f"{url[:200]}: opening timed out") from None
        raise HostCallError(Code.IO, f"{url[:200]}: {type(exc).__name__}: {exc}") from None
    handle = max(state.resources, default=0) + 1
    ws = _Socket(connection, exits)
    state.resources[handle] = ws
    state.closers.append(ws.close)
    return handle


def ws_send(state: InstanceState, handle: int, pointer: int, length: int, flags: int) -> int:
    data = state.read(pointer, length, limit=MAX_MESSAGE)
    ws = _socket_of(state, handle)
    if ws.closed_reason:
        raise HostCallError(Code.CLOSED, f"WebSocket {handle}: {ws.closed_reason}")
    payload: Any
    if flags == 0:
        try:
            payload = data.decode("utf-8")
        except UnicodeDecodeError:
            raise HostCallError(
                Code.INVALID, "a text message must be UTF-8 (use flags 1 for binary)"
            ) from None
    elif flags == 1:
        payload = data
    else:
        raise HostCallError(Code.INVALID, "flags must be 0 (text) or 1 (binary)")
    try:
        ws.connection.send(payload)
    except websockets.exceptions.ConnectionClosed:
        raise HostCallError(Code.CLOSED, f"WebSocket {handle} is closed") from None
    return Code.OK


def ws_recv(state: InstanceState, handle: int, timeout_ms: int) -> int:
    ws = _socket_of(state, handle)
    wait = state.budget(timeout_ms if timeout_ms > 0 else None)
    with ws.arrived:
        ws.arrived.wait_for(lambda: ws.messages or ws.closed_reason, timeout=wait)
        if ws.messages:
            message = ws.messages.popleft()
        elif ws.closed_reason:
            raise HostCallError(Code.CLOSED, f"WebSocket {handle}: {ws.closed_reason}")
        else:
            raise HostCallError(
                Code.TIMEOUT, f"WebSocket {handle}: no message within {wait * 1000:.0f} ms"
            )
    return state.answer(message) if message else 0


def ws_close(state: InstanceState, handle: int) -> int:
    ws = _socket_of(state, handle)
    del state.resources[handle]
    if ws.close in state.closers:
        state.closers.remove(ws.close)
    ws.close()
    return Code.OK
