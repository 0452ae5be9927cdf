"""The library calls `conductor plugin …` is a thin shell over, called directly: event specs,
inspection with its import warnings, one execution with its phases, the terms of a manual
run, and grants recorded under the verified signer key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from conductor.engine.config import parse_config
from conductor.engine.plugins import options_for_one
from conductor.errors import EventSpecError, FileError, LimitError, SignatureError
from conductor.plugins import installed
from conductor.plugins.abi import EventContext, RequestTemplate
from conductor.plugins.capabilities import Capability
from conductor.plugins.execution import execute_once
from conductor.plugins.grants import GrantStore
from conductor.plugins.inspection import inspect_plugin
from conductor.processes import resolve_command
from conductor.signing import SignaturePolicy, TrustStore
from tests.plugin_helpers import fixture_path, signed_copy


@pytest.mark.parametrize(
    ("spec", "trigger", "numbers"),
    [
        (None, "Manual", (None, None, None)),
        ("note:60", "Note", (60, 100, 0)),
        ("NOTE:60:7:15", "Note", (60, 7, 15)),
        ("cc:7", "CC", (7, 0, 0)),
        ("cc:7:64:2", "CC", (7, 64, 2)),
    ],
)
def test_event_specs(spec: str | None, trigger: str, numbers: tuple[int | None, ...]) -> None:
    context = EventContext.from_spec(spec, 1234, "by hand")
    first = context.cc if trigger == "CC" else context.note
    second = context.value if trigger == "CC" else context.velocity
    assert (context.trigger, first, second, context.channel) == (trigger, *numbers)
    assert (context.timestamp, context.device) == (1234, "by hand")


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("note:x", "numbers expected"),
        ("pc:1", "expected note:"),
        ("note:128", "expected note:"),
        ("note:1:2:3:4", "expected note:"),
        ("cc:1:2:16", "channel must be 0-15"),
    ],
)
def test_bad_event_specs_say_why(spec: str, reason: str) -> None:
    with pytest.raises(EventSpecError) as caught:
        EventContext.from_spec(spec, 0, "")
    assert caught.value.spec == spec and caught.value.reason.startswith(reason)


def test_inspection_reports_imports_the_metadata_does_not_back(tmp_path: Path) -> None:
    store = TrustStore(tmp_path / "trust.toml")
    found = inspect_plugin(fixture_path("undeclared_network"), store)
    assert found.ok and found.metadata is not None
    (warning,) = found.warnings
    assert (warning.item.name, warning.capability) == ("http_request", Capability.NETWORK)
    assert found.to_json()["import_warnings"] == [warning.describe()]
    assert found.verdict.status.value == "missing"  # judged, not refused: inspect only looks
    probe = inspect_plugin(fixture_path("host_probe"), store)
    assert probe.warnings == [] and [c.value for c in probe.capabilities] == [
        "Network",
        "Subprocess",
        "SystemControl",
    ]


def test_inspection_of_a_module_that_breaks_the_abi_runs_no_init(tmp_path: Path) -> None:
    found = inspect_plugin(fixture_path("start_only"), TrustStore(tmp_path / "trust.toml"))
    assert not found.ok and not found.abi.ok
    assert found.metadata is None and found.metadata_error is None


def test_one_execution_with_its_phases(tmp_path: Path) -> None:
    options = options_for_one(
        fixture_path("good"), None, trust_store=tmp_path / "t.toml", policy=SignaturePolicy.UNSIGNED
    )
    request = RequestTemplate({}).render(EventContext.from_spec("note:60", 0, "test"))
    done = execute_once(fixture_path("good"), request, options, tmp_path / "cache")
    assert done.ok and done.loaded.plugin.closed
    assert list(done.phases_ms) == [
        "read_verify",
        "compile",
        "instantiate_init",
        "execute",
        "shutdown",
    ]
    report = done.to_json()
    assert report["result"]["ok"] and report["plugin"] == "good"
    json.dumps(report)  # one JSON document


def test_the_terms_of_a_manual_run(tmp_path: Path) -> None:
    alone = options_for_one(
        fixture_path("good"),
        None,
        limits={"max_fuel": 5},
        approvals=frozenset({Capability.NETWORK}),
    )
    assert alone.policy is SignaturePolicy.TRUSTED and alone.limits.max_fuel == 5
    assert alone.approvals == {Capability.NETWORK}
    config = parse_config(
        """
[plugins]
signature_policy = "self-signed"
trust_store = "keys.toml"
[plugins.limits]
timeout_ms = 77
[plugins.grants]
good = ["Subprocess"]
[plugins.config.good]
greeting = "hi"
""",
        tmp_path / "config.toml",
    )
    terms = options_for_one(
        fixture_path("good"),
        config.plugins,
        policy=SignaturePolicy.UNSIGNED,
        limits={"max_fuel": 9},
        approvals=frozenset({Capability.NETWORK}),
        approved_hosts=("https://x.test",),
    )
    assert terms.policy is SignaturePolicy.UNSIGNED  # the flag over the config
    assert terms.trust_store.path == tmp_path / "keys.toml"
    assert (terms.limits.timeout_ms, terms.limits.max_fuel) == (77, 9)
    assert terms.approvals == {Capability.NETWORK, Capability.SUBPROCESS}
    assert terms.plugin_config == {"greeting": "hi"}
    assert terms.approved_hosts == ("https://x.test",)
    with pytest.raises(LimitError):
        options_for_one(fixture_path("good"), None, limits={"max_fuel": 0})


def test_grants_are_recorded_under_the_verified_signer_key(tmp_path: Path) -> None:
    key = SigningKey.generate()
    plugin = signed_copy("good", tmp_path, key)
    store, grants = TrustStore(tmp_path / "trust.toml"), GrantStore(tmp_path / "grants.toml")
    sh = resolve_command("sh")
    assert sh is not None and Path(sh).is_absolute() and not Path(sh).is_symlink()
    recorded = installed.grant(
        str(plugin),
        store,
        grants,
        capabilities=frozenset({Capability.SUBPROCESS}),
        commands={"sh": sh},
    )
    assert (recorded.plugin, recorded.key) == ("good", key.verify_key.encode().hex())
    left = installed.revoke(
        str(plugin), store, grants, capabilities=frozenset({Capability.SUBPROCESS})
    )
    assert left.capabilities == frozenset() and left.commands == {"sh": sh}
    unsigned = tmp_path / "other" / "good.wasm"
    unsigned.parent.mkdir()
    shutil.copyfile(fixture_path("good"), unsigned)
    with pytest.raises(FileError, match="no grants recorded"):
        installed.revoke(str(unsigned), store, grants)  # same name, another key: nothing kept
    Path(f"{plugin}.sig").write_text(Path(f"{plugin}.sig").read_text().replace("Test", "Pest"))
    with pytest.raises(SignatureError):
        installed.grant(str(plugin), store, grants)  # a tampered signature keys nothing


def test_resolve_command_of_an_unknown_name() -> None:
    assert resolve_command("no-such-command-anywhere") is None
