"""The engine: a config, its triggers, modes and actions, the dispatcher that turns a MIDI event
into plugin calls and native actions, and the workers that run them (`run_engine`).

Names are imported on first use: `import conductor.engine.config` loads no MIDI library."""

from typing import TYPE_CHECKING

from conductor._lazy import exports as _exports

if TYPE_CHECKING:
    from conductor.engine.check import ConfigCheck, check_config
    from conductor.engine.config import Config, load_config, parse_config
    from conductor.engine.devices import input_specs, resolve_devices
    from conductor.engine.dispatcher import Dispatcher, EventRecord, Reporter
    from conductor.engine.learn import Learned, Learner, listen
    from conductor.engine.native import NativeActions
    from conductor.engine.plugins import PluginFinding, load_config_plugins, options_for_one
    from conductor.engine.report import JsonReporter, LineReporter, LiveReporter
    from conductor.engine.runner import Engine, RunOptions, run_engine
    from conductor.engine.scheduler import Scheduler
    from conductor.engine.triggers import TriggerMatcher

__all__ = [
    "Config",
    "ConfigCheck",
    "Dispatcher",
    "Engine",
    "EventRecord",
    "JsonReporter",
    "Learned",
    "Learner",
    "LineReporter",
    "LiveReporter",
    "NativeActions",
    "PluginFinding",
    "Reporter",
    "RunOptions",
    "Scheduler",
    "TriggerMatcher",
    "check_config",
    "input_specs",
    "listen",
    "load_config",
    "load_config_plugins",
    "options_for_one",
    "parse_config",
    "resolve_devices",
    "run_engine",
]

__getattr__ = _exports(
    __name__,
    {
        "check": ("ConfigCheck", "check_config"),
        "config": ("Config", "load_config", "parse_config"),
        "devices": ("input_specs", "resolve_devices"),
        "dispatcher": ("Dispatcher", "EventRecord", "Reporter"),
        "learn": ("Learned", "Learner", "listen"),
        "native": ("NativeActions",),
        "plugins": ("PluginFinding", "load_config_plugins", "options_for_one"),
        "report": ("JsonReporter", "LineReporter", "LiveReporter"),
        "runner": ("Engine", "RunOptions", "run_engine"),
        "scheduler": ("Scheduler",),
        "triggers": ("TriggerMatcher",),
    },
)
