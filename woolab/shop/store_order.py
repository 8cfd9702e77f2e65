"""The Store API's order lookup, ``GET /wc/store/v1/order/{id}?key=…&billing_email=…``.

What a guest's browser reads right after checkout (the order-received step), so it must see the
order the checkout just wrote: its reads go to the writer (:mod:`woolab.shop.readsplit` pins
every route but the catalogue's). Authorisation and errors follow WooCommerce's
``OrderAuthorizationTrait::is_authorized`` and ``OrderController::validate_order_key``
(docs/shop.md): an unknown order is 404 ``woocommerce_rest_invalid_order``; for a guest order a
wrong or missing key is 401 ``woocommerce_rest_invalid_order``, a missing or different billing
email 401 ``woocommerce_rest_invalid_billing_email``. The body follows ``OrderSchema``.
"""
from __future__ import annotations

import hmac
from typing import Any, Dict

from .catalog import money
from .config import ShopConfig
from .errors import ShopError
from .orders import Orders


def _minor(amount: Any) -> str:
    """A REST v3 decimal amount ("12.34") as the Store API's minor-unit string ("1234")."""
    return str(round(float(amount) * 100))


class StoreOrders:
    """Guest order lookups by id, order key and billing email."""

    def __init__(self, config: ShopConfig, orders: Orders) -> None:
        self.config = config
        self.orders = orders

    def get(self, order_id: int, query: Dict[str, str]) -> Dict[str, Any]:
        """The order in Store API shape, once its key and billing email match."""
        try:
            order = self.orders.get(order_id)
        except ShopError as err:
            if err.status != 404:
                raise
            raise ShopError("woocommerce_rest_invalid_order", "Invalid order ID.", 404) from None
        key = str(query.get("key") or "")
        if not key or not hmac.compare_digest(order["order_key"].encode(), key.encode()):
            raise ShopError("woocommerce_rest_invalid_order", "Invalid order ID or key provided.", 401)
        stored = str(order["billing"].get("email") or "")
        given = str(query.get("billing_email") or "")
        if not given and stored:
            raise ShopError("woocommerce_rest_invalid_billing_email", "No billing email provided.", 401)
        if given.lower() != stored.lower():
            raise ShopError("woocommerce_rest_invalid_billing_email", "Invalid billing email provided.", 401)
        return self.shape(order)

    def shape(self, order: Dict[str, Any]) -> Dict[str, Any]:
        """A REST v3 order as ``OrderSchema::get_item_response`` answers it."""
        cur = money(self.config)
        items = [{
            "key": str(line["id"]), "id": line["product_id"], "quantity": line["quantity"],
            "name": line["name"], "sku": line["sku"],
            "prices": {"price": _minor(line["price"]), "regular_price": _minor(line["price"]),
                       "sale_price": _minor(line["price"]), **cur},
            "totals": {"line_subtotal": _minor(line["subtotal"]), "line_subtotal_tax": "0",
                       "line_total": _minor(line["total"]), "line_total_tax": "0", **cur},
        } for line in order["line_items"]]
        total = _minor(order["total"])
        totals = {"subtotal": total, "total_discount": "0", "total_shipping": "0", "total_fees": "0",
                  "total_tax": "0", "total_refund": "0", "total_price": total, "total_items": total,
                  "total_items_tax": "0", "total_fees_tax": "0", "total_discount_tax": "0",
                  "total_shipping_tax": "0", "tax_lines": [], **cur}
        return {"id": order["id"], "status": order["status"], "items": items, "coupons": [],
                "fees": [], "totals": totals, "shipping_address": order["shipping"],
                "billing_address": order["billing"], "needs_payment": False,
                "needs_shipping": bool(items), "payment_requirements": ["products"], "errors": []}
