"""Is a host or URL on loopback? One answer for the data-plane TLS default, the REST client's
HTTPS rule and the guard that keeps `--target aws` away from the lab."""
import ipaddress
from urllib.parse import urlsplit

__all__ = ["is_loopback", "is_loopback_url"]


def is_loopback(host: str) -> bool:
    host = (host or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    return is_loopback(urlsplit(url if "//" in url else "//" + url).hostname or "")
