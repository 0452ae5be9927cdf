"""`conductor check` as a library call: a config validated, every plugin it names loaded,
verified and initialised (and shut down again) without listening, and the one exit code of it
all (3 only when every refusal is an untrusted key, as for `run` and `verify`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conductor.engine.actions import label
from conductor.engine.config import Config, load_config
from conductor.engine.plugins import PluginFinding, load_config_plugins
from conductor.errors import ExitCode, overall_exit_code
from conductor.plugins.interrupts import main_thread_host


@dataclass(frozen=True)
class ConfigCheck:
    path: Path
    config: Config
    findings: tuple[PluginFinding, ...]
    strict: bool = False  # the config's warnings count as errors

    @property
    def failed_on_warnings(self) -> bool:
        return self.strict and bool(self.config.warnings)

    @property
    def exit_code(self) -> int:
        if self.failed_on_warnings:
            return ExitCode.FAILURE
        return overall_exit_code(
            finding.error.exit_code if finding.error is not None else ExitCode.OK
            for finding in self.findings
        )

    def plugin_rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for finding in self.findings:
            path = finding.key[0]
            if finding.loaded is not None:
                loaded = finding.loaded
                rows.append(
                    {
                        "plugin": loaded.plugin.name,
                        "path": str(path),
                        "used_at": finding.where,
                        "ok": True,
                        "version": loaded.metadata.version,
                        "signature": loaded.verdict.status.value,
                        "granted": sorted(c.value for c in loaded.plugin.granted),
                        "error": None,
                    }
                )
            elif finding.error is not None:
                rows.append(
                    {
                        "plugin": path.name.removesuffix(".wasm"),
                        "path": str(path),
                        "used_at": finding.where,
                        "ok": False,
                        "error": finding.error.diagnostics(),
                    }
                )
        return rows

    def to_json(self) -> dict[str, Any]:
        config = self.config
        return {
            "config": str(self.path),
            "ok": self.exit_code == ExitCode.OK,
            "strict": self.strict,
            "modes": [mode.name for mode in config.modes],
            "mappings": len(config.all_mappings()),
            "plugins": self.plugin_rows(),
            "warnings": [{"path": w.path, "message": w.message} for w in config.warnings],
            "user_rights": [
                {"path": path, "action": label(action)}
                for path, action in config.user_rights_actions()
            ],
        }


def check_config(
    path: Path,
    trust_store: Path | None = None,
    *,
    strict: bool = False,
    cache_dir: Path | None = None,
    on_config: Callable[[Config], None] | None = None,
) -> ConfigCheck:
    """Load the config at `path` (raises ConfigError when it is invalid), then each of its
    plugins: a plugin that does not load is a finding, not an error. `on_config` is told of the
    config before any plugin loads (to learn its secrets). SIGINT or SIGTERM while the plugins
    load raises Interrupted, also from inside a plugin's `init`."""
    config = load_config(path)
    if on_config is not None:
        on_config(config)
    with main_thread_host(cache_dir) as host:
        findings = load_config_plugins(host, config, trust_store, None)
        for finding in findings:
            if finding.loaded is not None:
                finding.loaded.plugin.shutdown()
    return ConfigCheck(path, config, tuple(findings), strict)
