"""The config file (SPEC §7): parse, validate every field, and report errors with the file,
the parser's line where it gives one, and the key path."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from conductor._files import TEXT_FILE_LIMIT, read_bytes
from conductor._redact import MIN_SECRET_LENGTH
from conductor._text import visible
from conductor.desktop import DesktopError, KeyMap, MouseButton, parse_keystroke
from conductor.desktop import unknown_keys_message as unknown_keys
from conductor.engine import actions as act
from conductor.engine import triggers as trg
from conductor.engine._fields import ConfigWarning, Fields, collecting_warnings, tagged, warn
from conductor.engine.conditions import modes_named, parse_condition
from conductor.errors import (
    CapabilityError,
    ConfigError,
    LimitError,
    PatternError,
    PolicyError,
)
from conductor.paths import plugins_dir
from conductor.plugins import bundled
from conductor.plugins.capabilities import Capability
from conductor.plugins.limits import Limits
from conductor.plugins.network.patterns import HostPattern
from conductor.signing import SignaturePolicy

MIDI = (0, 127)
CHANNEL = (0, 15)
PITCH_BEND = (0, 16383)
# Tables and arrays within one another: a real config needs about a dozen levels (a Sequence
# inside a Conditional inside a Repeat, with params); far more is an attack on the parser.
MAX_NESTING = 64


@dataclass(frozen=True)
class DeviceConfig:
    """One input: `[device]`, or one `[[devices]]` table. `name` picks the port (exact or a
    unique substring) and is how triggers' `device` and `--port` refer to it."""

    name: str | None = None
    auto_connect: bool = True
    auto_reconnect: bool = True


@dataclass(frozen=True)
class PluginsConfig:
    dir: Path = field(default_factory=plugins_dir)
    signature_policy: SignaturePolicy = SignaturePolicy.TRUSTED
    min_signature_version: int = 1  # 2 refuses v1 signatures (unauthenticated developer fields)
    trust_store: Path | None = None
    limits: Limits = field(default_factory=Limits)
    grants: dict[str, frozenset[Capability]] = field(default_factory=dict)
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, frozenset[str]] = field(default_factory=dict)  # values that came from ${VAR}
    hosts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    commands: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def all_secrets(self) -> frozenset[str]:
        """Every value that came from the environment, whichever plugin's table it is in."""
        return frozenset().union(*self.secrets.values())


@dataclass(frozen=True)
class Mapping:
    trigger: trg.Trigger
    action: act.Action
    description: str = ""
    where: str = ""


@dataclass(frozen=True)
class Mode:
    name: str
    color: str = ""
    mappings: tuple[Mapping, ...] = ()


@dataclass(frozen=True)
class Config:
    path: Path
    devices: tuple[DeviceConfig, ...]  # [device] or the [[devices]] tables, as written
    plugins: PluginsConfig
    advanced: trg.AdvancedSettings
    modes: tuple[Mode, ...]
    global_mappings: tuple[Mapping, ...]
    native: act.NativeSettings = field(default_factory=act.NativeSettings)
    # What loads but is likely not meant (unknown keys, …): `check` shows them, `run` logs them.
    warnings: tuple[ConfigWarning, ...] = ()

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def mode_index(self, name: str) -> int | None:
        return next((index for index, mode in enumerate(self.modes) if mode.name == name), None)

    def all_mappings(self) -> list[Mapping]:
        return [m for mode in self.modes for m in mode.mappings] + list(self.global_mappings)

    def warning_lines(self) -> list[str]:
        return [warning.line(str(self.path)) for warning in self.warnings]

    def user_rights_actions(self) -> list[tuple[str, act.Action]]:
        """(key path, action) of every action that runs commands or programs with the user's
        rights (Shell, Launch), for `check` to point out."""
        return [
            (f"{mapping.where}.action", action)
            for mapping in self.all_mappings()
            for action in act.flatten(mapping.action)
            if isinstance(action, act.USER_RIGHTS)
        ]


_SEED_HINT = (
    'TOML inline tables must stay on one line and use `key = value`, not `"key": value`: write '
    '`action = { WasmPlugin = { path = "...", params = { action = "play" } } }` on one line, or '
    'spell it as tables: [modes.mappings.action] type = "WasmPlugin" ... [modes.mappings.action.params] '
    'action = "play"'
)


def _parse_error(source: str, text: str, exc: tomllib.TOMLDecodeError) -> ConfigError:
    message = str(exc)
    match = re.search(r"\(at line (\d+), column (\d+)\)", message)
    reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
    where = f"{source}:{match.group(1)}" if match else source
    seed_style = re.search(r'^\s*"[^"\n]+"\s*:', text, re.MULTILINE) or re.search(
        r"=\s*\{[^}\n]*$", text, re.MULTILINE
    )
    hint = f"; {_SEED_HINT}" if seed_style else ""
    return ConfigError(f"{where}: invalid TOML: {reason}{hint}")


def load_config(path: Path) -> Config:
    """Read and validate a config file; any problem raises ConfigError naming file and key path."""
    data = read_bytes(path, "config file", TEXT_FILE_LIMIT)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: config file is not UTF-8") from exc
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    """Validate config text; errors are one line even when a key holds a line break. What loads
    but is likely not meant is in the result's `warnings`."""
    try:
        with collecting_warnings() as warnings:
            config = _parse_config(text, path)
    except ConfigError as exc:
        raise ConfigError(visible(exc.diagnostics())) from None
    return replace(config, warnings=tuple(warnings))


def _parse_config(text: str, path: Path) -> Config:
    source = str(path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _parse_error(source, text, exc) from None
    except RecursionError:
        raise ConfigError(
            f"{source}: invalid TOML: arrays or tables nested too deeply "
            f"(a config needs at most {MAX_NESTING} levels)"
        ) from None
    _check_nesting(document, source)
    _check_table_arrays(document, text, source)
    root = Fields(document, "", source)
    devices = _devices(root)
    plugins = _plugins(Fields(root.table_of("plugins"), "plugins", source), path.parent)
    advanced, native = _advanced(
        Fields(root.table_of("advanced_settings"), "advanced_settings", source)
    )
    _logging(Fields(root.table_of("logging"), "logging", source))
    context = _Context(source, plugins.limits)
    modes = tuple(
        _mode(Fields(table, f"modes[{i}]", source), context)
        for i, table in enumerate(root.array("modes"))
    )
    if not modes:
        modes = (Mode("Default"),)
    global_mappings = tuple(
        _mapping(Fields(table, f"global_mappings[{i}]", source), context)
        for i, table in enumerate(root.array("global_mappings"))
    )
    root.done()
    names = [mode.name for mode in modes]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ConfigError(f"{source}: modes[{index}].name: mode {name!r} is defined twice")
    config = Config(path, devices, plugins, advanced, modes, global_mappings, native)
    for mapping in config.all_mappings():
        _check_modes(mapping, names, source)
    _check_plugin_tables(config)
    return config


def _check_plugin_tables(config: Config) -> None:
    """A `[plugins.grants|hosts|commands|config]` entry for a plugin no mapping uses does
    nothing: most often a typo (`my-pads` for `my_pads`), so say which plugins there are."""
    used = sorted(
        {
            bundled.canonical_name(Path(action.path).name.removesuffix(".wasm"))
            for mapping in config.all_mappings()
            for action in act.plugin_actions(mapping.action)
        }
    )
    plugins = config.plugins
    for section, table in (
        ("grants", plugins.grants),
        ("hosts", plugins.hosts),
        ("commands", plugins.commands),
        ("config", plugins.config),
    ):
        for name in table:
            if name in used:
                continue
            close = difflib.get_close_matches(name, used, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            listed = ", ".join(used) or "none"
            warn(
                f"plugins.{section}.{name}",
                f"no mapping uses a plugin named {name!r} (plugins used: {listed}){hint}",
            )


def _check_modes(mapping: Mapping, names: list[str], source: str) -> None:
    """A ModeChange must name a mode; a ModeIs naming none is never true (a warning, since
    the reference accepts it)."""
    where = f"{mapping.where}.action"
    modes = ", ".join(names)
    for action in act.flatten(mapping.action):
        if isinstance(action, act.ModeChange) and action.mode not in names:
            raise ConfigError(
                f"{source}: {where}: ModeChange to unknown mode {action.mode!r} (modes: {modes})"
            )
        if isinstance(action, act.Conditional):
            for mode in modes_named(action.condition):
                if mode not in names:
                    warn(where, f"ModeIs {mode!r} names no mode, so it is never true ({modes})")


def _check_nesting(document: dict[str, Any], source: str) -> None:
    """Refuse tables and arrays nested deeper than MAX_NESTING before anything walks them
    recursively. Dotted keys (`a.b.c…`) nest without brackets, so the parser alone cannot."""
    pending: list[tuple[Any, str, int]] = [(document, "", 0)]
    while pending:
        value, path, depth = pending.pop()
        if depth > MAX_NESTING:
            raise ConfigError(
                f"{source}: {path}: nested more than {MAX_NESTING} levels deep; no config needs that"
            )
        if isinstance(value, dict):
            for key, item in value.items():
                pending.append((item, f"{path}.{key}" if path else str(key), depth + 1))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                pending.append((item, f"{path}[{index}]", depth + 1))


def _mode_changes(action: act.Action) -> list[str]:
    return [inner.mode for inner in act.flatten(action) if isinstance(inner, act.ModeChange)]


def _check_table_arrays(document: dict[str, Any], text: str, source: str) -> None:
    """Sections that are lists of tables (`[[modes]]`), written as one table: say which
    brackets to write. The product page's example has `[[modes.mappings]]` with no `[[modes]]`
    above it, which TOML reads as a table `modes` holding only `mappings`."""
    for section, example in _TABLE_ARRAYS.items():
        value = document.get(section)
        if not isinstance(value, dict):
            continue
        if section == "modes" and "name" not in value and "mappings" in value:
            at = _line_of(text, r"\[\[\s*modes\s*\.\s*mappings\s*\]\]")
            raise ConfigError(
                f"{source}: modes: [[modes.mappings]]{at} belongs to a mode, but no [[modes]] entry "
                "comes before it; add these two lines above the first [[modes.mappings]]: "
                '[[modes]] and name = "Default"'
            )
        at = _line_of(text, rf"\[\s*{section}\s*\]")
        raise ConfigError(
            f"{source}: {section}: expected a list of tables, got one table: write "
            f"[[{section}]] (two brackets){at} for each entry; {example}"
        )


_TABLE_ARRAYS = {
    "modes": "a config has a list of modes",
    "global_mappings": "each [[global_mappings]] table is one mapping",
    "devices": "one [[devices]] table per input, or [device] for just one",
}


def _line_of(text: str, header: str) -> str:
    """' (line N)' for the first line that is this table header, else ''."""
    match = re.search(rf"^[ \t]*{header}", text, re.MULTILINE)
    return f" (line {text.count(chr(10), 0, match.start()) + 1})" if match else ""


def _devices(root: Fields) -> tuple[DeviceConfig, ...]:
    """`[device]` (one input) or `[[devices]]` (several, each named), never both."""
    root.used.update(("device", "devices"))  # both are known keys, whichever is written
    if root.has("device") and root.has("devices"):
        raise root.error(
            "devices",
            "[device] and [[devices]] are both set: use [device] for one input, or one "
            "[[devices]] table per input",
        )
    if not root.has("devices"):
        if not root.has("device"):
            return ()
        return (_device(Fields(root.table_of("device"), "device", root.source), False),)
    devices = tuple(
        _device(Fields(table, f"devices[{index}]", root.source), True)
        for index, table in enumerate(root.array("devices"))
    )
    names = [device.name for device in devices]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise root.error(f"devices[{index}].name", f"device {name!r} is listed twice")
    return devices


def _device(fields: Fields, named: bool) -> DeviceConfig:
    result = DeviceConfig(
        name=fields.required_string("name") if named else fields.string("name"),
        auto_connect=fields.boolean("auto_connect", True),
        auto_reconnect=fields.boolean("auto_reconnect", True),
    )
    if named and not result.name:
        raise fields.error("name", "must not be empty")
    fields.done()
    return result


def _limits(fields: Fields, base: Limits) -> Limits:
    try:
        return base.with_overrides(fields.table, fields.path)
    except LimitError as exc:
        raise ConfigError.at(fields.source, exc) from exc


def _capability_list(fields: Fields, key: str) -> frozenset[Capability]:
    value = fields.raw(key)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise fields.error(key, 'expected a list of capability names, as in ["Filesystem"]')
    try:
        return frozenset(Capability.parse(item) for item in value)
    except CapabilityError as exc:
        raise ConfigError.at(fields.where(key), exc) from exc


def _plugins(fields: Fields, base_dir: Path) -> PluginsConfig:
    directory = fields.string("dir")
    policy_name = fields.string("signature_policy", "trusted") or "trusted"
    try:
        policy = SignaturePolicy.parse(policy_name, fields.key_path("signature_policy"))
    except PolicyError as exc:
        raise ConfigError.at(fields.source, exc) from exc
    min_version = fields.integer("min_signature_version", 1, 1, 2, "a signature format version")
    trust_store = fields.string("trust_store")
    limits = _limits(
        Fields(fields.table_of("limits"), fields.key_path("limits"), fields.source), Limits()
    )
    grants_fields = Fields(fields.table_of("grants"), fields.key_path("grants"), fields.source)
    grants = {name: _capability_list(grants_fields, name) for name in list(grants_fields.table)}
    config_table: dict[str, dict[str, Any]] = {}
    secrets: dict[str, frozenset[str]] = {}
    for name, table in fields.table_of("config").items():
        if not isinstance(table, dict):
            raise fields.error(f"config.{name}", "expected a table of settings for the plugin")
        found: set[str] = set()
        config_table[name] = _substitute(
            table, f"{fields.key_path('config')}.{name}", fields.source, found
        )
        secrets[name] = frozenset(found)
    hosts = _string_lists(
        Fields(fields.table_of("hosts"), fields.key_path("hosts"), fields.source),
        'a list of host patterns such as "https://api.example.com"',
    )
    for name, patterns in hosts.items():
        for index, pattern in enumerate(patterns):
            try:
                HostPattern.parse(pattern)
            except PatternError as exc:
                where = f"{fields.source}: {fields.key_path('hosts')}.{name}[{index}]"
                raise ConfigError.at(where, exc) from exc
    commands = _string_lists(
        Fields(fields.table_of("commands"), fields.key_path("commands"), fields.source),
        'a list of command names such as "notify-send"',
    )
    fields.done()

    def resolve(value: str | None) -> Path | None:
        if value is None:
            return None
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else base_dir / candidate

    return PluginsConfig(
        dir=resolve(directory) or plugins_dir(),
        signature_policy=policy,
        min_signature_version=min_version or 1,
        trust_store=resolve(trust_store),
        limits=limits,
        grants=grants,
        config=config_table,
        secrets=secrets,
        hosts=hosts,
        commands=commands,
    )


def _string_lists(fields: Fields, what: str) -> dict[str, tuple[str, ...]]:
    result = {}
    for name in list(fields.table):
        value = fields.raw(name)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise fields.error(name, f"expected {what}")
        result[name] = tuple(value)
    return result


_VARIABLE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _substitute(value: Any, path: str, source: str, secrets: set[str]) -> Any:
    """Replace `${VAR}` with the environment's value (recorded as a secret); `$${` is a literal `${`."""
    if isinstance(value, dict):
        return {
            key: _substitute(item, f"{path}.{key}", source, secrets) for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            _substitute(item, f"{path}[{index}]", source, secrets)
            for index, item in enumerate(value)
        ]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        variable = match.group(1)
        if variable not in os.environ:
            raise ConfigError(f"{source}: {path}: environment variable {variable} is not set")
        secret = os.environ[variable]
        if 0 < len(secret) < MIN_SECRET_LENGTH:
            warn(
                path,
                f"the value of ${{{variable}}} has {len(secret)} character(s), too short to "
                f"redact safely (at least {MIN_SECRET_LENGTH}): it is not hidden in logs and "
                "errors",
            )
        secrets.add(secret)
        return secret

    return _VARIABLE.sub(replace, value)


def _advanced(fields: Fields) -> tuple[trg.AdvancedSettings, act.NativeSettings]:
    shutdown_ms = fields.integer("shutdown_timeout_ms", 2000, 0, 600_000)
    result = trg.AdvancedSettings(
        chord_timeout_ms=fields.integer("chord_timeout_ms", 50, 1, 10_000) or 50,
        double_tap_timeout_ms=fields.integer("double_tap_timeout_ms", 300, 1, 10_000) or 300,
        hold_threshold_ms=fields.integer("hold_threshold_ms", 2000, 1, 60_000) or 2000,
        shutdown_timeout_ms=2000 if shutdown_ms is None else shutdown_ms,
    )
    try:
        keymap = KeyMap.from_setting(fields.string("cmd_key", "super") or "super")
    except DesktopError as exc:
        raise ConfigError.at(fields.where("cmd_key"), exc) from exc
    shell_timeout = fields.integer("shell_timeout_ms", 60_000, 1, 86_400_000, "a timeout in ms")
    native = act.NativeSettings(keymap, shell_timeout or 60_000)
    fields.done()
    return result, native


def _logging(fields: Fields) -> None:
    """The reference's `[logging]`: read so its keys are known, and not used (`run` logs to
    stderr; `--log-format` picks the form)."""
    fields.string("level")
    fields.string("file")
    fields.done()


@dataclass(frozen=True)
class _Context:
    source: str
    limits: Limits


def _mode(fields: Fields, context: _Context) -> Mode:
    name = fields.required_string("name")
    color = fields.string("color", "") or ""
    mappings = tuple(
        _mapping(Fields(table, f"{fields.path}.mappings[{i}]", context.source), context)
        for i, table in enumerate(fields.array("mappings"))
    )
    fields.done()
    return Mode(name, color, mappings)


def _mapping(fields: Fields, context: _Context) -> Mapping:
    if not fields.has("trigger"):
        raise fields.error("trigger", "is required")
    if not fields.has("action"):
        raise fields.error("action", "is required")
    trigger = _trigger(fields.raw("trigger"), fields.key_path("trigger"), context.source)
    action = _action(fields.raw("action"), fields.key_path("action"), context)
    if act.weight(action) > act.MAX_ACTIONS_PER_EVENT:
        raise fields.error(
            "action",
            f"runs {act.weight(action)} actions per event, repetitions multiplied out "
            f"(at most {act.MAX_ACTIONS_PER_EVENT})",
        )
    description = fields.string("description", "") or ""
    fields.done()
    return Mapping(trigger, action, description, fields.path)


def _trigger(value: Any, path: str, source: str) -> trg.Trigger:
    kind, f = tagged(value, path, source, trg.TRIGGER_KINDS)
    if kind.startswith("Gamepad"):
        gamepad = _gamepad_trigger(kind, f)
        f.done()
        return gamepad
    channel = f.integer("channel", None, *CHANNEL, what="a MIDI channel")
    device = f.string("device")
    if device is not None and not device.strip():
        raise f.error("device", "must name an input (its name, or a unique part of it)")
    result: trg.MidiTrigger
    if kind == "Note":
        result = trg.Note(
            f.required_integer("note", *MIDI, "a MIDI note"),
            f.integer("velocity_min", 1, *MIDI, "a velocity") or 0,
            channel,
            device,
        )
    elif kind == "VelocityRange":
        soft = f.integer("soft_max", 40, *MIDI, "a velocity")
        medium = f.integer("medium_max", 80, *MIDI, "a velocity")
        assert soft is not None and medium is not None
        if soft >= medium:
            raise f.error("medium_max", f"must be greater than soft_max ({soft})")
        level = f.string("level")  # without it (the reference's form) every velocity fires
        if level is not None and level.lower() not in trg.VELOCITY_LEVELS:
            raise f.error("level", f"{level!r} is not one of {', '.join(trg.VELOCITY_LEVELS)}")
        result = trg.VelocityRange(
            f.required_integer("note", *MIDI, "a MIDI note"),
            level.lower() if level is not None else None,
            soft,
            medium,
            channel,
            device,
        )
    elif kind == "LongPress":
        result = trg.LongPress(
            f.required_integer("note", *MIDI, "a MIDI note"),
            f.integer("duration_ms", None, 1, 60_000, "a duration in ms"),
            channel,
            device,
        )
    elif kind == "DoubleTap":
        result = trg.DoubleTap(
            f.required_integer("note", *MIDI, "a MIDI note"),
            f.integer("timeout_ms", None, 1, 10_000, "a timeout in ms"),
            channel,
            device,
        )
    elif kind == "NoteChord":
        notes = _numbers(f, "notes", MIDI, "a MIDI note", 2, "a chord needs at least two notes")
        result = trg.NoteChord(
            notes, f.integer("timeout_ms", None, 1, 10_000, "a timeout in ms"), channel, device
        )
    elif kind == "CC":
        result = trg.CC(
            f.required_integer("cc", *MIDI, "a controller number"),
            f.integer("value_min", 0, *MIDI, "a controller value") or 0,
            channel,
            device,
        )
    elif kind == "EncoderTurn":
        # The reference spells the directions Clockwise and CounterClockwise; without one, a turn
        # either way fires.
        direction = f.string("direction")
        if direction is not None and direction.lower() not in trg.ENCODER_DIRECTIONS:
            raise f.error(
                "direction", f"{direction!r} is not one of {', '.join(trg.ENCODER_DIRECTIONS)}"
            )
        result = trg.EncoderTurn(
            f.required_integer("cc", *MIDI, "a controller number"),
            direction.lower() if direction is not None else None,
            channel,
            device,
        )
    elif kind == "PitchBend":
        # The reference's 14-bit units: 0 is fully down, 8192 the centre, 16383 fully up.
        low = f.integer("value_min", 0, *PITCH_BEND, "a pitch bend value (8192 is the centre)")
        high = f.integer("value_max", 16383, *PITCH_BEND, "a pitch bend value (8192 is the centre)")
        assert low is not None and high is not None
        if low > high:
            raise f.error("value_max", f"must not be below value_min ({low})")
        result = trg.PitchBend(low, high, channel, device)
    elif kind == "ProgramChange":
        result = trg.ProgramChange(
            f.required_integer("program", *MIDI, "a program number"), channel, device
        )
    else:
        result = trg.Aftertouch(
            f.integer("pressure_min", 0, *MIDI, "a pressure") or 0, channel, device
        )
    f.done()
    return result


GAMEPAD_BUTTONS = (128, 255)  # the reference's ids, above MIDI's 0-127
GAMEPAD_AXES = (128, 131)
GAMEPAD_ANALOG_TRIGGERS = (132, 133)


def _gamepad_trigger(kind: str, f: Fields) -> trg.GamepadInput:
    """The reference's gamepad triggers, validated by its rules (they never fire here)."""
    if kind == "GamepadButton":
        return trg.GamepadButton(
            f.required_integer("button", *GAMEPAD_BUTTONS, "a gamepad button id"),
            f.integer("velocity_min", None, *MIDI, "a velocity"),
        )
    if kind == "GamepadButtonChord":
        return trg.GamepadButtonChord(
            _numbers(f, "buttons", GAMEPAD_BUTTONS, "a gamepad button id", 1, "list at least one"),
            f.integer("timeout_ms", None, 1, 10_000, "a timeout in ms"),
        )
    if kind == "GamepadAnalogStick":
        direction = f.string("direction")
        # The reference spells them Clockwise and CounterClockwise.
        if direction is not None and direction.lower() not in ("clockwise", "counterclockwise"):
            raise f.error("direction", f"{direction!r} is not one of clockwise, counterclockwise")
        return trg.GamepadAnalogStick(
            f.required_integer("axis", *GAMEPAD_AXES, "a gamepad stick axis id"),
            direction.lower() if direction is not None else None,
        )
    trigger = f.required_integer("trigger", *GAMEPAD_ANALOG_TRIGGERS, "a gamepad trigger id")
    return trg.GamepadTrigger(trigger, f.integer("threshold", None, *MIDI, "a threshold"))


def _numbers(
    f: Fields, key: str, bounds: tuple[int, int], label: str, least: int, too_few: str
) -> tuple[int, ...]:
    """A list of at least `least` integers within `bounds`."""
    values = f.array(key)
    if len(values) < least:
        raise f.error(key, too_few)
    low, high = bounds
    for index, item in enumerate(values):
        if type(item) is not int or not low <= item <= high:
            raise f.error(f"{key}[{index}]", f"{item!r} is not {label} ({low}-{high})")
    return tuple(values)


def _action(value: Any, path: str, context: _Context) -> act.Action:
    kind, f = tagged(value, path, context.source, act.ACTION_KINDS)
    result = _ACTION_READERS[kind](f, context)
    f.done()
    return result


def _wasm_plugin(f: Fields, context: _Context) -> act.Action:
    plugin_path = f.required_string("path")
    params = f.table_of("params")
    if "context" in params:
        raise f.error("params.context", "'context' is reserved: the engine fills it with the event")
    limits_table = f.table_of("limits")
    limits = (
        _limits(Fields(limits_table, f.key_path("limits"), context.source), context.limits)
        if limits_table
        else None
    )
    return act.WasmPlugin(plugin_path, params, limits)


def _sequence(f: Fields, context: _Context) -> act.Action:
    children = f.array("actions")
    if not children:
        raise f.error("actions", "a Sequence needs at least one action")
    return act.Sequence(
        tuple(
            _action(child, f"{f.key_path('actions')}[{i}]", context)
            for i, child in enumerate(children)
        )
    )


def _send_midi(f: Fields, context: _Context) -> act.Action:
    port = f.required_string("port")
    spelling = f.required_string("message_type")
    message_type = act.send_midi_type(spelling)
    if message_type is None:
        raise f.error("message_type", f"{spelling!r} is not one of {act.SEND_MIDI_TYPE_NAMES}")
    channel = f.integer("channel", 0, *CHANNEL, "a MIDI channel") or 0
    virtual = f.boolean("virtual", False)
    values = []
    for midi_field in act.SEND_MIDI_FIELDS[message_type]:
        given = [name for name in midi_field.names if f.has(name)]
        if len(given) > 1:
            raise f.error(given[1], f"give one of {' or '.join(given)}, not both")
        name = given[0] if given else midi_field.names[0]
        number = f.integer(
            name, midi_field.default, midi_field.low, midi_field.high, f"a valid {name}"
        )
        values.append((midi_field.keyword, midi_field.default if number is None else number))
    used_here = {
        name for midi_field in act.SEND_MIDI_FIELDS[message_type] for name in midi_field.names
    }
    for other in sorted(_SEND_MIDI_FIELD_NAMES - used_here):
        if f.has(other):
            f.raw(other)  # a field of another message type: known, but not used by this one
            f.warn(other, f"not used by a {spelling} message; ignored")
    return act.SendMidi(port, message_type, channel, tuple(values), virtual)


_SEND_MIDI_FIELD_NAMES = frozenset(
    name for fields in act.SEND_MIDI_FIELDS.values() for field_ in fields for name in field_.names
)


def _keystroke(f: Fields, context: _Context) -> act.Action:
    keys = f.required_string("keys")
    if not keys.strip():
        raise f.error("keys", "names no key")
    modifiers = f.array("modifiers")
    if not all(isinstance(name, str) for name in modifiers):
        raise f.error("modifiers", 'expected a list of modifier names, as in ["cmd", "shift"]')
    combo, unknown = parse_keystroke(keys, modifiers)
    if unknown:
        f.warn("keys", f"{unknown_keys(unknown)}; ignored, as the reference does")
    if not combo.keys and not combo.modifiers:
        f.warn("keys", f"nothing to press in {keys!r}: the action does nothing")
    return act.Keystroke(combo)


def _text(f: Fields, context: _Context) -> act.Action:
    text = f.required_string("text")
    if not text:
        raise f.error("text", "is empty: nothing to type")
    return act.Text(text)


def _launch(f: Fields, context: _Context) -> act.Action:
    app = f.required_string("app")
    if not app.strip() or any(ord(c) < 0x20 for c in app):
        raise f.error("app", f"{app!r} is not an application name or path")
    return act.Launch(app)


def _shell(f: Fields, context: _Context) -> act.Action:
    command = f.required_string("command")
    if not command.strip():
        raise f.error("command", "is empty: nothing to run")
    return act.Shell(command)


def _mouse_click(f: Fields, context: _Context) -> act.Action:
    name = f.string("button", "left") or "left"
    try:
        button = MouseButton.parse(name)
    except DesktopError as exc:
        raise ConfigError.at(f.where("button"), exc) from exc
    x = f.integer("x", None, -(2**31), 2**31 - 1, "a screen coordinate")
    y = f.integer("y", None, -(2**31), 2**31 - 1, "a screen coordinate")
    if (x is None) != (y is None):
        f.warn("x" if x is not None else "y", "a click moves only with both x and y; ignored")
        x = y = None
    return act.MouseClick(button, x, y)


def _volume_control(f: Fields, context: _Context) -> act.Action:
    spelling = f.required_string("operation")
    operation = next((op for op in act.VOLUME_OPERATIONS if op.lower() == spelling.lower()), None)
    if operation is None:
        raise f.error("operation", f"{spelling!r} is not one of {', '.join(act.VOLUME_OPERATIONS)}")
    value = f.integer("value", None, 0, 100, "a volume in percent")
    if operation == "Set" and value is None:
        f.warn(
            "value",
            f"Set without a value sets the volume to {act.VOLUME_SET_DEFAULT} %, as the "
            "reference does",
        )
        value = act.VOLUME_SET_DEFAULT
    elif operation in ("Mute", "Unmute") and value is not None:
        f.warn("value", f"not used by {operation}; ignored")
    elif value is None:
        value = act.VOLUME_STEP
    return act.VolumeControl(operation, value)


def _repeat(f: Fields, context: _Context) -> act.Action:
    if not f.has("action"):
        raise f.error("action", "is required (the action to repeat)")
    inner = _action(f.raw("action"), f.key_path("action"), context)
    count = f.required_integer("count", 1, act.MAX_ACTIONS_PER_EVENT, "a repetition count")
    delay = f.integer("delay_ms", 0, 0, 600_000, "a delay in ms") or 0
    return act.Repeat(inner, count, delay)


def _conditional(f: Fields, context: _Context) -> act.Action:
    for key in ("condition", "then_action"):
        if not f.has(key):
            raise f.error(key, "is required")
    condition = parse_condition(f.raw("condition"), f.key_path("condition"), context.source)
    then_action = _action(f.raw("then_action"), f.key_path("then_action"), context)
    else_action = (
        _action(f.raw("else_action"), f.key_path("else_action"), context)
        if f.has("else_action")
        else None
    )
    return act.Conditional(condition, then_action, else_action)


_ACTION_READERS: dict[str, Callable[[Fields, _Context], act.Action]] = {
    "WasmPlugin": _wasm_plugin,
    "ModeChange": lambda f, _: act.ModeChange(f.required_string("mode")),
    "Sequence": _sequence,
    "Delay": lambda f, _: act.Delay(f.required_integer("ms", 0, 600_000, "a delay in ms")),
    "SendMidi": _send_midi,
    "Keystroke": _keystroke,
    "Text": _text,
    "Launch": _launch,
    "Shell": _shell,
    "MouseClick": _mouse_click,
    "VolumeControl": _volume_control,
    "Repeat": _repeat,
    "Conditional": _conditional,
}
