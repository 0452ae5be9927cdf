"""The config file (SPEC §7): parse, validate every field, and report errors with the file,
the parser's line where it gives one, and the key path."""

from __future__ import annotations

import logging
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conductor._files import TEXT_FILE_LIMIT, read_bytes
from conductor._redact import MIN_SECRET_LENGTH
from conductor._text import visible
from conductor.engine import actions as act
from conductor.engine import triggers as trg
from conductor.engine._fields import Fields, tagged
from conductor.errors import ConductorError, ConfigError
from conductor.paths import plugins_dir
from conductor.plugins.capabilities import Capability
from conductor.plugins.host.hosts import HostPattern, PatternError
from conductor.plugins.limits import Limits
from conductor.signing import SignaturePolicy

MIDI = (0, 127)
CHANNEL = (0, 15)
# Tables and arrays within one another: a real config needs about a dozen levels (a Sequence
# inside a Conditional inside a Repeat, with params); far more is an attack on the parser.
MAX_NESTING = 64
_log = logging.getLogger("conductor.config")


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

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def mode_index(self, name: str) -> int | None:
        return next((index for index, mode in enumerate(self.modes) if mode.name == name), None)

    def all_mappings(self) -> list[Mapping]:
        return [m for mode in self.modes for m in mode.mappings] + list(self.global_mappings)


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
    """Validate config text; errors are one line even when a key holds a line break."""
    try:
        return _parse_config(text, path)
    except ConfigError as exc:
        raise ConfigError(visible(exc.diagnostics())) from None


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
    advanced = _advanced(Fields(root.table_of("advanced_settings"), "advanced_settings", source))
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
    config = Config(path, devices, plugins, advanced, modes, global_mappings)
    for mapping in config.all_mappings():
        for target in _mode_changes(mapping.action):
            if target not in names:
                raise ConfigError(
                    f"{source}: {mapping.where}.action: ModeChange to unknown mode {target!r} "
                    f"(modes: {', '.join(names)})"
                )
    return config


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
    except ConductorError as exc:
        raise ConfigError(f"{fields.source}: {exc.diagnostics()}") from None


def _capability_list(fields: Fields, key: str) -> frozenset[Capability]:
    value = fields.raw(key)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise fields.error(key, 'expected a list of capability names, as in ["Filesystem"]')
    try:
        return frozenset(Capability.parse(item) for item in value)
    except ConductorError as exc:
        raise fields.error(key, exc.diagnostics()) from None


def _plugins(fields: Fields, base_dir: Path) -> PluginsConfig:
    directory = fields.string("dir")
    policy_name = fields.string("signature_policy", "trusted") or "trusted"
    try:
        policy = SignaturePolicy.parse(policy_name, fields.key_path("signature_policy"))
    except ConductorError as exc:
        raise ConfigError(f"{fields.source}: {exc.diagnostics()}") from None
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
                raise ConfigError(
                    f"{fields.source}: {fields.key_path('hosts')}.{name}[{index}]: {exc}"
                ) from None
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
            _log.warning(
                "%s: %s: the value of ${%s} has %d character(s), too short to redact safely "
                "(at least %d): it is not hidden in logs and errors",
                source,
                path,
                variable,
                len(secret),
                MIN_SECRET_LENGTH,
            )
        secrets.add(secret)
        return secret

    return _VARIABLE.sub(replace, value)


def _advanced(fields: Fields) -> trg.AdvancedSettings:
    shutdown_ms = fields.integer("shutdown_timeout_ms", 2000, 0, 600_000)
    result = trg.AdvancedSettings(
        chord_timeout_ms=fields.integer("chord_timeout_ms", 50, 1, 10_000) or 50,
        double_tap_timeout_ms=fields.integer("double_tap_timeout_ms", 300, 1, 10_000) or 300,
        hold_threshold_ms=fields.integer("hold_threshold_ms", 2000, 1, 60_000) or 2000,
        shutdown_timeout_ms=2000 if shutdown_ms is None else shutdown_ms,
    )
    fields.done()
    return result


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
        result = trg.VelocityRange(
            f.required_integer("note", *MIDI, "a MIDI note"),
            f.choice("level", ("soft", "medium", "hard")),
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
        result = trg.EncoderTurn(
            f.required_integer("cc", *MIDI, "a controller number"),
            f.choice("direction", ("clockwise", "counterclockwise")),
            channel,
            device,
        )
    elif kind == "PitchBend":
        low = f.integer("value_min", -8192, -8192, 8191, "a pitch bend value")
        high = f.integer("value_max", 8191, -8192, 8191, "a pitch bend value")
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
    result: act.Action
    if kind == "WasmPlugin":
        plugin_path = f.required_string("path")
        params = f.table_of("params")
        if "context" in params:
            raise f.error(
                "params.context", "'context' is reserved: the engine fills it with the event"
            )
        limits_table = f.table_of("limits")
        limits = (
            _limits(Fields(limits_table, f.key_path("limits"), context.source), context.limits)
            if limits_table
            else None
        )
        result = act.WasmPlugin(plugin_path, params, limits)
    elif kind == "ModeChange":
        result = act.ModeChange(f.required_string("mode"))
    elif kind == "Sequence":
        children = f.array("actions")
        if not children:
            raise f.error("actions", "a Sequence needs at least one action")
        result = act.Sequence(
            tuple(
                _action(child, f"{f.key_path('actions')}[{i}]", context)
                for i, child in enumerate(children)
            )
        )
    elif kind == "Delay":
        result = act.Delay(f.required_integer("ms", 0, 600_000, "a delay in ms"))
    else:
        port = f.required_string("port")
        message_type = f.choice("message_type", tuple(act.SEND_MIDI_FIELDS))
        channel = f.integer("channel", 0, *CHANNEL, "a MIDI channel") or 0
        virtual = f.boolean("virtual", False)
        values = []
        for name, (low, high) in act.SEND_MIDI_FIELDS[message_type].items():
            number = f.integer(name, None, low, high, f"a valid {name}")
            values.append((name, 0 if number is None else number))
        result = act.SendMidi(port, message_type, channel, tuple(values), virtual)
    f.done()
    return result
