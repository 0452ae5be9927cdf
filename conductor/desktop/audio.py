"""The default output's volume and mute: wpctl (PipeWire), pactl (PulseAudio, and PipeWire's
pulse server), amixer (ALSA); osascript on macOS."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from conductor.desktop._backends import Backend, Runner, ToolFailed, attempt

Mute = bool | Literal["toggle"]


@dataclass(frozen=True)
class VolumeState:
    percent: int
    muted: bool


def clamp_percent(value: int) -> int:
    return max(0, min(100, value))  # pactl and wpctl accept over 100 %: never go there


def _wpctl_state(run: Runner) -> VolumeState:
    text = run.run(["wpctl", "get-volume", "@DEFAULT_AUDIO_SINK@"]).stdout.decode()
    match = re.search(r"Volume:\s*(\d+(?:\.\d+)?)", text)
    if not match:
        raise ToolFailed("printed no volume")
    return VolumeState(round(float(match.group(1)) * 100), "MUTED" in text)


def _pactl_state(run: Runner) -> VolumeState:
    volume = run.run(["pactl", "get-sink-volume", "@DEFAULT_SINK@"]).stdout.decode()
    mute = run.run(["pactl", "get-sink-mute", "@DEFAULT_SINK@"]).stdout.decode()
    match = re.search(r"(\d+)%", volume)
    if not match:
        raise ToolFailed("printed no volume for the default sink")
    return VolumeState(int(match.group(1)), "yes" in mute.lower())


def _amixer_state(run: Runner) -> VolumeState:
    text = run.run(["amixer", "get", "Master"]).stdout.decode()
    match = re.search(r"\[(\d+)%\]", text)
    if not match:
        raise ToolFailed("printed no volume for Master")
    return VolumeState(int(match.group(1)), "[off]" in text)


def _osascript_state(run: Runner) -> VolumeState:
    text = run.run(
        [
            "osascript",
            "-e",
            "set s to get volume settings",
            "-e",
            'return (output volume of s as text) & "," & (output muted of s as text)',
        ]
    ).stdout.decode()
    volume, _, muted = text.strip().partition(",")
    if not volume.isdigit():
        raise ToolFailed("printed no volume")
    return VolumeState(int(volume), muted.strip() == "true")


def volume_get(*, timeout: float) -> VolumeState:
    return attempt(
        "volume.get",
        [
            Backend("wpctl", _wpctl_state),
            Backend("pactl", _pactl_state),
            Backend("amixer", _amixer_state),
            Backend("osascript", _osascript_state, platform="darwin"),
        ],
        timeout,
    )


def volume_set(percent: int, *, timeout: float) -> None:
    """Set the volume to `percent`, clamped to 0-100."""
    value = clamp_percent(percent)
    attempt(
        "volume.set",
        [
            Backend.command(["wpctl", "set-volume", "@DEFAULT_AUDIO_SINK@", f"{value / 100:.2f}"]),
            Backend.command(["pactl", "set-sink-volume", "@DEFAULT_SINK@", f"{value}%"]),
            Backend.command(["amixer", "set", "Master", f"{value}%"]),
            Backend.command(
                ["osascript", "-e", f"set volume output volume {value}"], platform="darwin"
            ),
        ],
        timeout,
    )


def volume_change(delta: int, *, timeout: float) -> None:
    """Raise (delta > 0) or lower the volume by `delta` percentage points, staying in 0-100."""
    step = f"{abs(delta)}%{'+' if delta >= 0 else '-'}"

    def pactl(run: Runner) -> None:
        # pactl's relative form goes past 100 %: read, then set the clamped value.
        target = clamp_percent(_pactl_state(run).percent + delta)
        run.run(["pactl", "set-sink-volume", "@DEFAULT_SINK@", f"{target}%"])

    script = f"set volume output volume ((output volume of (get volume settings)) + {delta})"
    attempt(
        "volume.change",
        [
            Backend.command(
                ["wpctl", "set-volume", "--limit", "1.0", "@DEFAULT_AUDIO_SINK@", step]
            ),
            Backend("pactl", pactl),
            Backend.command(["amixer", "set", "Master", step]),
            Backend.command(["osascript", "-e", script], platform="darwin"),
        ],
        timeout,
    )


def volume_mute(mute: Mute, *, timeout: float) -> None:
    """Mute (True), unmute (False) or toggle the default output."""
    flag = "toggle" if mute == "toggle" else "1" if mute else "0"
    amixer = {"1": "mute", "0": "unmute"}.get(flag, "toggle")
    apple = {"1": "true", "0": "false"}.get(flag, "(not (output muted of (get volume settings)))")
    attempt(
        "volume.mute",
        [
            Backend.command(["wpctl", "set-mute", "@DEFAULT_AUDIO_SINK@", flag]),
            Backend.command(["pactl", "set-sink-mute", "@DEFAULT_SINK@", flag]),
            Backend.command(["amixer", "set", "Master", amixer]),
            Backend.command(
                ["osascript", "-e", f"set volume output muted {apple}"], platform="darwin"
            ),
        ],
        timeout,
    )
