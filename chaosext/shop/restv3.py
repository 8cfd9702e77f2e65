"""A WooCommerce REST API (v3) reader that authenticates the way the store accepts on each scheme.

WooCommerce takes a consumer key and secret as HTTP Basic credentials only over HTTPS; over
plain HTTP it accepts only an OAuth 1.0a one-legged signature (``WC_REST_Authentication::
authenticate`` in ``class-wc-rest-authentication.php``). So this client sends Basic on
``https://`` shop URLs and signs every request with HMAC-SHA256 (:mod:`chaosext.oauth1`) on
``http://`` ones, like the official WooCommerce REST API clients do.
"""
from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlencode, urlsplit

from chaosext import oauth1
from chaosext.errors import ActivityError

__all__ = ["RestV3Client"]


@dataclass
class RestV3Client:
    base_url: str
    consumer_key: str
    consumer_secret: str
    timeout: float = 10.0

    @property
    def scheme_auth(self) -> str:
        """``basic`` on HTTPS, ``oauth1`` on HTTP: what a real store accepts there."""
        return "basic" if urlsplit(self.base_url).scheme == "https" else "oauth1"

    def request_for(self, path: str, params: Optional[Dict[str, Any]] = None) -> urllib.request.Request:
        """The signed (or Basic-authenticated) GET request for ``/wp-json/wc/v3/<path>``."""
        url = self.base_url.rstrip("/") + "/wp-json/wc/v3/" + path.lstrip("/")
        query = {k: str(v) for k, v in (params or {}).items()}
        headers = {"Accept": "application/json"}
        if self.scheme_auth == "basic":
            token = base64.b64encode(f"{self.consumer_key}:{self.consumer_secret}".encode()).decode()
            headers["Authorization"] = "Basic " + token
        else:
            query = oauth1.signed_params("GET", url, self.consumer_key, self.consumer_secret, query)
        full = url + ("?" + urlencode(query) if query else "")
        return urllib.request.Request(full, headers=headers)

    def get(self, path: str, params: Optional[Dict[str, Any]] = None) -> Tuple[int, Any]:
        """(status, decoded JSON body or None); an unreachable shop is an ActivityError."""
        req = self.request_for(path, params)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, _loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _loads(exc.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ActivityError(f"RPO check: shop at {self.base_url} is unreachable ({reason})") from None


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
