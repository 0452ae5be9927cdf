"""The error tree: drawn in `conductor/errors.py`, every domain error in it, each exit code
decided once, and errors that report another keep it as data."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import conductor
from conductor import errors
from conductor.errors import (
    CapabilityError,
    ConductorError,
    ConfigError,
    ExitCode,
    PluginsNotLoaded,
    SignatureError,
    UntrustedKeyError,
    UsageError,
    overall_exit_code,
)
from conductor.plugins.capabilities import Capability
from conductor.plugins.limits import Limits
from conductor.signing import SignaturePolicy, Status, Verdict

_TREE_LINE = re.compile(r"^    ([│ ]*)(?:[├└]── )?([A-Z]\w+)\b")


def _drawn_tree() -> dict[str, str | None]:
    """Each class drawn in the module docstring with the class drawn as its parent."""
    parents: dict[str, str | None] = {}
    stack: list[str] = []
    for line in (errors.__doc__ or "").splitlines():
        match = _TREE_LINE.match(line)
        if match is None:
            continue
        branch, name = match.groups()
        depth = 0 if line[4:].startswith(name) else len(branch) // 4 + 1
        del stack[depth:]
        parents[name] = stack[-1] if stack else None
        stack.append(name)
    return parents


def _every_module() -> None:
    for module in pkgutil.walk_packages(conductor.__path__, "conductor."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)


def _subclasses(base: type) -> set[type]:
    found = set()
    for sub in base.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def test_every_domain_error_is_defined_in_errors_and_drawn_under_its_parent() -> None:
    _every_module()
    drawn = _drawn_tree()
    assert drawn["ConductorError"] is None
    for error in _subclasses(ConductorError):
        assert error.__module__ == "conductor.errors", f"{error.__qualname__} is defined elsewhere"
        parent = next(base for base in error.__bases__ if issubclass(base, ConductorError))
        assert drawn.get(error.__name__) == parent.__name__, f"{error.__name__} is not drawn"
    defined = {error.__name__ for error in _subclasses(ConductorError)} | {"ConductorError"}
    assert set(drawn) == defined


def test_exit_codes_have_one_source() -> None:
    assert ConductorError("x").exit_code == ExitCode.FAILURE == 1
    assert UsageError("x").exit_code == ExitCode.USAGE == 2
    assert UntrustedKeyError("x").exit_code == ExitCode.UNTRUSTED_KEY == 3
    untrusted = Verdict(Status.UNTRUSTED, "key not trusted")
    assert untrusted.refusal is UntrustedKeyError
    assert untrusted.exit_code == UntrustedKeyError.exit_code
    invalid = Verdict(Status.INVALID, "tampered")
    assert invalid.refusal is SignatureError and invalid.exit_code == SignatureError.exit_code
    assert Verdict(Status.TRUSTED).exit_code == ExitCode.OK


@pytest.mark.parametrize(
    ("codes", "overall"),
    [([], 0), ([0, 0], 0), ([3, 0, 3], 3), ([3, 1], 1), ([1], 1), ([2], 1), ([2, 3], 1)],
)
def test_one_exit_code_for_several_outcomes(codes: list[int], overall: int) -> None:
    assert overall_exit_code(codes) == overall


def test_plugins_not_loaded_takes_the_exit_code_of_them_all() -> None:
    untrusted = [UntrustedKeyError("a"), UntrustedKeyError("b")]
    assert PluginsNotLoaded("both", untrusted).exit_code == 3
    assert PluginsNotLoaded("mixed", [untrusted[0], SignatureError("c")]).exit_code == 1
    assert PluginsNotLoaded("mixed", untrusted).failures == tuple(untrusted)


def test_an_error_reported_at_a_place_keeps_the_error_and_the_place() -> None:
    with pytest.raises(CapabilityError) as caught:
        Capability.parse("Teleport")
    assert caught.value.name == "Teleport"
    reported = ConfigError.at("c.toml: plugins.grants.x", caught.value)
    assert reported.cause is caught.value and reported.__cause__ is caught.value
    assert reported.where == "c.toml: plugins.grants.x"
    assert reported.diagnostics() == (
        "c.toml: plugins.grants.x: unknown capability 'Teleport' "
        "(known: Network, Filesystem, Subprocess, SystemControl)"
    )


def test_value_errors_do_not_decide_where_the_value_came_from() -> None:
    """A parser cannot know whether its value came from a flag or a config: its error is neither
    a usage error nor a config error, and carries the value."""
    for parse in (
        lambda: Capability.parse("nope"),
        lambda: SignaturePolicy.parse("sometimes", "--policy"),
        lambda: Limits().with_overrides({"max_fuel": 0}, "limits"),
    ):
        with pytest.raises(errors.InvalidValueError) as caught:
            parse()
        assert not isinstance(caught.value, UsageError | ConfigError)
    with pytest.raises(errors.LimitError) as limit:
        Limits().with_overrides({"max_fuel": -1}, "limits")
    assert (limit.value.key, limit.value.value) == ("max_fuel", -1)
    assert limit.value.diagnostics() == "limits.max_fuel: must be a positive integer, got -1"
