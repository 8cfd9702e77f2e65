"""Cart operations and the Store API cart shape.

A cart is ``{"items": [...], "rev": "<hex>"}`` in Redis. Each item keeps a snapshot of the
product (name, prices, stock seen) so showing a cart is a single Redis read; checkout re-reads
prices and stock from the database inside its transaction. ``rev`` changes on every change and,
with the session, forms the checkout key that makes a retried checkout idempotent.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Dict, List

from .cache import CartStore
from .catalog import Catalog, LOW_STOCK_THRESHOLD, money
from .config import ShopConfig
from .errors import ShopError, bad_param, missing_param

EMPTY_ADDRESS = {"first_name": "", "last_name": "", "company": "", "address_1": "",
                 "address_2": "", "city": "", "state": "", "postcode": "", "country": ""}


def item_key(product_id: int) -> str:
    return hashlib.md5(str(product_id).encode()).hexdigest()


def positive_int(body: Dict[str, Any], name: str) -> int:
    if name not in body:
        raise missing_param(name)
    value = body[name]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise bad_param(name, f"{name} must be a positive integer.")
    return value


class Carts:
    """Add, update and remove items with stock checks; every change gets a new revision."""

    def __init__(self, config: ShopConfig, store: CartStore, catalog: Catalog) -> None:
        self.config = config
        self.store = store
        self.catalog = catalog

    def get(self, session: str) -> Dict[str, Any]:
        return self.store.load(session)

    def add_item(self, session: str, body: Dict[str, Any]) -> Dict[str, Any]:
        pid = positive_int(body, "id")
        quantity = positive_int(body, "quantity") if "quantity" in body else 1
        product = self.catalog.product(pid)
        cart = self.store.load(session)
        item = self._find(cart, item_key(pid))
        wanted = quantity + (item["quantity"] if item else 0)
        self._check_stock(cart, product, wanted)
        if item is None:
            item = {"key": item_key(pid), "id": pid, "quantity": 0}
            cart["items"].append(item)
        item.update(self._snapshot(product), quantity=wanted)
        return self._save(session, cart)

    def update_item(self, session: str, body: Dict[str, Any]) -> Dict[str, Any]:
        key = self._key_param(body)
        quantity = positive_int(body, "quantity")
        cart = self.store.load(session)
        item = self._find(cart, key)
        if item is None:
            raise self._invalid_key(cart)
        product = self.catalog.product(item["id"])
        self._check_stock(cart, product, quantity)
        item.update(self._snapshot(product), quantity=quantity)
        return self._save(session, cart)

    def remove_item(self, session: str, body: Dict[str, Any]) -> Dict[str, Any]:
        key = self._key_param(body)
        cart = self.store.load(session)
        if self._find(cart, key) is None:
            raise self._invalid_key(cart)
        cart["items"] = [i for i in cart["items"] if i["key"] != key]
        return self._save(session, cart)

    # -- helpers --
    def _save(self, session: str, cart: Dict[str, Any]) -> Dict[str, Any]:
        """Save over the revision this request read: a store that checks it (the hardened
        profile) refuses to overwrite a newer cart with a stale one (a request that outlived its
        client, retried after a failover)."""
        read_rev = cart.get("rev", "")
        cart["rev"] = os.urandom(8).hex()
        self.store.save(session, cart, read_rev=read_rev)
        return cart

    @staticmethod
    def _find(cart: Dict[str, Any], key: str):
        return next((i for i in cart["items"] if i["key"] == key), None)

    @staticmethod
    def _key_param(body: Dict[str, Any]) -> str:
        key = body.get("key")
        if key is None:
            raise missing_param("key")
        if not isinstance(key, str) or not key:
            raise bad_param("key", "key is not of type string.")
        return key

    @staticmethod
    def _snapshot(product: Dict[str, Any]) -> Dict[str, Any]:
        return {k: product[k] for k in ("name", "slug", "sku", "price", "regular_price", "stock")}

    def _invalid_key(self, cart: Dict[str, Any]) -> ShopError:
        return ShopError("woocommerce_rest_cart_invalid_key",
                         "Cart item no longer exists or is invalid.", 409,
                         {"cart": cart_shape(cart, self.config)})

    def _check_stock(self, cart: Dict[str, Any], product: Dict[str, Any], wanted: int) -> None:
        stock = product["stock"]
        if wanted <= stock:
            return
        if stock <= 0:
            code, msg = ("woocommerce_rest_product_out_of_stock",
                         f"You cannot add “{product['name']}” to the cart because the product is out of stock.")
        else:
            code, msg = ("woocommerce_rest_product_partially_out_of_stock",
                         f"You cannot add that amount of “{product['name']}” to the cart because "
                         f"there is not enough stock ({stock} remaining).")
        raise ShopError(code, msg, 400, {"cart": cart_shape(cart, self.config)})


def cart_shape(cart: Dict[str, Any], config: ShopConfig) -> Dict[str, Any]:
    """The cart as the Store API's ``/cart`` answers it (amounts in minor units, as strings)."""
    cur = money(config)
    base = config.site_url.rstrip("/")
    items: List[Dict[str, Any]] = []
    total = count = 0
    for i in cart["items"]:
        line = i["price"] * i["quantity"]
        total += line
        count += i["quantity"]
        stock = i["stock"]
        items.append({
            "key": i["key"], "id": i["id"], "type": "simple", "quantity": i["quantity"],
            "quantity_limits": {"minimum": 1, "maximum": min(stock, 9999), "multiple_of": 1,
                                "editable": True},
            "name": i["name"], "short_description": "", "description": "", "sku": i["sku"],
            "low_stock_remaining": stock if 0 < stock <= LOW_STOCK_THRESHOLD else None,
            "backorders_allowed": False, "show_backorder_badge": False, "sold_individually": False,
            "permalink": f"{base}/product/{i['slug']}/", "images": [], "variation": [],
            "item_data": [],
            "prices": {"price": str(i["price"]), "regular_price": str(i["regular_price"]),
                       "sale_price": str(i["price"]), "price_range": None, **cur},
            "totals": {"line_subtotal": str(line), "line_subtotal_tax": "0",
                       "line_total": str(line), "line_total_tax": "0", **cur},
            "catalog_visibility": "visible", "extensions": {},
        })
    return {
        "items": items, "coupons": [], "fees": [],
        "totals": {"total_items": str(total), "total_items_tax": "0", "total_fees": "0",
                   "total_fees_tax": "0", "total_discount": "0", "total_discount_tax": "0",
                   "total_shipping": "0", "total_shipping_tax": "0", "total_price": str(total),
                   "total_tax": "0", "tax_lines": [], **cur},
        "shipping_address": dict(EMPTY_ADDRESS),
        "billing_address": dict(EMPTY_ADDRESS, email="", phone=""),
        "needs_payment": total > 0, "needs_shipping": bool(items),
        "payment_requirements": ["products"], "has_calculated_shipping": False,
        "shipping_rates": [], "items_count": count, "items_weight": 0, "cross_sells": [],
        "errors": [], "payment_methods": list(config.payment_methods), "extensions": {},
    }
