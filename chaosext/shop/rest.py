"""The pack's WooCommerce REST API v3 client: authenticates the way the store accepts on each scheme.

WooCommerce reads a consumer key and secret as HTTP Basic credentials only over HTTPS; over plain
HTTP it accepts only an OAuth 1.0a one-legged signature (``WC_REST_Authentication::authenticate``
in ``plugins/woocommerce/includes/class-wc-rest-authentication.php``). So this client sends Basic
on ``https://`` store URLs and signs every request with HMAC-SHA256 (:mod:`groundfloor.oauth1`) on
``http://`` ones, like the official WooCommerce REST API clients. Used by the RPO check, the
preflight and the cleanup of marked orders.
"""
import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit

from groundfloor import oauth1

__all__ = ["RestClient"]


@dataclass
class RestClient:
    base_url: str
    key: str
    secret: str
    timeout: float = 10.0

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")

    @property
    def scheme_auth(self) -> str:
        """``basic`` on HTTPS, ``oauth1`` on HTTP: what a real store accepts there."""
        return "basic" if urlsplit(self.base_url).scheme == "https" else "oauth1"

    def request_for(self, method: str, path: str, body: Optional[dict] = None) -> urllib.request.Request:
        """The authenticated request for ``/wp-json/wc/v3<path>`` (``path`` may carry a query)."""
        route, _, query = path.partition("?")
        url = f"{self.base_url}/wp-json/wc/v3{route}"
        params: Dict[str, str] = dict(parse_qsl(query, keep_blank_values=True))
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self.scheme_auth == "basic":
            token = base64.b64encode(f"{self.key}:{self.secret}".encode()).decode()
            headers["Authorization"] = "Basic " + token
        else:
            params = oauth1.signed_params(method, url, self.key, self.secret, params)
        return urllib.request.Request(url + ("?" + urlencode(params) if params else ""), method=method,
                                      data=json.dumps(body).encode() if body is not None else None,
                                      headers=headers)

    def call(self, method: str, path: str, body: Optional[dict] = None) -> Tuple[int, Any]:
        """(HTTP status, parsed body); status 0 with the reason when the store cannot be reached."""
        try:
            with urllib.request.urlopen(self.request_for(method, path, body), timeout=self.timeout) as reply:
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
