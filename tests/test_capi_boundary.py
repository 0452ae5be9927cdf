"""`conductor/plugins/_capi.py` is the one module that speaks wasmtime's C API: no other module of
the package imports ctypes or reaches into wasmtime's private modules."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "conductor"
BOUNDARY = PACKAGE / "plugins" / "_capi.py"
# Runs as a bare script in the child of every `exec` (it cannot import conductor) and uses ctypes
# for prctl, which is process control, not wasmtime.
PRCTL = PACKAGE / "processes" / "_supervisor.py"


def _crossings(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = [module] + [f"{module}.{alias.name}" for alias in node.names]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "wasmtime"
            and node.attr.startswith("_")
        ):
            names = [f"wasmtime.{node.attr}"]
        else:
            continue
        for name in names:
            if name.split(".")[0] == "ctypes" or name.startswith("wasmtime._"):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {name}")
    return found


def test_only_the_capi_module_crosses_into_c() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert BOUNDARY in modules and PRCTL in modules
    crossings = [
        line for path in modules if path not in (BOUNDARY, PRCTL) for line in _crossings(path)
    ]
    assert crossings == []
    assert _crossings(BOUNDARY)  # the check sees what it is looking for
