"""A small WooCommerce REST API v3 client (consumer key/secret as HTTP Basic credentials).

WooCommerce accepts Basic credentials over HTTPS; over plain HTTP it wants OAuth 1.0a
signatures (WooCommerce REST API docs, "Authentication"), so a non-loopback `http://` store is
refused here with that fix, instead of failing later with a 401.
"""
import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Optional, Tuple
from urllib.parse import urlsplit

from chaosext.addresses import is_loopback
from chaosext.errors import GamedayError

__all__ = ["RestClient"]


@dataclass
class RestClient:
    base_url: str
    key: str
    secret: str
    timeout: float = 10.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme != "https" and not is_loopback(parts.hostname or ""):
            raise GamedayError(f"{self.base_url}: WooCommerce takes REST keys as Basic credentials over "
                               "HTTPS only; use the store's https:// URL")
        self.base_url = self.base_url.rstrip("/")

    def call(self, method: str, path: str, body: Optional[dict] = None) -> Tuple[int, Any]:
        """(HTTP status, parsed body); status 0 with the reason when the store cannot be reached."""
        auth = "Basic " + base64.b64encode(f"{self.key}:{self.secret}".encode()).decode()
        request = urllib.request.Request(
            f"{self.base_url}/wp-json/wc/v3{path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": auth, "Accept": "application/json",
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                return reply.status, _loads(reply.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _loads(exc.read())
        except (urllib.error.URLError, OSError) as exc:
            return 0, str(getattr(exc, "reason", exc))


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
