"""Where a network address leads: the public Internet, or this machine and its networks.

One classifier serves both moments a plugin's network access is judged: when a declared host is
approved (its spelling: `localhost`, `127.1`, `2130706433`, `0x7f000001`, `0`, `[::1]` are all
this machine) and when a connection is made (the address the socket is actually connected to).
"""

from __future__ import annotations

import enum
import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")  # "this host on this network"; 0.0.0.0 is us
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class Scope(enum.Enum):
    PUBLIC = "public"
    LOOPBACK = "loopback"
    PRIVATE = "private"
    LINK_LOCAL = "link-local"
    UNSPECIFIED = "unspecified"


def normalize_host(host: str) -> str:
    """The ASCII, lower-case form the resolver uses (IDNA, as `socket.getaddrinfo` encodes it),
    without a trailing dot; ValueError for a name no resolver would take."""
    host = host.lower()
    if host.isascii():
        return host.rstrip(".") or host
    try:
        return host.encode("idna").decode("ascii").lower().rstrip(".")
    except UnicodeError:
        raise ValueError(f"{host[:100]!r} is not a valid host name") from None


def literal_address(host: str) -> IPAddress | None:
    """The address a numeric host stands for in any spelling the C resolver accepts (`127.1`,
    `0x7f.0.0.1`, `2130706433`, `0177.0.0.1`, `0`, IPv6 with or without brackets), else None."""
    text = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):  # ValueError: NUL or characters inet_aton cannot take
        return None


def address_scope(address: IPAddress) -> Scope:
    """PUBLIC only for a globally routable unicast address; IPv4 inside IPv6 (mapped, compatible,
    NAT64, 6to4) is judged by the IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and (address in _NAT64 or address in _IPV4_COMPATIBLE):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not (address.is_loopback or address.is_unspecified):
            return address_scope(embedded)
    if address.is_unspecified or address in _THIS_NETWORK:
        return Scope.UNSPECIFIED
    if address.is_loopback:
        return Scope.LOOPBACK
    if address.is_link_local:
        return Scope.LINK_LOCAL
    site_local = isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    if address.is_global and not address.is_multicast and not site_local:
        return Scope.PUBLIC
    return Scope.PRIVATE


def host_scope(host: str) -> Scope | None:
    """What a host's spelling alone says: LOOPBACK for `localhost` and `*.localhost` (RFC 6761),
    the address's scope for any numeric spelling, None for a DNS name (judged by the address it
    leads to, when connecting)."""
    try:
        name = normalize_host(host)
    except ValueError:
        return None
    if name == "localhost" or name.endswith(".localhost"):
        return Scope.LOOPBACK
    address = literal_address(name)
    return None if address is None else address_scope(address)


def peer_scope(peer: str) -> Scope:
    """The scope of a connected socket's peer address (`getpeername()[0]`)."""
    return address_scope(ipaddress.ip_address(peer.partition("%")[0]))
