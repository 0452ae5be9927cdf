"""The host error codes are defined once, in `conductor.plugins.host.codes`; the C header and the
Rust SDK repeat them for plugin authors, and are held to that definition here."""

from __future__ import annotations

import re

from conductor.plugins.host.codes import Code
from tests.conftest import REPO

SDK = REPO / "conductor" / "sdk"
DEFINED = {code.name: code.value for code in Code}


def test_the_c_header_has_every_code_and_no_other() -> None:
    header = (SDK / "c" / "conductor_plugin.h").read_text()
    block = re.search(r"/\* Host error codes.*?\*/\s*enum\s*\{(.*?)\};", header, re.DOTALL)
    assert block is not None, "the header's enum of host error codes is gone"
    found = re.findall(r"CONDUCTOR_(\w+)\s*=\s*(-?\d+)", block.group(1))
    assert len(found) == len(dict(found)), "a code is declared twice"
    assert {name: int(value) for name, value in found} == DEFINED


def test_the_rust_sdk_has_every_code_and_no_other() -> None:
    source = (SDK / "rust" / "src" / "host.rs").read_text()
    found = re.findall(r"^pub const (\w+): i64 = (-?\d+);", source, re.MULTILINE)
    assert len(found) == len(dict(found)), "a code is declared twice"
    assert {name: int(value) for name, value in found} == DEFINED


def test_codes_never_collide_with_an_answer() -> None:
    """An answer is `(ptr << 32) | len` >= 0: every error code is negative, and all differ."""
    assert Code.OK == 0
    errors = [code for code in Code if code is not Code.OK]
    assert all(code < 0 for code in errors) and len(set(errors)) == len(errors)
