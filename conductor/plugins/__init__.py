"""Sandboxed WebAssembly plugins: loading one from a verified file (`load_plugin`), the shared
runtime and each plugin's own store (`PluginHost`, `Plugin`), their limits and capabilities, the
approvals remembered for them, and the operations `conductor plugin …` runs (inspect, execute
once, install, list).

Names are imported on first use: `import conductor.plugins.capabilities` does not load wasmtime.
"""

from typing import TYPE_CHECKING

from conductor._lazy import exports as _exports

if TYPE_CHECKING:
    from conductor.plugins.abi import EventContext, Metadata, ModuleAbi, RequestTemplate
    from conductor.plugins.capabilities import Capability, Risk
    from conductor.plugins.context import PluginContext
    from conductor.plugins.execution import Execution, execute_once
    from conductor.plugins.grants import Grant, GrantStore
    from conductor.plugins.inspection import Inspection, inspect_plugin
    from conductor.plugins.installed import Installation, InstalledPlugin, install, list_installed
    from conductor.plugins.limits import Limits
    from conductor.plugins.loader import (
        Approval,
        LoadedPlugin,
        LoadOptions,
        Prompt,
        load_plugin,
        plugin_name,
        resolve_plugin,
    )
    from conductor.plugins.runtime import CallResult, Plugin, PluginHost
    from conductor.plugins.sandbox import CapturedOutput, plugin_data_dir
    from conductor.plugins.scaffold import new_plugin

__all__ = [
    "Approval",
    "CallResult",
    "Capability",
    "CapturedOutput",
    "EventContext",
    "Execution",
    "Grant",
    "GrantStore",
    "Inspection",
    "Installation",
    "InstalledPlugin",
    "Limits",
    "LoadOptions",
    "LoadedPlugin",
    "Metadata",
    "ModuleAbi",
    "Plugin",
    "PluginContext",
    "PluginHost",
    "Prompt",
    "RequestTemplate",
    "Risk",
    "execute_once",
    "inspect_plugin",
    "install",
    "list_installed",
    "load_plugin",
    "new_plugin",
    "plugin_data_dir",
    "plugin_name",
    "resolve_plugin",
]

__getattr__ = _exports(
    __name__,
    {
        "abi": ("EventContext", "Metadata", "ModuleAbi", "RequestTemplate"),
        "capabilities": ("Capability", "Risk"),
        "context": ("PluginContext",),
        "execution": ("Execution", "execute_once"),
        "grants": ("Grant", "GrantStore"),
        "inspection": ("Inspection", "inspect_plugin"),
        "installed": ("Installation", "InstalledPlugin", "install", "list_installed"),
        "limits": ("Limits",),
        "loader": (
            "Approval",
            "LoadOptions",
            "LoadedPlugin",
            "Prompt",
            "load_plugin",
            "plugin_name",
            "resolve_plugin",
        ),
        "runtime": ("CallResult", "Plugin", "PluginHost"),
        "sandbox": ("CapturedOutput", "plugin_data_dir"),
        "scaffold": ("new_plugin",),
    },
)
