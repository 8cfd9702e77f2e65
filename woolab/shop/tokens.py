"""Cart-Token and Nonce, the two headers of WooCommerce's Store API.

The Cart-Token is a signed JWT (HS256) whose ``user_id`` names the guest session, as in
WooCommerce; the cart lives in Redis under that session. The Nonce is WordPress-style: ten hex
characters of an HMAC over the session and a 12-hour tick, valid for the current and the previous
tick. A mutating request needs a valid Cart-Token (WooCommerce skips the nonce check when one is
sent); without one the shop cannot tie a Nonce to a session, so it refuses the request with
WooCommerce's missing/invalid nonce errors. Nonces are still issued for clients that show them.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from typing import Optional

NONCE_TICK_SECONDS = 43200
CART_TOKEN_LIFETIME = 172800


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_JWT_HEADER = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())


class Tokens:
    """Issues and verifies Cart-Tokens and Nonces with one secret."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(("woolab-shop|" + secret).encode()).digest()

    def _sign(self, message: str) -> bytes:
        return hmac.new(self._key, message.encode("ascii"), hashlib.sha256).digest()

    # -- Cart-Token --
    def new_session(self) -> str:
        return "t_" + os.urandom(15).hex()

    def cart_token(self, session: str, now: Optional[float] = None) -> str:
        now = time.time() if now is None else now
        payload = {"user_id": session, "exp": int(now) + CART_TOKEN_LIFETIME, "iss": "store-api"}
        body = _JWT_HEADER + "." + _b64(json.dumps(payload, separators=(",", ":")).encode())
        return body + "." + _b64(self._sign(body))

    def session_of(self, token: Optional[str], now: Optional[float] = None) -> Optional[str]:
        """The session a Cart-Token names, or None when it is absent, forged or expired."""
        if not token:
            return None
        parts = token.split(".")
        if len(parts) != 3:
            return None
        body = parts[0] + "." + parts[1]
        try:
            if not hmac.compare_digest(_unb64(parts[2]), self._sign(body)):
                return None
            payload = json.loads(_unb64(parts[1]))
        except (ValueError, UnicodeError):
            return None
        now = time.time() if now is None else now
        if not isinstance(payload, dict) or payload.get("exp", 0) < now:
            return None
        session = payload.get("user_id")
        return session if isinstance(session, str) and session else None

    # -- Nonce --
    def nonce(self, session: str, now: Optional[float] = None) -> str:
        tick = int((time.time() if now is None else now) // NONCE_TICK_SECONDS)
        return self._nonce_for_tick(session, tick)

    def _nonce_for_tick(self, session: str, tick: int) -> str:
        return self._sign(f"wc_store_api|{session}|{tick}").hex()[:10]

    def nonce_valid(self, session: str, nonce: str, now: Optional[float] = None) -> bool:
        tick = int((time.time() if now is None else now) // NONCE_TICK_SECONDS)
        return any(hmac.compare_digest(nonce, self._nonce_for_tick(session, t))
                   for t in (tick, tick - 1))
