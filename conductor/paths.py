"""Where Conductor keeps its files by default, per SPEC §2 (platformdirs gives macOS/Windows)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "conductor"


def config_dir() -> Path:
    """`$XDG_CONFIG_HOME/conductor` on Linux."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """`$XDG_DATA_HOME/conductor` on Linux."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def trust_store_path(flag: Path | None = None, configured: Path | None = None) -> Path:
    """Which trust store a command uses: `--trust-store`, else a config's `[plugins]
    trust_store`, else `$CONDUCTOR_TRUST_STORE`, else the config dir's `trusted_keys.toml`."""
    if flag is not None:
        return flag
    if configured is not None:
        return configured
    from_env = os.environ.get("CONDUCTOR_TRUST_STORE")
    if from_env:
        return Path(from_env).expanduser()
    return config_dir() / "trusted_keys.toml"


def grants_file() -> Path:
    return config_dir() / "grants.toml"


def plugins_dir() -> Path:
    return Path("~/.conductor/wasm-plugins").expanduser()


def module_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / "modules"
