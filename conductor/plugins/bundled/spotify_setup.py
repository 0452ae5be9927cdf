"""`conductor plugin setup spotify`: the authorization-code flow with PKCE through a loopback
redirect, ending in a refresh token stored 0600 for the spotify plugin's config."""

from __future__ import annotations

import base64
import errno
import hashlib
import hmac
import http.server
import json
import secrets
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import urllib3

from conductor._files import write_atomic
from conductor._text import visible
from conductor.errors import SetupError, UsageError
from conductor.paths import config_dir
from conductor.plugins.bundled.spotify_app import ACCOUNTS, CALLBACK_PORT, SCOPES, TOKEN_ENV

REQUEST_TIMEOUT_S = 10
EXCHANGE_TIMEOUT_S = 20
MAX_ANSWER_BYTES = 1024 * 1024
OUTSIDE_TEXT_CHARS = 300


@dataclass(frozen=True)
class SetupResult:
    token_file: Path
    config_lines: str


def token_file() -> Path:
    return config_dir() / "spotify-refresh-token"


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)[:96]
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


class _Callback(http.server.BaseHTTPRequestHandler):
    server: _CallbackServer
    timeout = REQUEST_TIMEOUT_S  # per connection: a preconnect that never speaks is dropped

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/callback":
            self._reply(404, "Not found.")
            return
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        if self.server.offer(query):
            try:
                self._reply(
                    200, "Conductor: Spotify authorization received. You can close this window."
                )
            finally:  # only now: the browser must get its answer before the flow moves on
                self.server.done.set()
        else:
            self._reply(400, "Conductor: this is not the answer to the pending authorization.")

    def _reply(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _CallbackServer(http.server.ThreadingHTTPServer):
    """Serves every connection on its own thread, so a stray or idle one never holds up the
    real redirect; only the first callback carrying this flow's `state` counts."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, port: int, state: str) -> None:
        super().__init__(("127.0.0.1", port), _Callback)
        self.state = state
        self.query: dict[str, str] = {}
        self.done = threading.Event()
        self._lock = threading.Lock()

    def offer(self, query: dict[str, str]) -> bool:
        """Take `query` if it answers this flow; anything else (a forged `?error=`, a scan, a
        second callback) is ignored and the wait goes on."""
        if not hmac.compare_digest(query.get("state", "").encode(), self.state.encode()):
            return False
        with self._lock:
            if self.query:
                return False
            self.query = query
            return True


def _listen(port: int, state: str) -> _CallbackServer:
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: a TCP port is 0-65535")
    try:
        return _CallbackServer(port, state)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SetupError(
                f"127.0.0.1:{port} is already in use (another set-up still running?): stop it, "
                f"or pass --port N and register http://127.0.0.1:N/callback in your Spotify app"
            ) from None
        raise SetupError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None


def _toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid TOML basic string


def run_setup(
    client_id: str,
    accounts_base: str = ACCOUNTS,
    port: int = CALLBACK_PORT,
    open_browser: bool = True,
    timeout_s: float = 300,
    announce: Callable[[str], None] = print,
) -> SetupResult:
    """Authorize in the browser, exchange the code, store the refresh token (0600).

    Waits at most `timeout_s` (wall time) for the redirect; callbacks without this flow's
    `state` are answered 400 and ignored.
    """
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(16)
    server = _listen(port, state)
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/callback"
    url = f"{accounts_base.rstrip('/')}/authorize?" + urlencode(
        {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": SCOPES,
            "code_challenge_method": "S256",
            "code_challenge": challenge,
            "state": state,
        }
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        announce(f"Open this address to authorize Conductor with Spotify:\n{url}")
        if open_browser:
            webbrowser.open(url)
        if not server.done.wait(timeout_s):
            raise SetupError(f"no authorization arrived at {redirect_uri} within {timeout_s:g} s")
    finally:
        server.shutdown()
        server.server_close()
    query = server.query
    if "error" in query:
        raise SetupError(f"Spotify refused the authorization: {_outside_text(query['error'])}")
    if not query.get("code"):
        raise SetupError("the redirect carried no authorization code")
    refresh_token = _exchange(accounts_base, client_id, query["code"], redirect_uri, verifier)
    path = token_file()
    write_atomic(path, (refresh_token + "\n").encode(), mode=0o600)
    lines = (
        f"[plugins.config.spotify]\nclient_id = {_toml_string(client_id)}\n"
        f'refresh_token = "${{{TOKEN_ENV}}}"\n'
        + ("" if accounts_base == ACCOUNTS else f"accounts_base = {_toml_string(accounts_base)}\n")
    )
    return SetupResult(path, lines)


def _outside_text(text: str) -> str:
    """A peer's text, shortened and with control characters made visible."""
    text = text if len(text) <= OUTSIDE_TEXT_CHARS else text[:OUTSIDE_TEXT_CHARS] + "…"
    return visible(text)


def _post_form(url: str, form: dict[str, str]) -> tuple[int, bytes]:
    http = urllib3.PoolManager(timeout=urllib3.Timeout(total=EXCHANGE_TIMEOUT_S), retries=False)
    try:
        response = http.request(
            "POST",
            url,
            body=urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            preload_content=False,
        )
        try:
            data = response.read(MAX_ANSWER_BYTES + 1)
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        raise SetupError(f"cannot reach {url}: {_outside_text(str(exc))}") from None
    if len(data) > MAX_ANSWER_BYTES:
        raise SetupError(f"{url} answered more than {MAX_ANSWER_BYTES} bytes")
    return response.status, data


def _exchange(
    accounts_base: str, client_id: str, code: str, redirect_uri: str, verifier: str
) -> str:
    url = f"{accounts_base.rstrip('/')}/api/token"
    status, data = _post_form(
        url,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "code_verifier": verifier,
        },
    )
    try:
        document = json.loads(data)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise SetupError(
            f"the token exchange failed: {url} answered HTTP {status} without a JSON object"
        )
    token = document.get("refresh_token")
    if status != 200 or not isinstance(token, str):
        reason = document.get("error_description") or document.get("error") or f"HTTP {status}"
        raise SetupError(f"the token exchange failed: {_outside_text(str(reason))}")
    if not token or not token.isascii() or not token.isprintable() or " " in token:
        raise SetupError(f"the token exchange failed: {url} answered an unusable refresh_token")
    return token
