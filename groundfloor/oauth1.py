"""OAuth 1.0a "one-legged" signatures as WooCommerce checks them (consumer key and secret only).

WooCommerce accepts a consumer key and secret over plain HTTP only as an OAuth 1.0a signature
(``WC_REST_Authentication::perform_oauth_authentication`` in
``plugins/woocommerce/includes/class-wc-rest-authentication.php``). Its base string differs from
a textbook RFC 5849 one in small ways that decide whether a signature matches, so both sides of
this pack build it here, once: the RPO client signs with it and the lab shop verifies with it.

- every query parameter (plus the ``oauth_*`` ones) is signed; keys are sorted byte-wise like
  PHP's ``uksort(..., 'strcmp')`` on the *raw* keys;
- each key and value is ``rawurlencode``d, then each ``key=value`` pair is ``rawurlencode``d
  again (``normalize_parameters`` + ``join_with_equals_sign``) and pairs are joined with ``%26``;
- the URL part is the home URL of the request path with the request's scheme;
- the HMAC key is the consumer secret followed by ``&`` (no token secret);
- HMAC-SHA1 and HMAC-SHA256 are the only signature methods accepted.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Dict, Mapping, Optional
from urllib.parse import quote

__all__ = ["METHODS", "rawurlencode", "base_string", "signature", "signed_params"]

METHODS = {"HMAC-SHA1": hashlib.sha1, "HMAC-SHA256": hashlib.sha256}


def rawurlencode(text: str) -> str:
    """PHP's ``rawurlencode``: everything but ``A-Za-z0-9-_.~`` percent-encoded (RFC 3986)."""
    return quote(str(text), safe="")


def base_string(http_method: str, url: str, params: Mapping[str, str]) -> str:
    """The string WooCommerce signs: ``METHOD&enc(url)&enc(k=v)%26enc(k=v)...``.

    ``params`` are the decoded request parameters without ``oauth_signature``.
    """
    pairs = [rawurlencode(f"{rawurlencode(k)}={rawurlencode(params[k])}")
             for k in sorted(params, key=lambda k: k.encode("utf-8"))]
    return f"{http_method.upper()}&{rawurlencode(url)}&" + "%26".join(pairs)


def signature(base: str, consumer_secret: str, method: str = "HMAC-SHA256") -> str:
    """Base64 of the HMAC of ``base`` keyed with ``consumer_secret&``."""
    digest = METHODS[method]
    mac = hmac.new(f"{consumer_secret}&".encode("utf-8"), base.encode("utf-8"), digest)
    return base64.b64encode(mac.digest()).decode("ascii")


def signed_params(http_method: str, url: str, consumer_key: str, consumer_secret: str,
                  params: Optional[Mapping[str, str]] = None, method: str = "HMAC-SHA256",
                  timestamp: Optional[int] = None, nonce: Optional[str] = None) -> Dict[str, str]:
    """``params`` plus the ``oauth_*`` parameters and their signature, ready for a query string.

    ``url`` is the request URL without its query string, exactly as the client addresses it.
    A fresh 32-hex-digit nonce and the current time are used unless given.
    """
    out = {str(k): str(v) for k, v in (params or {}).items()}
    out.update({"oauth_consumer_key": consumer_key,
                "oauth_timestamp": str(int(time.time()) if timestamp is None else timestamp),
                "oauth_nonce": nonce or secrets.token_hex(16),
                "oauth_signature_method": method})
    out["oauth_signature"] = signature(base_string(http_method, url, out), consumer_secret, method)
    return out
