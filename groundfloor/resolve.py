"""Endpoint names to addresses, the way a well-behaved client does it: honour the record's TTL.

AWS endpoints are DNS names; a failover changes what they resolve to after the record's TTL.
Clients that cache longer (or keep old connections) meet the old host — the classic failover bug.
On AWS the system resolver answers (`server=None`); in the lab, names are served by the lab's DNS
server (`GAMEDAY_DNS_SERVER=127.0.0.1:PORT`). `cache_seconds` overrides the TTL to emulate a
client that caches addresses too long (the "stale DNS" client).
"""
import ipaddress
import os
import random
import socket
import threading
import time
from typing import Dict, List, Optional, Tuple

import redis

__all__ = ["Resolver", "default_resolver", "connect_host", "NameNotResolved", "ResolvingConnection",
           "resolving_redis"]


class NameNotResolved(OSError):
    """The name has no address (unknown to the DNS server, or the server did not answer)."""


class Resolver:
    def __init__(self, server: Optional[str] = None, cache_seconds: Optional[float] = None,
                 timeout: float = 1.0):
        self.server = _parse_server(server) if server else None
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self._cache: Dict[str, Tuple[float, List[str]]] = {}
        self._lock = threading.Lock()

    def addresses(self, name: str) -> List[str]:
        """Every address of `name` (cached for the TTL, or for `cache_seconds` when set)."""
        if _is_ip(name):
            return [name]
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(name)
            if cached and cached[0] > now:
                return cached[1]
        addresses, ttl = self._query(name)
        keep = self.cache_seconds if self.cache_seconds is not None else ttl
        with self._lock:
            self._cache[name] = (now + keep, addresses)
        return addresses

    def address(self, name: str) -> str:
        """One address of `name` (a random one when the name has several, like a reader endpoint)."""
        return random.choice(self.addresses(name))

    def forget(self, name: Optional[str] = None) -> None:
        with self._lock:
            if name is None:
                self._cache.clear()
            else:
                self._cache.pop(name, None)

    def _query(self, name: str) -> Tuple[List[str], float]:
        if self.server is None:
            try:
                infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise NameNotResolved(f"{name} does not resolve ({exc})") from None
            return sorted({info[4][0] for info in infos}), 0.0
        import dns.exception
        import dns.message
        import dns.query
        import dns.rdatatype
        query = dns.message.make_query(name, dns.rdatatype.A)
        try:
            reply = dns.query.udp(query, self.server[0], port=self.server[1], timeout=self.timeout)
        except (dns.exception.Timeout, OSError) as exc:
            raise NameNotResolved(f"{name}: DNS server {self.server[0]}:{self.server[1]} did not answer "
                                  f"({type(exc).__name__})") from None
        records = [rrset for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A]
        addresses = sorted(item.address for rrset in records for item in rrset)
        if not addresses:
            raise NameNotResolved(f"{name} does not resolve (DNS {self.server[0]}:{self.server[1]})")
        return addresses, float(min(rrset.ttl for rrset in records))


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def _parse_server(server: str) -> Tuple[str, int]:
    host, _, port = server.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"DNS server {server!r} is not HOST:PORT (e.g. 127.0.0.1:15353)")
    return host, int(port)


_default: Dict[Optional[str], Resolver] = {}


def default_resolver() -> Resolver:
    """The probes' resolver for $GAMEDAY_DNS_SERVER (the system resolver when unset). It asks
    afresh at every attempt (no caching), so a probe sees the moment the record moved: the RTO it
    measures is that of the best-behaved client; a client that caches for the full TTL can see
    up to one TTL more (docs/timing.md)."""
    server = os.environ.get("GAMEDAY_DNS_SERVER") or None
    if server not in _default:
        _default[server] = Resolver(server, cache_seconds=0)
    return _default[server]


def connect_host(name: str) -> str:
    """What a client should connect to for endpoint `name`: with $GAMEDAY_DNS_SERVER (the lab),
    the address its DNS server gives (TTL honoured); otherwise the name itself, so the system
    resolver answers and TLS can verify the certificate against the name (AWS)."""
    if not os.environ.get("GAMEDAY_DNS_SERVER"):
        return name
    return default_resolver().address(name)



class ResolvingConnection(redis.Connection):
    """A Redis connection that resolves its endpoint name at every (re)connect: after a failover,
    a reconnect re-resolves and follows the moved DNS record (when the resolver's cache allows
    it: a stale-DNS resolver keeps the old host)."""

    def __init__(self, *, endpoint_name: str, resolver: Resolver, **kwargs) -> None:
        super().__init__(host=endpoint_name, **kwargs)
        self.endpoint_name, self.resolver = endpoint_name, resolver

    def _connect(self):
        self.host = self.resolver.address(self.endpoint_name)
        return super()._connect()


class ResolvingSSLConnection(ResolvingConnection, redis.SSLConnection):
    """The same over TLS (in-transit encryption): the certificate is checked against the address
    the name resolved to, which the lab's certificates list beside the names."""


def resolving_redis(name: str, port: int, resolver: Resolver, **kwargs) -> redis.Redis:
    """A redis-py client for endpoint `name` whose connections re-resolve on every reconnect;
    `ssl=True` (with redis-py's `ssl_*` options) makes them TLS connections."""
    connection_class = ResolvingSSLConnection if kwargs.pop("ssl", False) else ResolvingConnection
    pool = redis.ConnectionPool(connection_class=connection_class, endpoint_name=name,
                                resolver=resolver, port=port, **kwargs)
    return redis.Redis(connection_pool=pool)
