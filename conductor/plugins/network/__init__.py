"""The network a plugin may reach: allow-list patterns (`scheme://host[:port]`, SPEC §8) and
where an address leads (this machine, a private network, the Internet)."""

from conductor.plugins.network.addresses import Scope, address_scope, host_scope, peer_scope
from conductor.plugins.network.patterns import (
    Decision,
    HostPattern,
    HostRules,
    host_header,
    split_url,
)

__all__ = [
    "Decision",
    "HostPattern",
    "HostRules",
    "Scope",
    "address_scope",
    "host_header",
    "host_scope",
    "peer_scope",
    "split_url",
]
