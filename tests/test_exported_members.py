"""Each package says what its public API is (`__all__`), and says all of it: every exported name
resolves, nothing public the package defines is left out, and a package that imports its names
on first use shows the type checker exactly the names it exports."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

import conductor
import conductor_sign


def _packages() -> list[str]:
    found = ["conductor", "conductor_sign"]
    for root in (conductor, conductor_sign):
        found += [
            module.name
            for module in pkgutil.walk_packages(root.__path__, f"{root.__name__}.")
            if module.ispkg
        ]
    return sorted(found)


PACKAGES = _packages()


def _source(package: ModuleType) -> ast.Module:
    return ast.parse(Path(package.__file__ or "").read_text())


def _assigned_at_top(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        names |= {target.id for target in targets if isinstance(target, ast.Name)}
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
    return names


def _type_checking_imports(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom):
                    names |= {alias.asname or alias.name for alias in statement.names}
    return names


def test_every_package_is_listed() -> None:
    assert {"conductor.plugins", "conductor.engine", "conductor.midi", "conductor.signing"} <= set(
        PACKAGES
    )
    assert {"conductor.desktop", "conductor.processes", "conductor.plugins.network"} <= set(
        PACKAGES
    )


@pytest.mark.parametrize("name", PACKAGES)
def test_the_package_exports_what_it_lists_and_lists_what_it_exports(name: str) -> None:
    package = importlib.import_module(name)
    exported = package.__all__
    assert len(set(exported)) == len(exported), "a name is listed twice"
    for member in exported:
        assert getattr(package, member) is not None, f"{name}.{member} does not resolve"
    # Public names the package itself defines, or takes from its own modules, are exported.
    own = set()
    for member, value in vars(package).items():
        if member.startswith("_") or inspect.ismodule(value):
            continue
        defined_in = getattr(value, "__module__", None)
        if defined_in is not None and (defined_in == name or defined_in.startswith(f"{name}.")):
            own.add(member)
    own |= {member for member in _assigned_at_top(_source(package)) if not member.startswith("_")}
    assert own - {"__all__"} <= set(exported), f"{name} defines public names it does not list"


@pytest.mark.parametrize("name", PACKAGES)
def test_a_lazy_package_shows_the_type_checker_exactly_its_exports(name: str) -> None:
    package = importlib.import_module(name)
    if "__getattr__" not in vars(package):  # imports its names as it is imported: not lazy
        return
    hinted = _type_checking_imports(_source(package))
    assert hinted == set(package.__all__)
    for member in package.__all__:
        value = getattr(package, member)
        if inspect.isclass(value) or inspect.isfunction(value):  # not an alias such as Prompt
            assert value.__module__.startswith(f"{name}."), member


def test_lazy_packages_do_not_import_what_they_do_not_use() -> None:
    """Importing one light module of a package must not load the heavy libraries its other
    modules need (start-up time of the CLIs)."""
    import subprocess
    import sys

    probe = (
        "import sys, conductor.plugins.capabilities, conductor.midi.events, "
        "conductor.engine.triggers; "
        "print(sorted(m for m in ('wasmtime', 'rtmidi') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"
