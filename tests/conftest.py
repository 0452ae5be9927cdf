"""Shared fixtures: every test gets private XDG directories so nothing touches the user's home."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from conductor.plugins.runtime import PluginHost

# Property tests: `ci` (the default) runs a small, fixed set of examples so the suite stays short
# and repeatable; `make fuzz` (HYPOTHESIS_PROFILE=fuzz) runs thousands, freshly random.
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
settings.register_profile("fuzz", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Session fixtures that start real services: JACK; HTTP(S) and WebSocket servers; a headless
# desktop; OBS Studio.
pytest_plugins = [
    "tests.midi_helpers",
    "tests.servers",
    "tests.desktop",
    "tests.obs_studio",
    "tests.spotify_api",
]

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    for variable, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        (home / sub).mkdir(parents=True)
        monkeypatch.setenv(variable, str(home / sub))
    monkeypatch.setenv("HOME", str(home))
    for variable in ("CONDUCTOR_TRUST_STORE", "CONDUCTOR_KEY_PASSPHRASE", "SOURCE_DATE_EPOCH"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    return home


@pytest.fixture
def host(tmp_path: Path) -> Iterator[PluginHost]:
    """A plugin host with its own module cache, closed after the test."""
    plugin_host = PluginHost(tmp_path / "cache")
    yield plugin_host
    plugin_host.close()


Runner = Callable[..., subprocess.CompletedProcess[str]]


def _runner(module: str) -> Runner:
    def run(
        *args: str | os.PathLike[str],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        input: str | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", module, *map(str, args)],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=cwd,
            input=input,
            timeout=timeout,
        )

    return run


@pytest.fixture
def sign_cli() -> Runner:
    """`conductor-sign` as a real process (`python -m conductor_sign`)."""
    return _runner("conductor_sign")


@pytest.fixture
def conductor_cli() -> Runner:
    """`conductor` as a real process (`python -m conductor`)."""
    return _runner("conductor")
