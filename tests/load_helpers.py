"""What the load tests need of the lab's stand-in shop: its access log as ground truth, its
settings (always restored), real orders and their rows, and the Locust processes a run left.

The shop is the real one the lab runs (gunicorn, MariaDB behind HAProxy, Redis behind Sentinel);
faults come from the lab (a DB failover) or from the shop's own settings, never from a double.
"""
from __future__ import annotations

import contextlib
import json
import os
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, List, Optional
from urllib.parse import urlencode

import pymysql

STORE = "/wp-json/wc/store/v1"
# journey step (Locust request name) -> the shop's route name in its access log
ROUTES = {"browse": "products", "product": "product", "add_to_cart": "cart_add_item",
          "view_cart": "cart", "checkout": "checkout", "order_received": "store_order"}
DB_DOWN = "503 woocommerce_rest_database_unavailable"
# The lab seeds every 50th product nearly sold out (stock 3): the shop's normal refusals.
STOCK_REFUSALS = [f"{status} woocommerce_rest_product_{what}" for status in (400, 409)
                  for what in ("out_of_stock", "partially_out_of_stock")]


# The recorder reads the WP error code only from bodies up to this size (chaosext/load/recorder.py,
# ERROR_BODY_LIMIT); a stock refusal carries the cart, so a bigger one is recorded by its bare status.
ERROR_BODY_LIMIT = 262144


def error_class(record: dict) -> str:
    """An access-log line keyed like the recorder keys a failed request."""
    return f"{record['status']} {record['code']}" if record["code"] else str(record["status"])


class ShopLog:
    """The shop's own access log from the moment this object is made: what it really answered."""

    def __init__(self, lab) -> None:
        self.path = Path(lab.state_dir, "run", "shop-access.jsonl")
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def records(self, route: Optional[str] = None) -> List[dict]:
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            lines = [json.loads(ln) for ln in fh.read().splitlines() if ln.strip()]
        return [r for r in lines if route is None or r["route"] == route]

    def answered(self, route: str, status: int) -> int:
        return sum(1 for r in self.records(route) if r["status"] == status)

    def server_errors(self, route: str) -> Dict[str, int]:
        """5xx answers by error class: only a fault causes them, and only mid-run."""
        return dict(Counter(error_class(r) for r in self.records(route) if r["status"] >= 500))

    def stock_refusals(self, route: str) -> Counter:
        """The stock refusals answered on ``route``, keyed as the recorder keys them."""
        return Counter(error_class(r) if r["bytes"] <= ERROR_BODY_LIMIT else str(r["status"])
                       for r in self.records(route) if error_class(r) in STOCK_REFUSALS)

    def unexplained(self, errors: Dict[str, int], route: str) -> Dict[str, int]:
        """Recorded failures that the shop's stock refusals on ``route`` do not account for
        (a refusal class recorded more often than the shop answered it stays in)."""
        refused = self.stock_refusals(route)
        return {k: n for k, n in errors.items() if not (k in refused and n <= refused[k])}


@contextlib.contextmanager
def shop_settings(lab, **settings):
    """Reload the shop with these settings for the block, then back to the lab defaults."""
    lab.call("/_lab/shop-settings?" + urlencode(settings))
    try:
        yield
    finally:
        lab.call("/_lab/shop-settings")


def db_order_keys(lab, ids: Iterable[int]) -> Dict[int, str]:
    """``{order id: order_key}`` of the rows the order database really holds."""
    ids = [int(i) for i in ids]
    if not ids:
        return {}
    env = lab.env
    conn = pymysql.connect(ssl_disabled=True, host=lab.resolve(env["GAMEDAY_MYSQL_HOST"]), port=int(env["GAMEDAY_MYSQL_PORT"]),
                           user=env["GAMEDAY_MYSQL_USER"], password=env["GAMEDAY_MYSQL_PASSWORD"],
                           database=env["GAMEDAY_MYSQL_DATABASE"], connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id, order_key FROM orders WHERE id IN (%s)"
                        % ",".join(["%s"] * len(ids)), ids)
            return dict(cur.fetchall())
    finally:
        conn.close()


def _store(shop_url: str, method: str, path: str, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(shop_url + STORE + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read()), resp.headers


def place_orders(shop_url: str, count: int) -> List[int]:
    """Real guest checkouts through the Store API (well-stocked products); their order ids."""
    products, _ = _store(shop_url, "GET", "/products?per_page=20&page=1")
    ids = [p["id"] for p in products if p["is_in_stock"] and p["id"] % 50]
    orders = []
    for n in range(count):
        _, headers = _store(shop_url, "GET", "/cart")
        session = {"Cart-Token": headers["Cart-Token"], "Nonce": headers["Nonce"]}
        _store(shop_url, "POST", "/cart/add-item", {"id": ids[n % len(ids)], "quantity": 1},
               session)
        address = {"first_name": "Rpo", "last_name": f"Check{n}", "address_1": "1 Lab Road",
                   "city": "San Francisco", "state": "CA", "postcode": "94110", "country": "US",
                   "email": f"rpo{n}@example.com"}
        order, _ = _store(shop_url, "POST", "/checkout", {
            "billing_address": address, "payment_method": "cod"}, session)
        orders.append(order["order_id"])
    return orders


def locust_processes(run_dir) -> List[int]:
    """Pids of live processes whose command line names this run directory."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"locust" in cmdline and str(run_dir).encode() in cmdline and state != "Z":
            found.append(int(entry))
    return found
