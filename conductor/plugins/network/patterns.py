"""Network allow-lists: `scheme://host[:port]` patterns, how they match a URL, and which of them a
plugin may use without the user approving them first (SPEC §8)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from conductor.errors import PatternError
from conductor.plugins.network.addresses import host_scope, normalize_host

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
SECURE = frozenset({"https", "wss"})


def _split(text: str) -> tuple[SplitResult, str, int]:
    """(parts, normalized host, port or 0) of a URL; ValueError with a one-line reason."""
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in text):
        raise ValueError("must not contain spaces or control characters")
    parts = urlsplit(text)  # ValueError for a malformed [IPv6] part
    try:
        port = parts.port or 0
    except ValueError:
        raise ValueError("bad port") from None
    return parts, normalize_host(parts.hostname or ""), port


@dataclass(frozen=True)
class HostPattern:
    scheme: str
    host: str  # normalized (lower-case ASCII, no trailing dot); "*.example.com" for a wildcard
    port: int
    text: str

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        text = text.strip()
        try:
            parts, host, port = _split(text)
        except ValueError as exc:
            raise PatternError(text, str(exc)) from None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise PatternError(text, "scheme must be http, https, ws or wss")
        if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
            raise PatternError(text, "only scheme://host[:port] is allowed")
        if not host or ("*" in host and (not host.startswith("*.") or "*" in host[2:])):
            raise PatternError(text, "host must be a name, an address or *.domain")
        return cls(scheme, host, port or DEFAULT_PORTS[scheme], text)

    def matches(self, scheme: str, host: str, port: int) -> bool:
        if scheme != self.scheme or port != self.port:
            return False
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and len(host) > len(self.host) - 1
        return host == self.host

    @property
    def auto_approvable(self) -> bool:
        """Declared https/wss patterns for a DNS name need no approval beyond the Network grant;
        plain http/ws, wildcards, and hosts spelled as this machine or an address (in any
        spelling: `localhost`, `127.1`, `2130706433`, `[::1]`) do. A name that leads to a
        loopback or private address is caught when connecting (`connection_refusal`)."""
        return (
            self.scheme in SECURE
            and not self.host.startswith("*.")
            and host_scope(self.host) is None
        )


def split_url(url: str, schemes: tuple[str, ...]) -> tuple[str, str, int]:
    """(scheme, normalized host, port) of a URL with one of `schemes`; ValueError otherwise."""
    try:
        parts, host, port = _split(url)
    except ValueError as exc:
        raise ValueError(f"URL {url[:100]!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        raise ValueError(f"URL scheme must be one of {', '.join(schemes)}: {url[:100]!r}")
    if not host:
        raise ValueError(f"URL has no host: {url[:100]!r}")
    if "@" in parts.netloc:
        raise ValueError("URLs with credentials are not allowed; send an Authorization header")
    return scheme, host, port or DEFAULT_PORTS[scheme]


def host_header(scheme: str, host: str, port: int) -> str:
    """The Host header for a URL's parts: an IPv6 address in brackets, the port unless it is
    the scheme's default."""
    name = f"[{host}]" if ":" in host else host
    return name if port == DEFAULT_PORTS[scheme] else f"{name}:{port}"


@dataclass(frozen=True)
class Decision:
    """What the allow-list says about one URL."""

    allowed: bool
    explicit: bool  # approved by the user (grant --host, [plugins.hosts], the prompt)
    pattern: HostPattern | None  # the pattern that allowed it, or a declared one not approved


@dataclass(frozen=True)
class HostRules:
    """The declared patterns, and the approved ones: by the user, or automatically."""

    declared: tuple[HostPattern, ...] = ()
    approved: tuple[HostPattern, ...] = ()  # by the user
    automatic: tuple[HostPattern, ...] = ()  # declared https/wss names, with the Network grant

    def decide(self, scheme: str, host: str, port: int) -> Decision:
        for explicit, patterns in ((True, self.approved), (False, self.automatic)):
            match = next((p for p in patterns if p.matches(scheme, host, port)), None)
            if match is not None:
                return Decision(True, explicit, match)
        declared = next((p for p in self.declared if p.matches(scheme, host, port)), None)
        return Decision(False, False, declared)
