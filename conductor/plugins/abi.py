"""The plugin ABI (SPEC §4): which exports and imports a module must and may have, the request
JSON the host writes, and the metadata JSON a plugin's `init` returns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import wasmtime

from conductor.errors import ConductorError
from conductor.plugins.capabilities import Capability

WASI_MODULE = "wasi_snapshot_preview1"
HOST_MODULE = "conductor"

I32, I64 = "i32", "i64"


def _signature(functype: wasmtime.FuncType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(str(t) for t in functype.params), tuple(str(t) for t in functype.results)


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
            problems.append(f"missing required export {required!r}")
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
        }


class MetadataError(ValueError):
    """The metadata JSON is not what SPEC §4 describes."""


def _string_list(document: dict[str, Any], key: str) -> tuple[str, ...]:
    value = document.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise MetadataError(f"metadata {key!r} must be a list of strings")
    return tuple(value)


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
        except ConductorError as exc:
            raise MetadataError(f"metadata requests an {exc.diagnostics()}") from exc
    return Metadata(
        name=strings.pop("name") or default_name,
        capabilities=frozenset(capabilities),
        hosts=_string_list(document, "hosts"),
        commands=_string_list(document, "commands"),
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


_encode_string = json.encoder.encode_basestring  # type: ignore[attr-defined]


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
