"""WooCommerce REST v3 order changes: `PUT /orders/{id}` (status) and `DELETE /orders/{id}`.

What `gameday cleanup` uses to cancel or trash the orders a run placed. As in WooCommerce:
cancelling gives the ordered quantities back to stock (WooCommerce's `wc_maybe_increase_stock_levels`
on the cancelled status); `DELETE` moves the order to the trash, or removes it with `force=true`,
and answers the order as it was.
"""
from __future__ import annotations

from typing import Any, Dict

from .db import Database
from .errors import ShopError, bad_param
from .orders import Orders

# the statuses WooCommerce's REST schema accepts for an order
STATUSES = ("pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed")
NO_STOCK_HELD = ("cancelled", "trash")


class OrderChanges:
    def __init__(self, db: Database, orders: Orders) -> None:
        self.db = db
        self.orders = orders

    def update(self, order_id: int, body: Dict[str, Any]) -> Dict[str, Any]:
        """Change the status; only `status` is writable here (the one field cleanup needs)."""
        status = body.get("status")
        if status is None:
            return self.orders.get(order_id)
        if status not in STATUSES:
            raise bad_param("status", f"status is not one of {', '.join(STATUSES)}.")
        with self.db.connection() as conn, conn.cursor() as cur:
            old = self._lock(cur, order_id)
            cur.execute("UPDATE orders SET status = %s WHERE id = %s", (status, order_id))
            if status == "cancelled" and old not in NO_STOCK_HELD:
                cur.execute("UPDATE products p JOIN order_items i ON i.product_id = p.id "
                            "SET p.stock = p.stock + i.quantity WHERE i.order_id = %s", (order_id,))
            conn.commit()
        return self.orders.get(order_id)

    def delete(self, order_id: int, force: bool) -> Dict[str, Any]:
        """Trash the order (force: delete it and its lines); answer the order as it was."""
        before = self.orders.get(order_id)
        with self.db.connection() as conn, conn.cursor() as cur:
            self._lock(cur, order_id)
            if force:
                cur.execute("DELETE FROM order_items WHERE order_id = %s", (order_id,))
                cur.execute("DELETE FROM orders WHERE id = %s", (order_id,))
            else:
                cur.execute("UPDATE orders SET status = 'trash' WHERE id = %s", (order_id,))
            conn.commit()
        return before if force else self.orders.get(order_id)

    @staticmethod
    def _lock(cur, order_id: int) -> str:
        cur.execute("SELECT status FROM orders WHERE id = %s FOR UPDATE", (order_id,))
        row = cur.fetchone()
        if row is None:
            raise ShopError("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", 404)
        return row[0]
