"""WooCommerce REST API authentication for the v3 routes, decided the way WooCommerce decides it.

Source: ``WC_REST_Authentication`` in
``plugins/woocommerce/includes/class-wc-rest-authentication.php``:

- ``authenticate()``: only when ``is_ssl()`` is the request tried with HTTP Basic credentials or
  ``consumer_key``/``consumer_secret`` query parameters (``perform_basic_authentication``; the
  query parameters win). Otherwise, and when Basic found nothing, OAuth 1.0a one-legged
  (``perform_oauth_authentication``) is tried.
- ``get_oauth_parameters()``: ``oauth_*`` from the query (or form body) and an ``OAuth``
  Authorization header; some but not all of the five required ones is a 401.
- ``check_oauth_signature()``: HMAC-SHA1 or HMAC-SHA256 over the base string built in
  :mod:`groundfloor.oauth1`; the URL is the home URL of the request path with the request's scheme.
- ``check_oauth_timestamp_and_nonce()``: the timestamp must lie within 15 minutes of now either
  way; a nonce already used by this key within 15 minutes is refused. Used nonces live in the
  key's row of ``woocommerce_api_keys`` (column ``nonces``) keyed by their timestamp, so two
  requests signed in the same second keep only the later nonce, as in WooCommerce.
- ``get_user_data_by_consumer_key()``: keys are looked up by ``wc_api_hash()`` =
  HMAC-SHA256 of the key with the secret ``wc-api``.

How the lab says "HTTPS": like WordPress's ``is_ssl()`` (``$_SERVER['HTTPS']`` on, or port 443),
behind a TLS-terminating load balancer with the usual wp-config line that sets ``HTTPS`` from
``X-Forwarded-Proto``. Gunicorn plays that line: it sets ``wsgi.url_scheme`` to ``https`` for
``X-Forwarded-Proto: https`` from a trusted address (its default: loopback), so a lab client on
loopback that sends that header is on "HTTPS"; everyone else is on plain HTTP.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple
from urllib.parse import parse_qsl, unquote, unquote_plus

from groundfloor import oauth1

from .config import ShopConfig
from .db import Database
from .errors import ShopError

NONCE_WINDOW = 15 * 60  # seconds, both the timestamp window and how long a nonce is remembered
OAUTH_REQUIRED = ("oauth_consumer_key", "oauth_timestamp", "oauth_nonce", "oauth_signature",
                  "oauth_signature_method")
_HEADER_PARAM = re.compile(r'(oauth_[a-z_-]*)=(:?"([^"]*)"|([^,]*))')
BASIC_REALM = ('Basic realm="WooCommerce API. Use a consumer key in the username field and a '
               'consumer secret in the password field."')


def wc_api_hash(data: str) -> str:
    """WooCommerce's ``wc_api_hash()``: how consumer keys are stored and looked up."""
    return hmac.new(b"wc-api", data.encode("utf-8"), hashlib.sha256).hexdigest()


def is_ssl(environ: Mapping[str, Any]) -> bool:
    """WordPress's ``is_ssl()`` on a WSGI environ (see the module docstring for the proxy case)."""
    https = str(environ.get("HTTPS", "")).lower()
    return (https in ("on", "1") or environ.get("wsgi.url_scheme") == "https"
            or str(environ.get("SERVER_PORT", "")) == "443")


def _refused(message: str, code: str = "woocommerce_rest_authentication_error") -> ShopError:
    return ShopError(code, message, 401)


@dataclass
class ApiKey:
    """One row of ``woocommerce_api_keys`` (what the authentication reads)."""

    key_id: int
    permissions: str
    consumer_secret: str
    nonces: Dict[int, str] = field(default_factory=dict)


class KeyStore:
    """API keys and their used nonces in the store database, like WooCommerce keeps them."""

    def __init__(self, config: ShopConfig, db: Database) -> None:
        self.config = config
        self.db = db
        self._provisioned = False

    def find(self, consumer_key: str) -> Optional[ApiKey]:
        self._provision()
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT key_id, permissions, consumer_secret, nonces FROM"
                        " woocommerce_api_keys WHERE consumer_key = %s", (wc_api_hash(consumer_key),))
            row = cur.fetchone()
        if row is None:
            return None
        nonces = {int(t): n for t, n in json.loads(row[3] or "{}").items()}
        return ApiKey(row[0], row[1], row[2], nonces)

    def save_nonces(self, key: ApiKey) -> None:
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.execute("UPDATE woocommerce_api_keys SET nonces = %s WHERE key_id = %s",
                        (json.dumps(key.nonces), key.key_id))
            conn.commit()

    def _provision(self) -> None:
        """Make the configured key exist (once per process), as creating it in wp-admin would."""
        if self._provisioned:
            return
        c = self.config
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO woocommerce_api_keys (user_id, description, permissions,"
                        " consumer_key, consumer_secret, truncated_key) VALUES (1, 'lab', 'read_write',"
                        " %s, %s, %s) ON DUPLICATE KEY UPDATE consumer_secret = VALUES(consumer_secret)",
                        (wc_api_hash(c.consumer_key), c.consumer_secret, c.consumer_key[-7:]))
            conn.commit()
        self._provisioned = True


class Authenticator:
    """``check(environ)`` passes an authenticated request and raises a 401 ShopError otherwise."""

    def __init__(self, keys: KeyStore, clock=time.time) -> None:
        self.keys = keys
        self.clock = clock

    def check(self, environ: Mapping[str, Any]) -> None:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        error: Optional[ShopError] = None
        if is_ssl(environ):
            key, error = self._basic(query, authorization)
            if key is not None:
                return self._permit(key, method)
        oauth = self._oauth_params(query, authorization)
        if oauth:
            key = self._oauth(environ, method, oauth)
            return self._permit(key, method)
        if error is not None:
            error.headers["WWW-Authenticate"] = BASIC_REALM
            raise error
        raise ShopError("woocommerce_rest_cannot_view", "Sorry, you cannot list resources.", 401)

    # -- Basic (HTTPS only) --
    def _basic(self, query: Dict[str, str], authorization: str) -> Tuple[Optional[ApiKey], Optional[ShopError]]:
        ck, cs = query.get("consumer_key", ""), query.get("consumer_secret", "")
        if not (ck and cs):
            ck, cs = _basic_credentials(authorization)
        if not (ck and cs):
            return None, None
        key = self.keys.find(ck)
        if key is None:
            return None, None
        if not hmac.compare_digest(key.consumer_secret, cs):
            return None, _refused("Consumer secret is invalid.")
        return key, None

    # -- OAuth 1.0a one-legged --
    @staticmethod
    def _oauth_params(query: Dict[str, str], authorization: str) -> Dict[str, str]:
        params = dict(query)
        if authorization.strip().startswith("OAuth "):
            for m in _HEADER_PARAM.finditer(authorization.strip()):
                params[m.group(1)] = unquote_plus(m.group(3) or m.group(4))  # PHP urldecode()
        missing = [p for p in OAUTH_REQUIRED if not params.get(p)]
        if len(missing) == len(OAUTH_REQUIRED):
            return {}
        if missing:
            noun = "parameter" if len(missing) == 1 else "parameters"
            raise _refused(f"Missing OAuth {noun} {', '.join(missing)}",
                           "woocommerce_rest_authentication_missing_parameter")
        return params

    def _oauth(self, environ: Mapping[str, Any], method: str, params: Dict[str, str]) -> ApiKey:
        key = self.keys.find(params["oauth_consumer_key"])
        if key is None:
            raise _refused("Consumer key is invalid.")
        given = unquote(params.pop("oauth_signature").replace(" ", "+"))
        signing = params["oauth_signature_method"]
        base = oauth1.base_string(method, _home_url(environ), params)
        if signing not in oauth1.METHODS:
            raise _refused("Invalid signature - signature method is invalid.")
        if not hmac.compare_digest(oauth1.signature(base, key.consumer_secret, signing), given):
            raise _refused("Invalid signature - provided signature does not match.")
        self._check_timestamp_and_nonce(key, params["oauth_timestamp"], params["oauth_nonce"])
        return key

    def _check_timestamp_and_nonce(self, key: ApiKey, timestamp: str, nonce: str) -> None:
        now = self.clock()
        try:
            stamp = int(timestamp)
        except ValueError:
            stamp = 0  # PHP compares a non-numeric string as 0: outside the window
        if stamp < now - NONCE_WINDOW or stamp > now + NONCE_WINDOW:
            raise _refused("Invalid timestamp.")
        if nonce in key.nonces.values():
            raise _refused("Invalid nonce - nonce has already been used.")
        key.nonces[stamp] = nonce
        key.nonces = {t: n for t, n in key.nonces.items() if t >= now - NONCE_WINDOW}
        self.keys.save_nonces(key)

    @staticmethod
    def _permit(key: ApiKey, method: str) -> None:
        """``check_permissions()``: reads need a read or read_write key."""
        if method in ("GET", "HEAD") and key.permissions not in ("read", "read_write"):
            raise _refused("The API key provided does not have read permissions.")
        if method in ("POST", "PUT", "PATCH", "DELETE") and key.permissions not in ("write", "read_write"):
            raise _refused("The API key provided does not have write permissions.")


def _basic_credentials(authorization: str) -> Tuple[str, str]:
    if not authorization.startswith("Basic "):
        return "", ""
    try:
        user, _, password = base64.b64decode(authorization[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeError):
        return "", ""
    return user, password


def _home_url(environ: Mapping[str, Any]) -> str:
    """``get_home_url(null, $request_path, is_ssl() ? 'https' : 'http')`` for this request.

    The lab's home URL is the address the client reached (its ``Host``), since the lab shop has
    no fixed public name; a real store's is its configured home URL.
    """
    scheme = "https" if is_ssl(environ) else "http"
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
    return f"{scheme}://{host}/" + environ.get("PATH_INFO", "/").lstrip("/")
