"""What a user's Spotify app registration and config have to match: the accounts service, the
loopback redirect port, the scopes asked for, and the variable that carries the refresh token.

Kept apart from the set-up flow (`spotify_setup`, which needs an HTTP client and server) so the
command line can show these as defaults without importing the flow.
"""

from __future__ import annotations

ACCOUNTS = "https://accounts.spotify.com"
SCOPES = "user-read-playback-state user-modify-playback-state user-read-currently-playing user-library-modify"
TOKEN_ENV = "SPOTIFY_REFRESH_TOKEN"
CALLBACK_PORT = 8888  # the redirect URI http://127.0.0.1:8888/callback registered with Spotify
