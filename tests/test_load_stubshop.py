"""A minimal in-process Store API double, so the load tests run without the lab.

It follows the WooCommerce contract the shoppers rely on (Nonce/Cart-Token headers, nonce check on
writes unless a Cart-Token is sent, WP REST error bodies, v3 orders with ``include``) and can be
told to fail: ``checkout_error = (status, code, message)`` answers every checkout with that
WP REST error (``DB_DOWN`` is the lab's 503 during a database failover), ``forget_carts``
drops every session (what a cache failover without persistence does to carts).
The tests at the bottom pin the double to the contract, so the load tests prove something.
"""
from __future__ import annotations

import base64
import itertools
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Optional
from urllib.parse import parse_qs, urlsplit
import urllib.request
import urllib.error

API = "/wp-json/wc/store/v1"
DB_DOWN = (503, "gameday_db_unavailable", "The order database is unavailable; retry shortly.")
NO_COD = (400, "woocommerce_rest_invalid_payment_method", "Cash on delivery is not available.")
PRODUCTS = [{"id": i, "name": f"Product {i}", "type": "simple", "is_purchasable": True,
             "is_in_stock": True, "prices": {"price": str(1000 + i)}} for i in range(10, 30)]


class StubShop:
    def __init__(self, port: int = 0, consumer_key: str = "ck_test", consumer_secret: str = "cs_test"):
        self.carts: Dict[str, Dict[int, int]] = {}
        self.nonces: Dict[str, str] = {}
        self.orders: Dict[int, dict] = {}
        self.checkout_error: Optional[tuple] = None
        self.orders_list_supported = True  # False: only GET /orders/{id}, like a minimal API
        self.checkout_failures = 0
        self.auth = "Basic " + base64.b64encode(f"{consumer_key}:{consumer_secret}".encode()).decode()
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        shop = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_GET(self):
                shop._handle(self, "GET")

            def do_POST(self):
                shop._handle(self, "POST")

        self.server = _Server(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "StubShop":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def forget_carts(self) -> None:
        with self._lock:
            self.carts.clear()
            self.nonces.clear()

    # ------------------------------------------------------------------ routing
    def _handle(self, req, method: str) -> None:
        url = urlsplit(req.path)
        query = parse_qs(url.query)
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else {}
        try:
            status, data, headers = self._route(method, url.path, query, body, req.headers)
        except _Err as e:
            status, data, headers = e.status, {"code": e.code, "message": e.message,
                                                "data": {"status": e.status}}, {}
        payload = json.dumps(data).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(payload)))
        for k, v in headers.items():
            req.send_header(k, v)
        req.end_headers()
        req.wfile.write(payload)

    def _session(self, headers, create: bool) -> Optional[str]:
        token = headers.get("Cart-Token")
        with self._lock:
            if token and token in self.carts:
                return token
            if token and not create:
                return None
            if not create:
                return None
            token = token if token else "ct_" + secrets.token_hex(8)
            self.carts.setdefault(token, {})
            self.nonces.setdefault(token, secrets.token_hex(5))
            return token

    def _route(self, method, path, query, body, headers):
        if path == API + "/products" and method == "GET":
            page = int(query.get("page", ["1"])[0])
            per = int(query.get("per_page", ["10"])[0])
            chunk = PRODUCTS[(page - 1) * per: page * per]
            pages = (len(PRODUCTS) + per - 1) // per
            return 200, chunk, {"X-WP-TotalPages": str(pages), "X-WP-Total": str(len(PRODUCTS))}
        if path.startswith(API + "/products/") and method == "GET":
            pid = int(path.rsplit("/", 1)[1])
            for p in PRODUCTS:
                if p["id"] == pid:
                    return 200, p, {}
            raise _Err(404, "woocommerce_rest_product_invalid_id", "Invalid product ID.")
        if path.startswith("/wp-json/wc/v3/orders"):
            return self._orders_v3(path, query, headers)
        session = self._session(headers, create=True)
        hdrs = {"Cart-Token": session, "Nonce": self.nonces[session]}
        if method == "POST" and headers.get("Nonce") != self.nonces[session] \
                and not headers.get("Cart-Token"):
            raise _Err(403, "woocommerce_rest_missing_nonce", "Missing the Nonce header.")
        cart = self.carts[session]
        if path == API + "/cart" and method == "GET":
            return 200, self._cart_json(cart), hdrs
        if path == API + "/cart/add-item" and method == "POST":
            pid, qty = int(body["id"]), int(body.get("quantity", 1))
            cart[pid] = cart.get(pid, 0) + qty
            return 201, self._cart_json(cart), hdrs
        if path == API + "/checkout" and method == "POST":
            if self.checkout_error:
                with self._lock:
                    self.checkout_failures += 1
                raise _Err(*self.checkout_error)
            if body.get("payment_method") != "cod":
                raise _Err(400, "woocommerce_rest_invalid_payment_method", "Invalid payment method.")
            if not cart:
                raise _Err(400, "woocommerce_rest_cart_empty", "Cannot create order from empty cart.")
            with self._lock:
                oid = next(self._ids)
                self.orders[oid] = {"id": oid, "order_key": f"wc_order_{oid}", "items": dict(cart)}
            cart.clear()
            return 200, {"order_id": oid, "status": "processing", "order_key": f"wc_order_{oid}",
                         "payment_result": {"payment_status": "success"}}, hdrs
        raise _Err(404, "rest_no_route", "No route was found matching the URL and request method.")

    def _orders_v3(self, path, query, headers):
        if headers.get("Authorization") != self.auth:
            raise _Err(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
        tail = path[len("/wp-json/wc/v3/orders"):].strip("/")
        if tail:
            order = self.orders.get(int(tail))
            if not order:
                raise _Err(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
            return 200, order, {}
        if not self.orders_list_supported:
            raise _Err(404, "rest_no_route", "No route was found matching the URL and request method.")
        ids = [int(i) for i in query.get("include", [""])[0].split(",") if i]
        return 200, [self.orders[i] for i in ids if i in self.orders], {}

    @staticmethod
    def _cart_json(cart):
        items = [{"key": f"k{pid}", "id": pid, "quantity": qty} for pid, qty in cart.items()]
        return {"items": items, "items_count": sum(cart.values())}


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # many shoppers connect at once
    daemon_threads = True


class _Err(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# ---------------------------------------------------------------------- the double's contract

def _req(url, method="GET", body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read()), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers


def test_stub_refuses_a_write_without_nonce_or_cart_token():
    with StubShop() as shop:
        status, body, _ = _req(shop.url + API + "/cart/add-item", "POST", {"id": 10, "quantity": 1})
        assert status == 403 and body["code"] == "woocommerce_rest_missing_nonce"


def test_stub_keeps_the_cart_of_a_cart_token_and_checks_out_with_cod():
    with StubShop() as shop:
        _, _, h = _req(shop.url + API + "/cart")
        session = {"Cart-Token": h["Cart-Token"], "Nonce": h["Nonce"]}
        _req(shop.url + API + "/cart/add-item", "POST", {"id": 11, "quantity": 2}, session)
        _, cart, _ = _req(shop.url + API + "/cart", headers=session)
        assert cart["items"] == [{"key": "k11", "id": 11, "quantity": 2}]
        status, order, _ = _req(shop.url + API + "/checkout", "POST",
                                {"payment_method": "cod", "billing_address": {}}, session)
        assert status == 200 and order["order_id"] in shop.orders
