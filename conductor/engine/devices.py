"""Which MIDI inputs a run listens to, and which of them a trigger's `device` names.

The inputs come from the command line (`--port`, repeatable, and `--virtual`) or else from the
config (`[device]` or `[[devices]]`). A trigger's `device` is resolved once the ports are open,
against those inputs: an input's own name (as given to `--port` or in the config) or its port's
name, else a part of one port's name. The resolved trigger names the input's source, which its
events carry however the port is renamed when it comes back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from conductor.engine import triggers as trg
from conductor.engine.config import Config, Mapping
from conductor.errors import ConfigError, UsageError
from conductor.midi.inputs import InputSpec

_log = logging.getLogger("conductor.engine")


def input_specs(config: Config, ports: Sequence[str], virtual: Sequence[str]) -> list[InputSpec]:
    """The inputs to open: `--port`/`--virtual` when given (they replace the config's devices),
    else each configured device with `auto_connect`. A `--port` keeps the `auto_reconnect` of
    the configured device of the same name, or of the only one configured."""
    if ports or virtual:
        named = {device.name: device for device in config.devices if device.name}
        only = config.devices[0] if len(config.devices) == 1 else None
        specs = []
        for port in ports:
            settings = named.get(port) or only
            specs.append(InputSpec(port, reconnect=settings.auto_reconnect if settings else True))
        return specs + [InputSpec(name, virtual=True) for name in virtual]
    named_devices = [device for device in config.devices if device.name]
    if not named_devices:
        raise UsageError(
            "no MIDI input: pass --port NAME, --virtual NAME or --replay FILE.mid, "
            "or set [device] name (or [[devices]]) in the config"
        )
    wanted = [device for device in named_devices if device.auto_connect]
    for device in named_devices:
        if not device.auto_connect:
            _log.info("device %r has auto_connect = false: not opened (pass --port)", device.name)
    if not wanted:
        names = ", ".join(repr(device.name) for device in named_devices)
        raise UsageError(
            f"{config.path}: device {names}: auto_connect is false: pass --port NAME to connect"
        )
    return [InputSpec(device.name or "", reconnect=device.auto_reconnect) for device in wanted]


def resolve_devices(config: Config, sources: dict[str, str]) -> Config:
    """The config with every trigger's `device` resolved to the source of one open input
    (`sources`: source → port name); no match, or more than one, is a ConfigError naming the
    open inputs."""
    resolved: dict[str, str] = {}

    def resolve(mapping: Mapping) -> Mapping:
        trigger = mapping.trigger
        if isinstance(trigger, trg.GAMEPAD_TRIGGERS) or trigger.device is None:
            return mapping
        if trigger.device not in resolved:
            resolved[trigger.device] = _source_of(
                trigger.device, sources, f"{config.path}: {mapping.where}.trigger.device"
            )
        return replace(mapping, trigger=replace(trigger, device=resolved[trigger.device]))

    return replace(
        config,
        modes=tuple(
            replace(mode, mappings=tuple(map(resolve, mode.mappings))) for mode in config.modes
        ),
        global_mappings=tuple(map(resolve, config.global_mappings)),
    )


def _source_of(wanted: str, sources: dict[str, str], where: str) -> str:
    for source, port in sources.items():
        if wanted in (source, port):
            return source
    candidates = [source for source, port in sources.items() if wanted.lower() in port.lower()]
    if len(candidates) == 1:
        return candidates[0]
    listing = ", ".join(
        repr(source) if source == port else f"{source!r} (port {port!r})"
        for source, port in sources.items()
    )
    if candidates:
        raise ConfigError(f"{where}: {wanted!r} matches more than one open input: {listing}")
    raise ConfigError(f"{where}: {wanted!r} matches none of the open inputs: {listing}")


def gamepad_mappings(config: Config) -> list[Mapping]:
    """Mappings with a gamepad trigger: Conductor reads no gamepad, so they never fire."""
    return [m for m in config.all_mappings() if isinstance(m.trigger, trg.GAMEPAD_TRIGGERS)]
