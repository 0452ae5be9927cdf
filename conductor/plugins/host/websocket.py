"""WebSockets for plugins with the Network capability, on the `websockets` sync client.

Handles belong to the instance and survive between calls (a plugin keeps its connection); the
library's background thread answers pings while no call is running. Our own reader thread keeps
a bounded queue and closes the socket when it overflows, rather than silently dropping replies.
Connecting, sending and closing are bounded by the call's deadline: a peer that stops reading
gets its connection cut at the deadline (TIMEOUT), it never holds the plugin.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from dataclasses import dataclass
from typing import Any

import websockets.exceptions
import websockets.sync.client

from conductor._text import visible
from conductor.plugins.host import _net
from conductor.plugins.host._state import HostCallError, InstanceState
from conductor.plugins.host.codes import Code

MAX_HANDLES = 4
MAX_MESSAGE = 1024 * 1024
QUEUE_LIMIT = 256
CLOSE_TIMEOUT_S = 1.0  # closing outside a call (the instance is discarded)
# Besides the host's own, the handshake headers the client library derives from the request.
HANDSHAKE_HEADERS = (
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
)


@dataclass(frozen=True)
class ConnectRequest:
    url: str
    scheme: str
    host: str
    port: int
    headers: list[tuple[str, str]]
    subprotocols: list[str] | None
    timeout_ms: int | None


def parse_connect(document: dict[str, Any]) -> ConnectRequest:
    """The `ws_connect` request as the plugin sent it, or INVALID naming what is wrong."""
    url, scheme, host, port = _net.url_parts(document, ("ws", "wss"))
    host_owned = _net.host_owned_values(scheme, host, port, 0)
    host_owned.update(dict.fromkeys(HANDSHAKE_HEADERS, frozenset()))
    headers = _net.parse_headers(document.get("headers", []), host_owned)
    subprotocols = document.get("subprotocols")
    if subprotocols is not None and not (
        isinstance(subprotocols, list)
        and all(isinstance(p, str) and _net.is_token(p) for p in subprotocols)
    ):
        raise HostCallError(Code.INVALID, "subprotocols must be a list of HTTP tokens")
    timeout = document.get("timeout_ms")
    if timeout is not None and (type(timeout) is not int or timeout <= 0):
        raise HostCallError(Code.INVALID, "timeout_ms must be a positive integer")
    return ConnectRequest(url, scheme, host, port, headers, subprotocols, timeout)


class _Socket:
    def __init__(
        self, connection: websockets.sync.client.ClientConnection, exits: contextlib.ExitStack
    ) -> None:
        self.connection = connection
        self.exits = exits
        # Our own handle on the connection, for cutting it at a deadline (TLS detached the one
        # we connected); held only while the reader runs, so it never keeps the connection open.
        self.handle = connection.socket.dup()
        self.messages: collections.deque[bytes] = collections.deque()
        self.arrived = threading.Condition()
        self.closed_reason = ""
        self.overflowed = False  # the peer sent faster than the plugin read: closed with 1009
        self.reader = threading.Thread(target=self._read, name="conductor-ws", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        try:
            while True:
                message = self.connection.recv()
                data = message.encode("utf-8") if isinstance(message, str) else bytes(message)
                with self.arrived:
                    if len(self.messages) >= QUEUE_LIMIT:
                        self.overflowed = True
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
            if self.overflowed:
                self.connection.close(1009, "receive queue overflow")
            with self.arrived:
                self.closed_reason = self.closed_reason or "closed by the peer"
                self.arrived.notify_all()
            self.handle.close()  # the connection is over: let the TCP connection go too

    def cut(self) -> None:
        """End the connection now, whatever it is doing (a send blocked on a full buffer)."""
        _net.shutdown_socket(self.handle)

    def close(self) -> None:
        """Close 1000, for an instance that is discarded: outside any call's budget."""
        self.close_within(CLOSE_TIMEOUT_S)

    def close_within(self, budget_s: float) -> bool:
        """Close 1000 within `budget_s`; False when the peer had to be cut off instead."""
        # The watchdog decides; the library's own close timeout only backs it up.
        self.connection.close_timeout = budget_s + CLOSE_TIMEOUT_S
        watchdog = _net.Watchdog(budget_s, self.cut)
        try:
            self.connection.close(1000)
            self.exits.close()
            self.reader.join(timeout=budget_s)
        finally:
            watchdog.cancel()
            self.handle.close()
        return not watchdog.fired


def _socket_of(state: InstanceState, handle: int) -> _Socket:
    sock = state.resources.get(handle)
    if not isinstance(sock, _Socket):
        raise HostCallError(Code.INVALID, f"unknown WebSocket handle {handle}")
    return sock


def ws_connect(state: InstanceState, pointer: int, length: int) -> int:
    request = parse_connect(state.read_json(pointer, length))
    url, scheme, host = request.url, request.scheme, request.host
    decision = _net.admit(state, "ws_connect", url, scheme, host, request.port)
    open_handles = [h for h, r in state.resources.items() if isinstance(r, _Socket)]
    if len(open_handles) >= MAX_HANDLES:
        raise HostCallError(Code.TOO_BIG, f"at most {MAX_HANDLES} WebSockets per instance are open")
    raw = _net.connect(state, "ws_connect", url, host, request.port, request.timeout_ms, decision)
    handle = raw.dup()  # TLS detaches `raw`: the watchdog keeps its own reference
    watchdog: _net.Watchdog | None = None
    exits = contextlib.ExitStack()
    try:
        budget = state.budget(request.timeout_ms)
        raw.settimeout(budget)
        watchdog = _net.Watchdog(budget, lambda: _net.shutdown_socket(handle))
        # Entered as a context manager (the library's way) and left in _Socket.close().
        connection = exits.enter_context(
            websockets.sync.client.connect(
                url,
                sock=raw,
                ssl=_net.tls_context() if scheme == "wss" else None,
                server_hostname=host if scheme == "wss" else None,
                additional_headers=request.headers,
                subprotocols=request.subprotocols,  # type: ignore[arg-type]
                open_timeout=budget,
                max_size=MAX_MESSAGE,
                close_timeout=CLOSE_TIMEOUT_S,
                user_agent_header=None
                if any(k.lower() == "user-agent" for k, _ in request.headers)
                else "conductor",
            )
        )
        connection.socket.settimeout(None)
    except (OSError, websockets.exceptions.WebSocketException, ValueError) as exc:
        raw.close()
        if isinstance(exc, TimeoutError) or (watchdog is not None and watchdog.fired):
            raise HostCallError(Code.TIMEOUT, f"{url[:200]}: opening timed out") from None
        detail = visible(f"{type(exc).__name__}: {exc}")[:300]
        raise HostCallError(Code.IO, f"{url[:200]}: {detail}") from None
    except BaseException:
        raw.close()
        raise
    finally:
        if watchdog is not None:
            watchdog.cancel()
        handle.close()
    handle_number = max(state.resources, default=0) + 1
    ws = _Socket(connection, exits)
    state.resources[handle_number] = ws
    state.closers.append(ws.close)
    return handle_number


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
    # A frame cut off half-way cannot be resumed: at the deadline the connection goes.
    watchdog = _net.Watchdog(state.budget(), ws.cut)
    try:
        ws.connection.send(payload)
    except websockets.exceptions.ConnectionClosed:
        if not watchdog.fired:
            raise HostCallError(Code.CLOSED, f"WebSocket {handle} is closed") from None
    finally:
        watchdog.cancel()
    if watchdog.fired:
        raise HostCallError(
            Code.TIMEOUT,
            f"WebSocket {handle}: the peer did not take the message before the call's deadline; "
            "the connection was cut",
        )
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
    try:
        budget = state.budget()
    except HostCallError:  # no time left: cut it, free it, say so
        ws.cut()
        ws.close()
        raise
    if not ws.close_within(budget):
        raise HostCallError(
            Code.TIMEOUT,
            f"WebSocket {handle}: the peer did not complete the close before the call's "
            "deadline; the connection was cut and the handle freed",
        )
    return Code.OK
