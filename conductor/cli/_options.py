"""Options shared by several `conductor` commands (those both apps take: `conductor._shell`)."""

from __future__ import annotations

from typing import Annotated

import typer

PolicyOption = Annotated[
    str | None,
    typer.Option(
        "--policy",
        help="Signature policy: trusted (default), self-signed or unsigned (development).",
    ),
]
ApiOption = Annotated[
    str | None, typer.Option("--api", help="MIDI API: alsa or jack (default: rtmidi's choice).")
]
PortOption = Annotated[
    list[str] | None,
    typer.Option(
        "--port",
        help="Existing input port: exact name or unique substring (repeat for several ports).",
    ),
]
VirtualOption = Annotated[
    str | None, typer.Option("--virtual", help="Create a virtual input port with this name.")
]
