"""The shop as a plain WSGI application: routing, request parsing, headers, access log.

Handlers return ``(status, body, headers)``; expected failures are ``ShopError`` and become WP
REST error bodies. Every route but the health check runs through the profile's request life cycle
(``self.site``, :mod:`woolab.shop.stock`): under ``hardened`` an unexpected exception is the only
way to a 500 (logged as a bug); under ``stock`` outages are WordPress's 500 error pages on purpose.
Each request gets its read routing (:mod:`woolab.shop.readsplit`); the access log's ``db`` field
says what served its database work (``reader``, ``writer``, ``writer-fallback``).
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl

from .auth import Authenticator, KeyStore
from .cache import Cache, make_client
from .cart import Carts, cart_shape
from .catalog import Catalog, listing_args, product_shape
from .checkout import Checkout
from .config import ShopConfig
from .db import Database
from .errors import ShopError
from . import readsplit
from .order_changes import OrderChanges
from .orders import Orders
from .stock import make_site
from .store_order import StoreOrders
from .tokens import Tokens

log = logging.getLogger("woolab.shop")

STORE = r"/wp-json/wc/store(?:/v1)?"
V3 = r"/wp-json/wc/v3"
JSON_TYPE = "application/json; charset=UTF-8"
Result = Tuple[int, Any, Dict[str, str]]


class Request:
    """The parts of a WSGI environ the handlers use."""

    __slots__ = ("environ", "method", "path", "query", "session", "match", "_body", "max_body")

    def __init__(self, environ: Dict[str, Any], max_body: int) -> None:
        self.environ = environ
        self.method = environ["REQUEST_METHOD"]
        self.path = environ.get("PATH_INFO", "") or "/"
        self.query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        if "rest_route" in self.query:  # WordPress without pretty permalinks: /?rest_route=/wc/...
            self.path = "/wp-json" + self.query.pop("rest_route")
        self.session: Optional[str] = None
        self.match: Optional[re.Match] = None
        self._body: Optional[Dict[str, Any]] = None
        self.max_body = max_body

    def header(self, name: str) -> str:
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"), "")

    def json(self) -> Dict[str, Any]:
        """The request body as an object (JSON or form), merged over the query parameters."""
        if self._body is None:
            self._body = dict(self.query)
            self._body.update(self._read_body())
        return self._body

    def _read_body(self) -> Dict[str, Any]:
        try:
            length = int(self.environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > self.max_body:
            raise _too_large(self.max_body)
        raw = self.environ["wsgi.input"].read(length) if length else b""
        if not raw.strip():
            return {}
        ctype = self.environ.get("CONTENT_TYPE", "")
        if ctype.startswith("application/x-www-form-urlencoded"):
            return dict(parse_qsl(raw.decode("utf-8", "replace")))
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ShopError("rest_invalid_json", "Invalid JSON body passed.", 400,
                            {"json_error_code": 4, "json_error_message": str(exc)}) from None
        if not isinstance(body, dict):
            raise ShopError("rest_invalid_json", "Invalid JSON body passed: expected an object.", 400)
        return body


def _too_large(limit: int) -> ShopError:
    return ShopError("rest_request_entity_too_large",
                     f"The request body exceeds the limit of {limit} bytes.", 413,
                     headers={"Connection": "close"})


class ShopApp:
    """WSGI callable wiring the components together; one instance per worker process."""

    def __init__(self, config: ShopConfig) -> None:
        self.config = config
        self.tokens = Tokens(config.nonce_secret)
        self.cache = Cache(config)
        self.db = Database(config)
        self.catalog = Catalog(config, self.cache, self.db)
        self.site = make_site(config, self.db, self.cache)  # the profile's request life cycle
        self.carts = Carts(config, self.site.cart_store(), self.catalog)
        self.checkout = Checkout(config, self.db, self.carts)
        self.orders = Orders(config, self.db)
        self.store_orders = StoreOrders(config, self.orders)
        self.order_changes = OrderChanges(self.db, self.orders)
        self.auth = Authenticator(KeyStore(config, self.db))
        self._probe = make_client(config, read_timeout=min(1.0, config.read_write_timeout))
        self._log_fd: Optional[int] = None
        self._log_pid = 0
        # (method, pattern, route name, handler, store session?, mutating?)
        self.routes: List[Tuple[str, re.Pattern, str, Callable[[Request], Result], bool, bool]] = [
            ("GET", re.compile(STORE + r"/products/?"), "products", self.list_products, True, False),
            ("GET", re.compile(STORE + r"/products/(\d+)/?"), "product", self.get_product, True, False),
            ("GET", re.compile(STORE + r"/cart/?"), "cart", self.get_cart, True, False),
            ("POST", re.compile(STORE + r"/cart/add-item/?"), "cart_add_item", self.add_item, True, True),
            ("POST", re.compile(STORE + r"/cart/update-item/?"), "cart_update_item", self.update_item, True, True),
            ("POST", re.compile(STORE + r"/cart/remove-item/?"), "cart_remove_item", self.remove_item, True, True),
            ("POST", re.compile(STORE + r"/checkout/?"), "checkout", self.place_order, True, True),
            ("GET", re.compile(STORE + r"/order/(\d+)/?"), "store_order", self.get_store_order, True, False),
            ("GET", re.compile(V3 + r"/orders/(\d+)/?"), "order", self.get_order, False, False),
            ("GET", re.compile(V3 + r"/orders/?"), "orders", self.list_orders, False, False),
            ("PUT", re.compile(V3 + r"/orders/(\d+)/?"), "order_update", self.update_order, False, False),
            ("DELETE", re.compile(V3 + r"/orders/(\d+)/?"), "order_delete", self.delete_order, False, False),
            ("GET", re.compile(V3 + r"/settings/account/woocommerce_enable_guest_checkout/?"),
             "setting_guest_checkout", self.guest_checkout_setting, False, False),
            ("GET", re.compile(r"/healthz/?"), "health", self.health, False, False),
        ]

    # -- WSGI --
    def __call__(self, environ, start_response):
        with readsplit.request_scope(readsplit.RequestReads()) as reads:
            return self._serve(environ, start_response, reads)

    def _serve(self, environ, start_response, reads: readsplit.RequestReads):
        started = time.perf_counter()
        req = Request(environ, self.config.max_body_bytes)
        route, code, cause = "unmatched", None, None
        try:
            route, handler, store, mutating = self._route(req)
            reads.may_use_reader = readsplit.may_use_reader(self.config.profile, route,
                                                            self.config.db_reader_host)
            if store:
                self._session(req, mutating)
            status, payload, extra = handler(req) if route == "health" else self.site.serve(handler, req)
        except ShopError as err:
            status, payload, code, extra = err.status, err.body(), err.code, dict(err.headers)
            cause = err.data.get("cause")
        except Exception:  # a bug, not an outage: outages are ShopErrors
            log.exception("unhandled error on %s %s", req.method, req.path)
            status, code, extra = 500, "internal_server_error", {}
            payload = {"code": code, "message": "There has been a critical error on this website.",
                       "data": {"status": 500}}
        if req.session:
            extra = {**extra, **self._store_headers(req.session)}
        body = payload if isinstance(payload, bytes) else json.dumps(
            payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        headers = [("Content-Type", extra.pop("Content-Type", JSON_TYPE)), ("Content-Length", str(len(body)))]
        headers += list(extra.items())
        start_response(f"{status} {_REASONS.get(status, 'Status')}", headers)
        self._access(req, route, status, code, len(body), started, cause, reads.summary())
        return [body]

    def _route(self, req: Request):
        for method, pattern, name, handler, store, mutating in self.routes:
            m = pattern.fullmatch(req.path)
            if m:
                if method != req.method:
                    continue
                req.match = m
                return name, handler, store, mutating
        raise ShopError("rest_no_route", "No route was found matching the URL and request method.", 404)

    def _session(self, req: Request, mutating: bool) -> None:
        """Find the session from Cart-Token; refuse a mutation without a valid Nonce or token."""
        session = self.tokens.session_of(req.header("Cart-Token"))
        token_valid = session is not None
        req.session = session or self.tokens.new_session()
        if not mutating or token_valid:
            return
        nonce = req.header("Nonce") or req.header("X-WC-Store-API-Nonce")
        if not nonce:
            raise ShopError("woocommerce_rest_missing_nonce",
                            "Missing the Nonce header. This endpoint requires a valid nonce.", 401)
        raise ShopError("woocommerce_rest_invalid_nonce", "Nonce is invalid.", 403)

    def _store_headers(self, session: str) -> Dict[str, str]:
        now = time.time()
        return {"Cart-Token": self.tokens.cart_token(session, now),
                "Nonce": self.tokens.nonce(session, now), "Nonce-Timestamp": str(int(now)),
                "Access-Control-Expose-Headers": "Cart-Token, Nonce, Nonce-Timestamp"}

    def _access(self, req: Request, route: str, status: int, code: Optional[str], size: int,
                started: float, cause: Optional[str] = None, db: Optional[str] = None) -> None:
        if not self.config.access_log:
            return
        if self._log_fd is None or self._log_pid != os.getpid():  # reopen after fork
            self._log_fd = os.open(self.config.access_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._log_pid = os.getpid()
        now = time.time()
        line = json.dumps({
            "ts": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds"),
            "t": round(now, 3), "method": req.method, "path": req.path, "route": route,
            "status": status, "code": code, "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            "bytes": size, "cause": cause, "db": db, "pid": self._log_pid}, separators=(",", ":"))
        os.write(self._log_fd, line.encode() + b"\n")

    # -- Store API handlers --
    def list_products(self, req: Request) -> Result:
        page, per_page, category, search = listing_args(req.query)
        listing = self.catalog.listing(page, per_page, category, search)
        return 200, listing["body"].encode("utf-8"), {
            "X-WP-Total": str(listing["total"]), "X-WP-TotalPages": str(listing["pages"])}

    def get_product(self, req: Request) -> Result:
        return 200, product_shape(self.catalog.product(int(req.match.group(1))), self.config), {}

    def get_cart(self, req: Request) -> Result:
        return 200, cart_shape(self.carts.get(req.session), self.config), {}

    def add_item(self, req: Request) -> Result:
        return 201, cart_shape(self.carts.add_item(req.session, req.json()), self.config), {}

    def update_item(self, req: Request) -> Result:
        return 200, cart_shape(self.carts.update_item(req.session, req.json()), self.config), {}

    def remove_item(self, req: Request) -> Result:
        return 200, cart_shape(self.carts.remove_item(req.session, req.json()), self.config), {}

    def place_order(self, req: Request) -> Result:
        return 200, self.checkout.place(req.session, req.json()), {}

    def get_store_order(self, req: Request) -> Result:
        return 200, self.store_orders.get(int(req.match.group(1)), req.query), {}

    # -- REST v3 and health --
    def get_order(self, req: Request) -> Result:
        self.auth.check(req.environ)
        return 200, self.orders.get(int(req.match.group(1))), {}

    def update_order(self, req: Request) -> Result:
        self.auth.check(req.environ)
        return 200, self.order_changes.update(int(req.match.group(1)), req.json()), {}

    def delete_order(self, req: Request) -> Result:
        self.auth.check(req.environ)
        force = str(req.query.get("force", "")).lower() in ("1", "true")
        return 200, self.order_changes.delete(int(req.match.group(1)), force), {}

    def guest_checkout_setting(self, req: Request) -> Result:
        """The one WooCommerce setting the preflight reads: the stand-in shop always allows guests."""
        self.auth.check(req.environ)
        return 200, {"id": "woocommerce_enable_guest_checkout", "label": "Guest checkout",
                     "type": "checkbox", "default": "yes", "value": "yes"}, {}

    def list_orders(self, req: Request) -> Result:
        self.auth.check(req.environ)
        orders, total = self.orders.listing(req.query)
        per_page = int(req.query.get("per_page") or 10)
        return 200, orders, {"X-WP-Total": str(total),
                             "X-WP-TotalPages": str(max(1, -(-total // per_page)))}

    def health(self, req: Request) -> Result:
        checks = {"db": self._check(self._ping_db), "cache": self._check(self._probe.ping)}
        ok = all(c["ok"] for c in checks.values())
        knobs = {k: v for k, v in self.config.public().items()
                 if k in ("connection_timeout", "read_write_timeout", "retry_wait", "max_retries",
                          "retry", "cart_wait_replicas", "cache_fail_open", "db_connect_timeout", "profile")}
        return (200 if ok else 503), {"status": "ok" if ok else "degraded", **checks,
                                      "resilience": knobs, "pid": os.getpid()}, {}

    def _ping_db(self) -> None:
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")

    @staticmethod
    def _check(probe: Callable[[], Any]) -> Dict[str, Any]:
        started = time.perf_counter()
        try:
            probe()
            error = None
        except Exception as exc:  # health reports any failure; it never raises
            error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        return {"ok": error is None, "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                "error": error}


_REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 409: "Conflict", 413: "Payload Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}
