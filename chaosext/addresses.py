"""Where does a host or URL lead? One answer, by address and not by spelling, for the data-plane
TLS default, the REST client's HTTPS rule, the load's and the web UI's loopback rules and the
guard that keeps `--target aws` away from the lab.

A name is resolved with the system resolver and judged by every address it gives, so
`127.1`, `0x7f000001`, `[::ffff:127.0.0.1]` and a host name that resolves to loopback all count
as loopback.
"""
import ipaddress
import socket
from typing import List, Optional
from urllib.parse import urlsplit

__all__ = ["is_loopback", "is_loopback_url", "addresses_of", "is_local_address", "local_kind",
           "url_host", "Unresolvable"]


class Unresolvable(OSError):
    """A host name the system resolver has no address for; `reason` says what it answered."""

    def __init__(self, host: str, reason: str):
        super().__init__(f"{host} does not resolve ({reason})")
        self.host, self.reason = host, reason


def _literal(host: str) -> Optional[ipaddress._BaseAddress]:
    """The address a host spelled as an IP literal (any form inet_aton accepts) stands for."""
    host = (host or "").strip().strip("[]").split("%")[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:  # 127.1, 0x7f000001, 2130706433: the C library reads these as IPv4 addresses
            address = ipaddress.ip_address(socket.inet_aton(host))
        except (OSError, ValueError):
            return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def addresses_of(host: str) -> List[ipaddress._BaseAddress]:
    """Every address `host` names (a literal is itself); `Unresolvable` when it has none."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolvable(host, getattr(exc, "strerror", None) or str(exc)) from None
    found = []
    for info in infos:
        address = _literal(info[4][0])
        if address is not None and address not in found:
            found.append(address)
    if not found:
        raise Unresolvable(host, "no address")
    return found


def local_kind(address: ipaddress._BaseAddress) -> Optional[str]:
    """"loopback", "unspecified" or "link-local" for an address that cannot be a remote
    service; None for any other."""
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified:
        return "unspecified"
    if address.is_link_local:
        return "link-local"
    return None


def is_local_address(host: str) -> bool:
    """Whether any address `host` names is loopback, unspecified or link-local (unresolvable
    names raise `Unresolvable`)."""
    return any(local_kind(a) for a in addresses_of(host))


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is a loopback one (127.0.0.0/8, ::1, `localhost`);
    False for a name that does not resolve."""
    host = (host or "").strip()
    if not host:
        return False
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return all(a.is_loopback for a in addresses_of(host))
    except Unresolvable:
        return False


def url_host(url: str) -> str:
    """The host part of a URL (or of `host[:port]`), '' when it has none."""
    try:
        return urlsplit(url if "//" in url else "//" + url).hostname or ""
    except ValueError:
        return ""


def is_loopback_url(url: str) -> bool:
    return is_loopback(url_host(url))
