"""`conductor plugin setup spotify`: the authorization-code flow with PKCE through a loopback
redirect, ending in a refresh token stored 0600 for the spotify plugin's config."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import secrets
import threading
import webbrowser
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import urllib3

from conductor._files import write_atomic
from conductor.errors import ConductorError
from conductor.paths import config_dir

ACCOUNTS = "https://accounts.spotify.com"
SCOPES = "user-read-playback-state user-modify-playback-state user-read-currently-playing user-library-modify"
TOKEN_ENV = "SPOTIFY_REFRESH_TOKEN"


class SetupError(ConductorError):
    """The authorization did not complete."""


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

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/callback":
            self.send_error(404)
            return
        self.server.query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        body = b"Conductor: Spotify authorization received. You can close this window."
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.done.set()

    def log_message(self, *args: object) -> None:
        pass


class _CallbackServer(http.server.HTTPServer):
    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Callback)
        self.query: dict[str, str] = {}
        self.done = threading.Event()


def run_setup(
    client_id: str,
    accounts_base: str = ACCOUNTS,
    port: int = 0,
    open_browser: bool = True,
    timeout_s: float = 300,
    announce: object = print,
) -> SetupResult:
    """Authorize in the browser, exchange the code, store the refresh token (0600)."""
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(16)
    server = _CallbackServer(port)
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
        announce(f"Open this address to authorize Conductor with Spotify:\n{url}")  # type: ignore[operator]
        if open_browser:
            webbrowser.open(url)
        if not server.done.wait(timeout_s):
            raise SetupError(f"no authorization arrived at {redirect_uri} within {timeout_s:.0f} s")
    finally:
        server.shutdown()
        server.server_close()
    query = server.query
    if "error" in query:
        raise SetupError(f"Spotify refused the authorization: {query['error']}")
    if query.get("state") != state:
        raise SetupError(
            "the authorization's state does not match this request (possible forgery); try again"
        )
    if "code" not in query:
        raise SetupError("the redirect carried no authorization code")
    refresh_token = _exchange(accounts_base, client_id, query["code"], redirect_uri, verifier)
    path = token_file()
    write_atomic(path, (refresh_token + "\n").encode(), mode=0o600)
    lines = (
        f'[plugins.config.spotify]\nclient_id = "{client_id}"\nrefresh_token = "${{{TOKEN_ENV}}}"\n'
        + ("" if accounts_base == ACCOUNTS else f'accounts_base = "{accounts_base}"\n')
    )
    return SetupResult(path, lines)


def _exchange(
    accounts_base: str, client_id: str, code: str, redirect_uri: str, verifier: str
) -> str:
    http = urllib3.PoolManager(timeout=urllib3.Timeout(total=20), retries=False)
    try:
        response = http.request(
            "POST",
            f"{accounts_base.rstrip('/')}/api/token",
            body=urlencode(
                {
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect_uri,
                    "client_id": client_id,
                    "code_verifier": verifier,
                }
            ),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    except urllib3.exceptions.HTTPError as exc:
        raise SetupError(f"cannot reach {accounts_base}: {exc}") from exc
    try:
        document = json.loads(response.data)
    except ValueError:
        document = {}
    if response.status != 200 or "refresh_token" not in document:
        reason = (
            document.get("error_description") or document.get("error") or f"HTTP {response.status}"
        )
        raise SetupError(f"the token exchange failed: {reason}")
    return str(document["refresh_token"])
