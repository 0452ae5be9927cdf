"""The plugin ABI (SPEC §4): which exports and imports a module must and may have, the request
JSON the host writes, and the metadata JSON a plugin's `init` returns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import wasmtime

from conductor.errors import CapabilityError, EventSpecError, MetadataError
from conductor.plugins.capabilities import Capability

WASI_MODULE = "wasi_snapshot_preview1"
HOST_MODULE = "conductor"

I32, I64 = "i32", "i64"


def _signature(functype: wasmtime.FuncType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(str(t) for t in functype.params), tuple(str(t) for t in functype.results)


# What to do about a missing export: the first thing a plugin's author reads when it goes wrong.
_SDK_HINT = (
    "or build on the SDK, which exports it for you: `conductor plugin new NAME --lang rust` "
    "(crate conductor-plugin, export_plugin!) or `--lang c` (header conductor_plugin.h)"
)
_MISSING_HINTS = {
    "memory": " (export the module's linear memory; Rust cdylib crates and clang reactors do)",
    "execute": " (export execute(ptr: i32, len: i32) -> i32; it receives the request JSON)",
    "alloc": (
        ": the host writes each request into memory from your alloc(size: i32) -> i32; export one "
        '(Rust: #[no_mangle] pub extern "C" fn alloc(size: i32) -> i32, see docs/plugin-authoring.md in the '
        f"Conductor repository), {_SDK_HINT}"
    ),
}

EXPORT_SIGNATURES: dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = {
    "execute": (((I32, I32), (I32,)),),
    "alloc": (((I32,), (I32,)),),
    "dealloc": (((I32, I32), ()),),
    "init": (((), ()), ((), (I64,))),
    "shutdown": (((), ()), ((), (I32,))),
    "_initialize": (((), ()),),
}


@dataclass(frozen=True)
class Import:
    module: str
    name: str
    kind: str

    @property
    def qualified(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True)
class ModuleAbi:
    """What a compiled module offers; `problems` lists every way it breaks the ABI."""

    imports: tuple[Import, ...]
    exports: tuple[tuple[str, str], ...]
    problems: tuple[str, ...]
    init_returns_metadata: bool | None
    shutdown_returns_code: bool | None
    has_dealloc: bool
    has_initialize: bool

    @property
    def ok(self) -> bool:
        return not self.problems


def _kind(extern_type: object) -> str:
    if isinstance(extern_type, wasmtime.FuncType):
        params, results = _signature(extern_type)
        return f"func({', '.join(params)}) -> ({', '.join(results)})"
    return type(extern_type).__name__.replace("Type", "").lower()


def inspect_module(
    module: wasmtime.Module, host_functions: dict[str, wasmtime.FuncType]
) -> ModuleAbi:
    """Check a module against the ABI without instantiating it."""
    problems: list[str] = []
    exports = {export.name: export.type for export in module.exports}
    imports = tuple(Import(i.module, i.name or "", _kind(i.type)) for i in module.imports)

    if "execute" not in exports and "_start" in exports:
        problems.append(
            "exports only _start: this is a WASI command, not a plugin; build it as a reactor "
            "(clang -mexec-model=reactor, Rust crate-type cdylib) exporting execute and alloc"
        )
    for required in ("memory", "execute", "alloc"):
        if required not in exports and not (required == "execute" and "_start" in exports):
            problems.append(f"missing required export {required!r}{_MISSING_HINTS[required]}")
    if "memory" in exports and not isinstance(exports["memory"], wasmtime.MemoryType):
        problems.append("export 'memory' is not a memory")
    for name, allowed in EXPORT_SIGNATURES.items():
        if name not in exports:
            continue
        extern_type = exports[name]
        if not isinstance(extern_type, wasmtime.FuncType) or _signature(extern_type) not in allowed:
            wanted = " or ".join(f"({', '.join(p)}) -> ({', '.join(r)})" for p, r in allowed)
            problems.append(f"export {name!r} has type {_kind(extern_type)}, expected {wanted}")

    for item in imports:
        if item.module == WASI_MODULE:
            continue
        if item.module == HOST_MODULE and item.name in host_functions:
            expected = host_functions[item.name]
            if item.kind != _kind(expected):
                problems.append(
                    f"import {item.qualified} has type {item.kind}, expected {_kind(expected)}"
                )
            continue
        problems.append(
            f"unknown import {item.qualified} (plugins may import {WASI_MODULE} and "
            f"{HOST_MODULE}.{{{', '.join(sorted(host_functions))}}})"
        )

    def returns(name: str) -> bool | None:
        extern_type = exports.get(name)
        if not isinstance(extern_type, wasmtime.FuncType):
            return None
        return bool(extern_type.results)

    return ModuleAbi(
        imports=imports,
        exports=tuple((name, _kind(t)) for name, t in exports.items()),
        problems=tuple(problems),
        init_returns_metadata=returns("init"),
        shutdown_returns_code=returns("shutdown"),
        has_dealloc="dealloc" in exports,
        has_initialize="_initialize" in exports,
    )


@dataclass(frozen=True)
class ActionParam:
    name: str
    required: bool = True


@dataclass(frozen=True)
class ActionInfo:
    """One entry of a plugin's metadata `actions`: what its `action` param may name."""

    name: str
    params: tuple[ActionParam, ...] = ()
    description: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def usage(self) -> str:
        """`name(param, optional?)`, the form the official plugins' error lines use too."""
        if not self.params:
            return self.name
        params = ", ".join(p.name + ("" if p.required else "?") for p in self.params)
        return f"{self.name}({params})"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "params": [{"name": p.name, "required": p.required} for p in self.params],
            "description": self.description,
        }


@dataclass(frozen=True)
class Metadata:
    """What a plugin says about itself from `init`; unknown fields are ignored."""

    name: str
    version: str = ""
    description: str = ""
    author: str = ""
    license: str = ""
    homepage: str = ""
    capabilities: frozenset[Capability] = frozenset()
    hosts: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    actions: tuple[ActionInfo, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "author": self.author,
            "license": self.license,
            "homepage": self.homepage,
            "capabilities": sorted(cap.value for cap in self.capabilities),
            "hosts": list(self.hosts),
            "commands": list(self.commands),
            "actions": [action.to_json() for action in self.actions],
        }


def _string_list(document: dict[str, Any], key: str, where: str | None = None) -> tuple[str, ...]:
    value = document.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise MetadataError(f"metadata {where or repr(key)} must be a list of strings")
    return tuple(value)


def _action_param(value: Any, where: str) -> ActionParam:
    if isinstance(value, str):
        return ActionParam(value)
    if (
        isinstance(value, dict)
        and isinstance(value.get("name"), str)
        and isinstance(value.get("required", True), bool)
    ):
        return ActionParam(value["name"], value.get("required", True))
    raise MetadataError(f"metadata {where} must be a name or {{name, required}}")


def _actions(document: dict[str, Any]) -> tuple[ActionInfo, ...]:
    value = document.get("actions", [])
    if not isinstance(value, list):
        raise MetadataError("metadata 'actions' must be a list of {name, params, description}")
    actions = []
    for index, entry in enumerate(value):
        where = f"'actions[{index}]'"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise MetadataError(f"metadata {where} must be an object with a string 'name'")
        description = entry.get("description", "")
        params = entry.get("params", [])
        if not isinstance(description, str):
            raise MetadataError(f"metadata {where}.description must be a string")
        if not isinstance(params, list):
            raise MetadataError(f"metadata {where}.params must be a list")
        actions.append(
            ActionInfo(
                name=entry["name"],
                params=tuple(
                    _action_param(param, f"{where}.params[{i}]") for i, param in enumerate(params)
                ),
                description=description,
                aliases=_string_list(entry, "aliases", f"{where}.aliases"),
            )
        )
    return tuple(actions)


def parse_metadata(data: bytes, default_name: str) -> Metadata:
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise MetadataError("metadata is not UTF-8") from exc
    except (json.JSONDecodeError, RecursionError) as exc:
        raise MetadataError(f"metadata is not JSON ({str(exc)[:80]})") from exc
    if not isinstance(document, dict):
        raise MetadataError("metadata must be a JSON object")
    strings = {}
    for key in ("name", "version", "description", "author", "license", "homepage"):
        value = document.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise MetadataError(f"metadata {key!r} must be a string")
        strings[key] = value
    capabilities = set()
    for name in _string_list(document, "capabilities"):
        try:
            capabilities.add(Capability.parse(name))
        except CapabilityError as exc:
            raise MetadataError(f"metadata requests an {exc.diagnostics()}", cause=exc) from exc
    return Metadata(
        name=strings.pop("name") or default_name,
        capabilities=frozenset(capabilities),
        hosts=_string_list(document, "hosts"),
        commands=_string_list(document, "commands"),
        actions=_actions(document),
        raw=document,
        **strings,
    )


@dataclass(slots=True)
class EventContext:
    """The `context` key of a request: which event fired, in which mode, from which port."""

    trigger: str = "Manual"
    note: int | None = None
    velocity: int | None = None
    channel: int | None = None
    cc: int | None = None
    value: int | None = None
    current_mode: int = 0
    mode: str = "Default"
    timestamp: int = 0
    device: str = ""

    @classmethod
    def from_spec(cls, spec: str | None, timestamp: int, device: str) -> EventContext:
        """The context of a manual call: `note:NOTE[:VELOCITY[:CHANNEL]]`,
        `cc:CC[:VALUE[:CHANNEL]]` (velocity 100 and value 0 by default, channel 0), or a
        `Manual` trigger for None. Raises EventSpecError for anything else."""
        if spec is None:
            return cls(trigger="Manual", timestamp=timestamp, device=device)
        parts = spec.split(":")
        kind = parts[0].lower()
        try:
            numbers = [int(part) for part in parts[1:]]
        except ValueError:
            raise EventSpecError(spec, "numbers expected, as in note:60:100 or cc:7:64") from None
        if (
            kind not in ("note", "cc")
            or not 2 <= len(parts) <= 4
            or not all(0 <= n <= 127 for n in numbers[:2])
        ):
            raise EventSpecError(
                spec, "expected note:NOTE[:VELOCITY[:CHANNEL]] or cc:CC[:VALUE[:CHANNEL]]"
            )
        first = numbers[0]
        second = numbers[1] if len(numbers) > 1 else (100 if kind == "note" else 0)
        channel = numbers[2] if len(numbers) > 2 else 0
        if not 0 <= channel <= 15:
            raise EventSpecError(spec, "channel must be 0-15")
        if kind == "note":
            return cls(
                "Note",
                note=first,
                velocity=second,
                channel=channel,
                timestamp=timestamp,
                device=device,
            )
        return cls(
            "CC", cc=first, value=second, channel=channel, timestamp=timestamp, device=device
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "note": self.note,
            "velocity": self.velocity,
            "channel": self.channel,
            "cc": self.cc,
            "value": self.value,
            "current_mode": self.current_mode,
            "mode": self.mode,
            "timestamp": self.timestamp,
            "device": self.device,
        }


_encode_string = json.encoder.encode_basestring


def _number(value: int | None) -> str:
    return "null" if value is None else str(int(value))


class RequestTemplate:
    """Serialises a mapping's params once; each call only formats the context (hot path)."""

    def __init__(self, params: dict[str, Any]) -> None:
        if "context" in params:
            raise ValueError("params.context is reserved for the event context")
        body = json.dumps(params, separators=(",", ":"), ensure_ascii=False)
        self._prefix = body[:-1] + ("," if params else "") + '"context":'

    def render(self, context: EventContext) -> bytes:
        return (
            f'{self._prefix}{{"trigger":{_encode_string(context.trigger)},"note":{_number(context.note)},'
            f'"velocity":{_number(context.velocity)},"channel":{_number(context.channel)},'
            f'"cc":{_number(context.cc)},"value":{_number(context.value)},'
            f'"current_mode":{int(context.current_mode)},"mode":{_encode_string(context.mode)},'
            f'"timestamp":{int(context.timestamp)},"device":{_encode_string(context.device)}}}}}'
        ).encode()
