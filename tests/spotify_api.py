"""A loopback stand-in for the Spotify Web API subset and the accounts service, recording every
request, with switches for the failures the plugin must handle."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest


class _Handler(http.server.BaseHTTPRequestHandler):
    server: SpotifyApi

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(
        self, status: int, document: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        body = b"" if document is None else json.dumps(document).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if document is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        api = self.server
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        record = {
            "method": self.command,
            "path": parts.path,
            "query": parse_qs(parts.query),
            "body": body,
            "authorization": self.headers.get("Authorization", ""),
        }
        with api.lock:
            api.requests.append(record)
        if parts.path == "/authorize":
            return self._authorize(parse_qs(parts.query))
        if parts.path == "/api/token":
            return self._token(parse_qs(body), record)
        with api.lock:
            forced = api.forced.pop(0) if api.forced else None
        if forced is not None:
            return self._reply(*forced)
        if record["authorization"] != f"Bearer {api.current_token}":
            return self._reply(
                401, {"error": {"status": 401, "message": "The access token expired"}}
            )
        if parts.path == "/v1/me/player" and self.command == "GET":
            return self._reply(200, api.player)
        if parts.path == "/v1/me/player/currently-playing":
            return self._reply(
                200, {"item": {"id": "track123", "name": "Test Song"}, "is_playing": True}
            )
        self._reply(204)

    def _authorize(self, query: dict[str, list[str]]) -> None:
        api = self.server
        api.challenge = query["code_challenge"][0]
        target = (
            query["redirect_uri"][0]
            + "?"
            + urlencode({"code": "auth-code-1", "state": query["state"][0]})
        )
        self._reply(302, None, {"Location": target})

    def _token(self, form: dict[str, list[str]], record: dict[str, Any]) -> None:
        api = self.server
        grant = form.get("grant_type", [""])[0]
        if grant == "authorization_code":
            verifier = form["code_verifier"][0]
            digest = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                .rstrip(b"=")
                .decode()
            )
            if digest != api.challenge or form["code"][0] != "auth-code-1":
                return self._reply(
                    400, {"error": "invalid_grant", "error_description": "PKCE check failed"}
                )
            return self._reply(
                200,
                {"access_token": "a", "refresh_token": "issued-refresh-token", "expires_in": 3600},
            )
        if form.get("refresh_token", [""])[0] != api.refresh_token:
            return self._reply(400, {"error": "invalid_grant"})
        with api.lock:
            api.issued += 1
            api.current_token = f"access-{api.issued}"
        self._reply(
            200,
            {
                "access_token": api.current_token,
                "token_type": "Bearer",
                "expires_in": api.expires_in,
            },
        )

    do_GET = do_POST = do_PUT = do_DELETE = _handle


class SpotifyApi(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.forced: list[tuple[int, Any, dict[str, str]]] = []
        self.refresh_token = "refresh-secret-value"
        self.current_token = ""
        self.issued = 0
        self.expires_in = 3600
        self.challenge = ""
        self.player: dict[str, Any] = {
            "is_playing": False,
            "shuffle_state": False,
            "repeat_state": "off",
            "device": {"id": "d1", "volume_percent": 50},
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def api_calls(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].startswith("/v1/")]

    def token_calls(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == "/api/token"]


@pytest.fixture
def spotify_api() -> Iterator[SpotifyApi]:
    server = SpotifyApi()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
