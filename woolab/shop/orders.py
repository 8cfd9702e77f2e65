"""WooCommerce REST v3 order reads (``/wc/v3/orders``), used by the RPO check.

Authenticated like WooCommerce (:mod:`woolab.shop.auth`): OAuth 1.0a over HTTP, and over HTTPS
also HTTP Basic or ``consumer_key``/``consumer_secret`` query parameters. Reads go to the writer
(the instance endpoint, or a DB cluster's cluster endpoint: never a reader), so "the order
exists" means it survived on the current writer.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

from .catalog import int_param
from .config import ShopConfig
from .db import Database
from .errors import ShopError, bad_param

MAX_PER_PAGE = 100
PAYMENT_TITLES = {"cod": "Cash on delivery", "bacs": "Direct bank transfer", "cheque": "Check payments"}


def _money(minor: int) -> str:
    return f"{minor / 100:.2f}"


class Orders:
    def __init__(self, config: ShopConfig, db: Database) -> None:
        self.config = config
        self.db = db

    def get(self, order_id: int) -> Dict[str, Any]:
        found = self._fetch([order_id])
        if not found:
            raise ShopError("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", 404)
        return found[0]

    def listing(self, query: Dict[str, str]) -> Tuple[List[Dict[str, Any]], int]:
        """Orders named by ``include`` (or the newest), paged; returns (orders, total)."""
        per_page = int_param(query, "per_page", 10, 1, MAX_PER_PAGE)
        page = int_param(query, "page", 1, 1, None)
        include = _ids(query.get("include", ""))
        with self.db.connection() as conn, conn.cursor() as cur:
            if include:
                marks = ",".join(["%s"] * len(include))
                cur.execute(f"SELECT id FROM orders WHERE id IN ({marks}) ORDER BY id DESC", include)
            else:
                cur.execute("SELECT id FROM orders ORDER BY id DESC")
            ids = [r[0] for r in cur.fetchall()]
        chosen = ids[(page - 1) * per_page: page * per_page]
        return self._fetch(chosen), len(ids)

    def _fetch(self, ids: List[int]) -> List[Dict[str, Any]]:
        if not ids:
            return []
        marks = ",".join(["%s"] * len(ids))
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT id, order_key, status, currency, total, payment_method, customer_note,"
                        " billing_address, shipping_address, created_at FROM orders"
                        f" WHERE id IN ({marks}) ORDER BY id DESC", ids)
            orders = cur.fetchall()
            cur.execute("SELECT id, order_id, product_id, name, quantity, price, total FROM order_items"
                        f" WHERE order_id IN ({marks}) ORDER BY id", ids)
            items = cur.fetchall()
        lines: Dict[int, List[Dict[str, Any]]] = {}
        for iid, oid, pid, name, qty, price, total in items:
            lines.setdefault(oid, []).append({
                "id": iid, "name": name, "product_id": pid, "variation_id": 0, "quantity": qty,
                "tax_class": "", "subtotal": _money(total), "subtotal_tax": "0.00",
                "total": _money(total), "total_tax": "0.00", "taxes": [], "meta_data": [],
                "sku": f"SKU-{pid:05d}", "price": price / 100})
        return [self._shape(row, lines.get(row[0], [])) for row in orders]

    @staticmethod
    def _shape(row: Tuple, line_items: List[Dict[str, Any]]) -> Dict[str, Any]:
        oid, key, status, currency, total, method, note, billing, shipping, created = row
        stamp = created.isoformat(timespec="seconds")
        return {
            "id": oid, "parent_id": 0, "number": str(oid), "order_key": key,
            "created_via": "store-api", "version": "9.4.0", "status": status,
            "currency": currency, "date_created": stamp, "date_created_gmt": stamp,
            "date_modified": stamp, "date_modified_gmt": stamp,
            "discount_total": "0.00", "discount_tax": "0.00", "shipping_total": "0.00",
            "shipping_tax": "0.00", "cart_tax": "0.00", "total": _money(total), "total_tax": "0.00",
            "prices_include_tax": False, "customer_id": 0, "customer_note": note,
            "billing": json.loads(billing), "shipping": json.loads(shipping),
            "payment_method": method, "payment_method_title": PAYMENT_TITLES.get(method, method),
            "transaction_id": "", "line_items": line_items, "tax_lines": [], "shipping_lines": [],
            "fee_lines": [], "coupon_lines": [], "refunds": [], "meta_data": [],
        }


def _ids(raw: str) -> List[int]:
    ids = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise bad_param("include", "include[] is not of type integer.")
        ids.append(int(part))
    return ids
