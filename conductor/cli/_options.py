"""Options shared by several `conductor` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
TrustStoreOption = Annotated[
    Path | None,
    typer.Option(
        "--trust-store",
        help="Trust store file (default: $CONDUCTOR_TRUST_STORE, else the user config dir).",
    ),
]
PolicyOption = Annotated[
    str | None,
    typer.Option(
        "--policy",
        help="Signature policy: trusted (default), self-signed or unsigned (development).",
    ),
]
