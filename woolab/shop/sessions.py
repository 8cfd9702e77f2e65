"""Carts in WooCommerce's sessions table with the object cache in front (the stock profile).

Source: ``WC_Session_Handler`` in ``plugins/woocommerce/includes/class-wc-session-handler.php``:
``get_session()`` asks the object cache first (``wp_cache_get`` in the ``wc_session_id`` group)
and on a miss reads ``session_value`` from ``{prefix}woocommerce_sessions`` by ``session_key``,
then ``wp_cache_add``s it; ``save_data()`` writes the row (``INSERT ... ON DUPLICATE KEY
UPDATE``) and then ``wp_cache_set``s it; ``delete_session()`` deletes both. The database is the
record and Redis a copy, so a cache failover loses no cart (a promoted replica that missed a
write just serves a miss or an older copy until the next save).

The lab stores the cart itself as the session value (WooCommerce stores the serialized session
array whose ``cart`` entry is the cart); the interface is the one :class:`~.cache.CartStore` has.
"""
from __future__ import annotations

import json
import time

from .cache import Cache
from .db import Database

CACHE_GROUP = "wc_session_id"
EMPTY = '{"items":[],"rev":""}'


class SessionTableStore:
    """``load``/``save``/``clear`` of a cart, database first, object cache in front."""

    def __init__(self, cache: Cache, db: Database) -> None:
        self.cache = cache
        self.db = db

    @staticmethod
    def key(session: str) -> str:
        return f"{CACHE_GROUP}:{session}"

    def load(self, session: str) -> dict:
        raw = self.cache.run(lambda r: r.get(self.key(session)))
        if raw is None:
            with self.db.connection() as conn, conn.cursor() as cur:
                cur.execute("SELECT session_value FROM woocommerce_sessions WHERE session_key = %s",
                            (session,))
                row = cur.fetchone()
            raw = row[0] if row else EMPTY
            ttl = self.cache.config.cart_ttl
            self.cache.run(lambda r: r.set(self.key(session), raw, ex=ttl, nx=True))
        return json.loads(raw)

    def save(self, session: str, cart: dict, read_rev: str = None) -> None:
        """Last writer wins, as ``save_data()`` does: `read_rev` is not checked (docs/hardening.md)."""
        payload = json.dumps(cart, separators=(",", ":"))
        ttl = self.cache.config.cart_ttl
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO woocommerce_sessions (session_key, session_value, session_expiry)"
                        " VALUES (%s, %s, %s) ON DUPLICATE KEY UPDATE"
                        " session_value = VALUES(session_value), session_expiry = VALUES(session_expiry)",
                        (session, payload, int(time.time()) + ttl))
            conn.commit()
        self.cache.run(lambda r: r.set(self.key(session), payload, ex=ttl))

    def clear(self, session: str) -> None:
        self.cache.run(lambda r: r.delete(self.key(session)))
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM woocommerce_sessions WHERE session_key = %s", (session,))
            conn.commit()
