"""Checkout: validate, then place the order in one database transaction.

Stock is locked (``SELECT … FOR UPDATE``), decremented with a guard (``stock >= qty``), and the
order and its items are written in the same transaction; the order id is answered only after
COMMIT returned, i.e. after the semi-synchronous replica acknowledged it. The cart is cleared
only after that, so a checkout that met a database outage (503) can be repeated with the same
cart. A unique checkout key (session + cart revision) makes such a repeat return the order
already placed when the first COMMIT's outcome was unknown to the client.
"""
from __future__ import annotations

import json
import logging
import os
import re
import string
from typing import Any, Dict, List, Tuple

import pymysql

from .cart import Carts, EMPTY_ADDRESS, cart_shape
from .config import ShopConfig
from .db import Database
from .errors import ServiceUnavailable, ShopError, bad_param, missing_param

log = logging.getLogger("woolab.shop")

EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
ADDRESS_FIELDS = tuple(EMPTY_ADDRESS) + ("email", "phone")
STATUS_FOR_METHOD = {"cod": "processing", "bacs": "on-hold", "cheque": "on-hold"}
_KEY_ALPHABET = string.ascii_letters + string.digits


def _order_key() -> str:
    raw = os.urandom(13)
    return "wc_order_" + "".join(_KEY_ALPHABET[b % len(_KEY_ALPHABET)] for b in raw)


def _address(body: Dict[str, Any], name: str, required: bool) -> Dict[str, str]:
    value = body.get(name)
    if value is None:
        if required:
            raise missing_param(name)
        return {}
    if not isinstance(value, dict):
        raise bad_param(name, f"{name} is not of type object.")
    out = {}
    for field in ADDRESS_FIELDS:
        v = value.get(field, "")
        if v is None:
            v = ""
        if not isinstance(v, (str, int)):
            raise bad_param(name, f"{name}[{field}] is not of type string.")
        out[field] = str(v).strip()[:200]
    return out


def validate(body: Dict[str, Any], config: ShopConfig) -> Dict[str, Any]:
    """The checkout request's fields, or the WooCommerce error for the first bad one."""
    billing = _address(body, "billing_address", required=True)
    if not EMAIL.match(billing["email"]):
        raise bad_param("billing_address", "Invalid email address provided.")
    shipping = _address(body, "shipping_address", required=False) or dict(billing)
    shipping.pop("email", None)
    method = body.get("payment_method")
    if method in (None, ""):
        raise ShopError("woocommerce_rest_checkout_missing_payment_method",
                        "No payment method provided.", 400)
    if not isinstance(method, str) or method not in config.payment_methods:
        raise ShopError("woocommerce_rest_checkout_payment_method_disabled",
                        f"The {method} payment gateway is not available.", 400)
    note = body.get("customer_note", "") or ""
    if not isinstance(note, str):
        raise bad_param("customer_note", "customer_note is not of type string.")
    return {"billing": billing, "shipping": shipping, "method": method, "note": note[:2000]}


class Checkout:
    def __init__(self, config: ShopConfig, db: Database, carts: Carts) -> None:
        self.config = config
        self.db = db
        self.carts = carts

    def place(self, session: str, body: Dict[str, Any]) -> Dict[str, Any]:
        req = validate(body, self.config)
        cart = self.carts.get(session)
        if not cart["items"]:
            raise ShopError("woocommerce_rest_cart_empty", "Cannot create order from empty cart.", 400)
        order_id, order_key, status = self._transaction(session, cart, req)
        try:
            self.carts.store.clear(session)
        except ServiceUnavailable:
            log.warning("order %s placed but cart %s not cleared (cache unavailable)", order_id, session)
        base = self.config.site_url.rstrip("/")
        return {
            "order_id": order_id, "status": status, "order_key": order_key,
            "order_number": str(order_id), "customer_note": req["note"], "customer_id": 0,
            "billing_address": req["billing"], "shipping_address": req["shipping"],
            "payment_method": req["method"],
            "payment_result": {"payment_status": "success", "payment_details": [],
                               "redirect_url": f"{base}/checkout/order-received/{order_id}/?key={order_key}"},
            "additional_fields": {}, "extensions": {},
        }

    def _transaction(self, session: str, cart: Dict[str, Any], req: Dict[str, Any]) -> Tuple[int, str, str]:
        items = sorted(cart["items"], key=lambda i: i["id"])  # fixed lock order: no deadlocks
        ids = [i["id"] for i in items]
        checkout_key = f"{session}:{cart['rev']}"
        status = STATUS_FOR_METHOD.get(req["method"], "processing")
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT id, name, price, stock FROM products WHERE id IN (%s) FOR UPDATE"
                        % ",".join(["%s"] * len(ids)), ids)
            rows = {r[0]: r for r in cur.fetchall()}
            lines = self._lines(cart, items, rows)
            order_key = _order_key()
            total = sum(line[4] for line in lines)
            try:
                cur.execute(
                    "INSERT INTO orders (order_key, checkout_key, status, currency, total,"
                    " payment_method, customer_note, billing_address, shipping_address, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(6))",
                    (order_key, checkout_key, status, self.config.currency, total, req["method"],
                     req["note"], json.dumps(req["billing"]), json.dumps(req["shipping"])))
            except pymysql.err.IntegrityError as exc:
                if exc.args[0] != 1062:
                    raise
                conn.rollback()
                cur.execute("SELECT id, order_key, status FROM orders WHERE checkout_key = %s",
                            (checkout_key,))
                return cur.fetchone()
            order_id = cur.lastrowid
            for pid, _name, qty, _price, _total in lines:
                cur.execute("UPDATE products SET stock = stock - %s WHERE id = %s AND stock >= %s",
                            (qty, pid, qty))
                if cur.rowcount != 1:  # cannot happen under FOR UPDATE; the guard still holds
                    conn.rollback()
                    raise self._stock_error(cart, rows[pid][1], rows[pid][3])
            cur.executemany(
                "INSERT INTO order_items (order_id, product_id, name, quantity, price, total)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                [(order_id, *line) for line in lines])
            conn.commit()
        return order_id, order_key, status

    def _lines(self, cart, items, rows) -> List[Tuple[int, str, int, int, int]]:
        lines = []
        for item in items:
            row = rows.get(item["id"])
            if row is None:
                raise ShopError("woocommerce_rest_cart_invalid_product",
                                f"“{item['name']}” is no longer available.", 409,
                                {"cart": cart_shape(cart, self.config)})
            _pid, name, price, stock = row
            if item["quantity"] > stock:
                raise self._stock_error(cart, name, stock)
            lines.append((item["id"], name, item["quantity"], price, price * item["quantity"]))
        return lines

    def _stock_error(self, cart, name: str, stock: int) -> ShopError:
        if stock <= 0:
            code, msg = ("woocommerce_rest_product_out_of_stock",
                         f"“{name}” is out of stock and cannot be purchased.")
        else:
            code, msg = ("woocommerce_rest_product_partially_out_of_stock",
                         f"There is not enough “{name}” in stock ({stock} remaining). "
                         "Please edit your cart and try again.")
        return ShopError(code, msg, 409, {"cart": cart_shape(cart, self.config)})
