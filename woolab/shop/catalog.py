"""The product catalogue: MariaDB rows, cached in Redis (object cache), in Store API shape.

Cache entries carry a "fresh until" time. A fresh entry is served straight from Redis; a stale
one is refreshed from the database, and if the database is down the stale entry is served
anyway — that is what keeps browsing up during a database failover. Checkout does not evict
entries (an evicted product could not be added to a cart during an outage); stock shown is at
most ``product_cache_ttl`` seconds old, and checkout re-checks it under a row lock. Database
reads go through ``Database.read``: on a DB cluster the hardened shop reads the catalogue from
the reader endpoint (:mod:`woolab.shop.readsplit`).
"""
from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Dict, Optional, Tuple

from .cache import Cache
from .config import ShopConfig
from .db import Database
from .errors import ServiceUnavailable, ShopError, bad_param

CURRENCIES = {"USD": "$", "EUR": "€", "GBP": "£"}
LOW_STOCK_THRESHOLD = 10
MAX_PER_PAGE = 100

_SELECT = ("SELECT p.id, p.name, p.slug, p.sku, p.short_description, p.price, p.regular_price,"
           " p.stock, c.id, c.name, c.slug FROM products p JOIN categories c ON c.id = p.category_id")


def _record(row: Tuple) -> Dict[str, Any]:
    pid, name, slug, sku, desc, price, regular, stock, cid, cname, cslug = row
    return {"id": pid, "name": name, "slug": slug, "sku": sku, "short_description": desc,
            "price": price, "regular_price": regular, "stock": stock,
            "category": {"id": cid, "name": cname, "slug": cslug}}


def money(config: ShopConfig) -> Dict[str, Any]:
    """The currency block WooCommerce repeats in every prices/totals object."""
    symbol = CURRENCIES.get(config.currency, config.currency + " ")
    return {"currency_code": config.currency, "currency_symbol": symbol,
            "currency_minor_unit": 2, "currency_decimal_separator": ".",
            "currency_thousand_separator": ",", "currency_prefix": symbol, "currency_suffix": ""}


def product_shape(rec: Dict[str, Any], config: ShopConfig) -> Dict[str, Any]:
    """A product as the Store API's ``/products`` answers it."""
    base = config.site_url.rstrip("/")
    stock = rec["stock"]
    cat = rec["category"]
    on_sale = rec["price"] < rec["regular_price"]
    return {
        "id": rec["id"], "name": rec["name"], "slug": rec["slug"], "parent": 0,
        "type": "simple", "variation": "", "permalink": f"{base}/product/{rec['slug']}/",
        "sku": rec["sku"], "short_description": f"<p>{rec['short_description']}</p>",
        "description": f"<p>{rec['short_description']}</p>", "on_sale": on_sale,
        "prices": {"price": str(rec["price"]), "regular_price": str(rec["regular_price"]),
                   "sale_price": str(rec["price"]), "price_range": None, **money(config)},
        "price_html": "", "average_rating": "0", "review_count": 0, "images": [],
        "categories": [{"id": cat["id"], "name": cat["name"], "slug": cat["slug"],
                        "link": f"{base}/product-category/{cat['slug']}/"}],
        "tags": [], "attributes": [], "variations": [], "has_options": False,
        "is_purchasable": True, "is_in_stock": stock > 0, "is_on_backorder": False,
        "low_stock_remaining": stock if 0 < stock <= LOW_STOCK_THRESHOLD else None,
        "sold_individually": False,
        "add_to_cart": {"text": "Add to cart", "description": f"Add “{rec['name']}” to your cart",
                        "url": f"{base}/?add-to-cart={rec['id']}", "minimum": 1,
                        "maximum": min(stock, 9999), "multiple_of": 1},
        "extensions": {},
    }


def invalid_product() -> ShopError:
    return ShopError("woocommerce_rest_product_invalid_id", "Invalid product ID.", 404)


class Catalog:
    """Product reads: cache first, database on miss or staleness, stale cache on DB outage."""

    def __init__(self, config: ShopConfig, cache: Cache, db: Database) -> None:
        self.config = config
        self.cache = cache
        self.db = db

    # -- cache plumbing --
    def _cached(self, key: str, load):
        """Return the payload for ``key`` from cache or ``load()``, serving stale on DB outage."""
        raw = self.cache.try_run(lambda r: r.get(key), None)
        entry = json.loads(raw) if raw else None
        if entry and entry["fresh_until"] > time.time():
            return entry["payload"]
        try:
            payload = load()
        except ServiceUnavailable:
            if entry:
                return entry["payload"]
            raise
        fresh = {"fresh_until": time.time() + self.config.product_cache_ttl, "payload": payload}
        data = json.dumps(fresh, separators=(",", ":"))
        self.cache.try_run(lambda r: r.set(key, data, ex=self.config.product_cache_stale_ttl), None)
        return payload

    # -- reads --
    def product(self, pid: int) -> Dict[str, Any]:
        """The internal record of one product; 404 when it does not exist."""
        rec = self._cached(f"wc:product:{pid}", lambda: self._load_product(pid))
        if rec is None:
            raise invalid_product()
        return rec

    def _load_product(self, pid: int) -> Optional[Dict[str, Any]]:
        def load(conn) -> Optional[Tuple]:
            with conn.cursor() as cur:
                cur.execute(_SELECT + " WHERE p.id = %s", (pid,))
                return cur.fetchone()
        row = self.db.read(load)
        return _record(row) if row else None

    def listing(self, page: int, per_page: int, category: str, search: str) -> Dict[str, Any]:
        """``{"total", "pages", "body"}`` for one page of the product list (body is JSON text)."""
        ident = json.dumps([page, per_page, category, search])
        key = "wc:products:" + hashlib.sha1(ident.encode()).hexdigest()
        return self._cached(key, lambda: self._load_listing(page, per_page, category, search))

    def _load_listing(self, page: int, per_page: int, category: str, search: str) -> Dict[str, Any]:
        where, args = [], []
        if category:
            parts = [c.strip() for c in category.split(",") if c.strip()]
            ids = [int(c) for c in parts if c.isdigit()]
            slugs = [c for c in parts if not c.isdigit()]
            clauses = []
            if ids:
                clauses.append("c.id IN (%s)" % ",".join(["%s"] * len(ids)))
                args += ids
            if slugs:
                clauses.append("c.slug IN (%s)" % ",".join(["%s"] * len(slugs)))
                args += slugs
            where.append("(" + " OR ".join(clauses) + ")")
        if search:
            where.append("p.name LIKE %s")
            args.append("%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        cond = (" WHERE " + " AND ".join(where)) if where else ""
        def load(conn) -> Tuple[int, Tuple]:
            with conn.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM products p JOIN categories c ON c.id = p.category_id"
                            + cond, args)
                count = cur.fetchone()[0]
                cur.execute(_SELECT + cond + " ORDER BY p.id LIMIT %s OFFSET %s",
                            args + [per_page, (page - 1) * per_page])
                return count, cur.fetchall()
        total, rows = self.db.read(load)
        body = json.dumps([product_shape(_record(r), self.config) for r in rows],
                          separators=(",", ":"), ensure_ascii=False)
        return {"total": total, "pages": max(1, -(-total // per_page)), "body": body}


def listing_args(query: Dict[str, str]) -> Tuple[int, int, str, str]:
    """Validate ``page``, ``per_page``, ``category``, ``search`` like the Store API does."""
    page = int_param(query, "page", 1, 1, None)
    per_page = int_param(query, "per_page", 10, 1, MAX_PER_PAGE)
    return page, per_page, query.get("category", "").strip(), query.get("search", "").strip()[:100]


def int_param(query: Dict[str, str], name: str, default: int, low: int, high: Optional[int]) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_param(name, f"{name} is not of type integer.") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high else f"at least {low}"
        raise bad_param(name, f"{name} must be {bound} (inclusive).")
    return value
