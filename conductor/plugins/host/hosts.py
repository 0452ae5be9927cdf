"""Network allow-lists: `scheme://host[:port]` patterns, how they match a URL, and which of them a
plugin may use without the user approving them first (SPEC §8)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
SECURE = frozenset({"https", "wss"})


class PatternError(ValueError):
    """A host pattern that is not `scheme://host[:port]`."""


@dataclass(frozen=True)
class HostPattern:
    scheme: str
    host: str  # lower-case; "*.example.com" for a wildcard
    port: int
    text: str

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        parts = urlsplit(text.strip())
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise PatternError(f"host pattern {text!r}: scheme must be http, https, ws or wss")
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise PatternError(f"host pattern {text!r}: only scheme://host[:port] is allowed")
        host = (parts.hostname or "").lower()
        if not host or ("*" in host and (not host.startswith("*.") or "*" in host[2:])):
            raise PatternError(
                f"host pattern {text!r}: host must be a name, an address or *.domain"
            )
        try:
            port = parts.port or DEFAULT_PORTS[scheme]
        except ValueError as exc:
            raise PatternError(f"host pattern {text!r}: bad port") from exc
        return cls(scheme, host, port, text.strip())

    def matches(self, scheme: str, host: str, port: int) -> bool:
        if scheme != self.scheme or port != self.port:
            return False
        host = host.lower().rstrip(".")
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and len(host) > len(self.host) - 1
        return host == self.host

    @property
    def auto_approvable(self) -> bool:
        """Declared https/wss patterns for a DNS name need no approval beyond the Network grant;
        plain http/ws, loopback or private addresses and wildcards do."""
        if self.scheme not in SECURE or self.host.startswith("*.") or self.host == "localhost":
            return False
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return True
        return False


def split_url(url: str, schemes: tuple[str, ...]) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL with one of `schemes`; ValueError otherwise."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        raise ValueError(f"URL scheme must be one of {', '.join(schemes)}: {url[:100]!r}")
    if not parts.hostname:
        raise ValueError(f"URL has no host: {url[:100]!r}")
    if parts.username or parts.password:
        raise ValueError("URLs with credentials are not allowed; send an Authorization header")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise ValueError(f"bad port in URL {url[:100]!r}") from exc
    return scheme, parts.hostname.lower(), port


@dataclass(frozen=True)
class HostRules:
    """The declared patterns and the approved ones, for one plugin."""

    declared: tuple[HostPattern, ...] = ()
    approved: tuple[HostPattern, ...] = ()

    def decide(self, scheme: str, host: str, port: int) -> tuple[bool, HostPattern | None]:
        """(allowed, the matching declared pattern if any)."""
        if any(p.matches(scheme, host, port) for p in self.approved):
            return True, None
        declared = next((p for p in self.declared if p.matches(scheme, host, port)), None)
        return False, declared
