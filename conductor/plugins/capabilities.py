"""The capability model (SPEC §6): what a plugin may ask for, how risky it is, what is granted."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from conductor.errors import CapabilityError


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Capability(StrEnum):
    NETWORK = "Network"
    FILESYSTEM = "Filesystem"
    SUBPROCESS = "Subprocess"
    SYSTEM_CONTROL = "SystemControl"

    @property
    def risk(self) -> Risk:
        return _RISK[self]

    @classmethod
    def parse(cls, name: str) -> Capability:
        """Case-insensitive, so the reference's lowercase `systemcontrol` works too."""
        wanted = name.strip().replace("_", "").replace("-", "").lower()
        for capability in cls:
            if capability.value.lower() == wanted:
                return capability
        raise CapabilityError(name, [capability.value for capability in cls])


_RISK = {
    Capability.NETWORK: Risk.LOW,
    Capability.FILESYSTEM: Risk.MEDIUM,
    Capability.SUBPROCESS: Risk.HIGH,
    Capability.SYSTEM_CONTROL: Risk.HIGH,
}


def parse_all(names: Iterable[str]) -> frozenset[Capability]:
    return frozenset(Capability.parse(name) for name in names)


def granted(
    requested: Iterable[Capability], approved: Iterable[Capability]
) -> frozenset[Capability]:
    """A capability is present when the plugin asked for it and it is low risk or approved.

    Approval of something the plugin never requested grants nothing: the metadata is the ceiling.
    """
    approved_set = frozenset(approved)
    return frozenset(cap for cap in requested if cap.risk is Risk.LOW or cap in approved_set)
