"""Helpers for plugin tests: a host, signed copies of fixtures, and loading under a policy."""

from __future__ import annotations

import shutil
from pathlib import Path

from nacl.signing import SigningKey

from conductor.plugins.limits import Limits
from conductor.plugins.loader import LoadedPlugin, LoadOptions, load_plugin
from conductor.plugins.runtime import PluginHost
from conductor.signing import Developer, SignaturePolicy, TrustStore, sign_plugin
from tests.conftest import FIXTURES

PLUGINS = FIXTURES / "plugins"


def fixture_path(name: str) -> Path:
    return PLUGINS / f"{name}.wasm"


def signed_copy(name: str, directory: Path, key: SigningKey, version: int = 2) -> Path:
    """Copy a fixture into `directory` and sign it there with `key`."""
    import datetime as dt

    target = directory / f"{name}.wasm"
    shutil.copyfile(fixture_path(name), target)
    signature = sign_plugin(
        target.read_bytes(),
        key,
        Developer("Test Author", "test@example.org"),
        dt.datetime.now(dt.UTC),
        version,
    )
    Path(f"{target}.sig").write_text(signature.to_json())
    return target


def load_unsigned(
    host: PluginHost, name: str, tmp_path: Path, limits: Limits | None = None, **kwargs
) -> LoadedPlugin:
    options = LoadOptions(
        policy=SignaturePolicy.UNSIGNED,
        trust_store=TrustStore(tmp_path / "trust.toml"),
        limits=limits or Limits(),
        **kwargs,
    )
    return load_plugin(host, fixture_path(name), options)
