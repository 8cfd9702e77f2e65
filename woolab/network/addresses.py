"""Which loopback address is what in the lab's data path.

Every node keeps its public address (127.0.10.N for MariaDB, 127.0.11.N for Redis): the DNS
answers it and clients connect to it, where the relay listens. The server itself listens on a
private twin in 127.1.x.N, which only the relay and the lab's own management connections use.
Traffic between nodes is told apart from client traffic by where it comes from:

- MariaDB replication connects to the primary's *peer* address 127.2.10.N (MariaDB cannot
  choose its outgoing source address), so every connection there is the other DB node's;
- Redis nodes and Sentinels set `bind-source-addr` (Redis 7): a replica's connections come from
  its private address 127.1.11.M, Sentinel i's from 127.1.12.i.

These are pure functions of the address: the servers, the admin clients and the relay agree on
them without sharing any state.
"""
from typing import Optional, Tuple

PUBLIC, SERVER, PEER = 0, 1, 2  # the second octet of each role
DB_NET, CACHE_NET, SENTINEL_NET = 10, 11, 12  # the third octet of each kind of node


def _octets(address: str) -> Optional[Tuple[int, int, int, int]]:
    try:
        parts = tuple(int(p) for p in address.split("."))
    except (AttributeError, ValueError):
        return None
    return parts if len(parts) == 4 and parts[0] == 127 else None


def _with_role(address: str, role: int) -> str:
    octets = _octets(address)
    if octets is None or octets[2] not in (DB_NET, CACHE_NET, SENTINEL_NET) or octets[1] not in (PUBLIC, SERVER, PEER):
        return address
    return f"127.{role}.{octets[2]}.{octets[3]}"


def server_address(address: str) -> str:
    """Where the real server of the node with this (public) address listens; other addresses
    (127.0.0.1, a hostname) are returned unchanged."""
    return _with_role(address, SERVER)


def public_address(address: str) -> str:
    """The node's public address (the one DNS answers) for any of its addresses."""
    return _with_role(address, PUBLIC)


def peer_address(address: str) -> str:
    """The address another DB node replicates from (a relay listener that marks the traffic
    as inter-node)."""
    return _with_role(address, PEER)


def sentinel_source(index: int) -> str:
    """The source address of Sentinel `index` (1-based) toward the nodes."""
    return f"127.{SERVER}.{SENTINEL_NET}.{index}"


def node_kind(address: str) -> Optional[str]:
    """"db" or "cache" for any address of a DB or cache node, else None."""
    octets = _octets(address)
    return {DB_NET: "db", CACHE_NET: "cache"}.get(octets[2]) if octets else None


def source_kind(address: str) -> Optional[Tuple[str, int]]:
    """Who opened a connection, from its source address: ("cache", N), ("sentinel", i), or None
    for a client (the kernel's default source 127.0.0.1, or anything else)."""
    octets = _octets(address)
    if octets is None or octets[1] != SERVER:
        return None
    kind = {CACHE_NET: "cache", SENTINEL_NET: "sentinel", DB_NET: "db"}.get(octets[2])
    return (kind, octets[3]) if kind else None
