"""Finding MIDI ports by name through python-rtmidi (ALSA or JACK), without global backend state."""

from __future__ import annotations

import mido

from conductor.errors import PortError, UsageError
from conductor.midi._chatter import library_chatter_held

APIS = {"alsa": "LINUX_ALSA", "jack": "UNIX_JACK"}
CLIENT_NAME = "conductor"


def backend(api: str | None) -> mido.Backend:
    """The rtmidi backend for `api` (alsa, jack, or None for rtmidi's default)."""
    if api is None:
        return mido.Backend("mido.backends.rtmidi", load=True)
    if api not in APIS:
        raise UsageError(f"--api: {api!r} is not one of {', '.join(APIS)}")
    return mido.Backend(f"mido.backends.rtmidi/{APIS[api]}", load=True)


def choose(wanted: str, available: list[str], kind: str) -> str:
    """Exact name, else the one name containing `wanted`; otherwise an error listing the ports."""
    if wanted in available:
        return wanted
    candidates = [name for name in available if wanted.lower() in name.lower()]
    if len(candidates) == 1:
        return candidates[0]
    listing = ", ".join(repr(name) for name in available) or "none"
    if not candidates:
        raise PortError(f"no MIDI {kind} port matches {wanted!r} (available: {listing})")
    raise PortError(
        f"MIDI {kind} port name {wanted!r} is ambiguous: {', '.join(map(repr, candidates))}"
    )


def system_hint(reason: str) -> str:
    """What to do when the MIDI system itself is missing, from rtmidi's reason."""
    if "ALSA" in reason:
        return " (no ALSA sequencer here: load the snd-seq module, or use --api jack with a running JACK server)"
    if "JACK" in reason:
        return " (start a JACK server, e.g. `jackd -d dummy`, or use --api alsa)"
    return ""


def input_names(midi: mido.Backend) -> list[str]:
    try:
        with library_chatter_held():
            return list(midi.get_input_names())
    except Exception as exc:  # rtmidi raises its own SystemError subclasses for a missing server
        raise PortError(f"cannot list MIDI inputs: {exc}{system_hint(str(exc))}") from exc


def output_names(midi: mido.Backend) -> list[str]:
    try:
        with library_chatter_held():
            return list(midi.get_output_names())
    except Exception as exc:
        raise PortError(f"cannot list MIDI outputs: {exc}{system_hint(str(exc))}") from exc
