"""A minimal WooCommerce Store API client for probes: one guest session, as a browser keeps it.

It carries the `Nonce` and `Cart-Token` headers the store hands out, like the blocks checkout,
so the same probes work against the stand-in shop and a real WooCommerce store.
"""
import json
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from chaosext.errors import ActivityError
from chaosext.load.config import shop_url_of
from chaosext.shop.marker import order_note

STORE = "/wp-json/wc/store/v1"
GUEST_ADDRESS = {"first_name": "Game", "last_name": "Day", "address_1": "1 Failover Street",
                 "city": "San Francisco", "state": "CA", "postcode": "94110", "country": "US",
                 "email": "gameday@example.com", "phone": "5550100"}


@dataclass
class Response:
    status: int
    body: Any
    headers: Dict[str, str]
    seconds: float


@dataclass
class StoreSession:
    base_url: str
    timeout: float = 10.0
    headers: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_configuration(cls, configuration, shop_url: Optional[str] = None, timeout: float = 10.0):
        base = shop_url_of(configuration, shop_url)
        if not base:
            raise ActivityError("no shop URL: pass shop_url, or set configuration shop_url or $GAMEDAY_SHOP_URL")
        return cls(base.rstrip("/"), timeout)

    def request(self, method: str, path: str, payload: Optional[dict] = None) -> Response:
        """One call; HTTP errors are answers (returned), transport failures are status 0."""
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", **self.headers})
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                status, raw, headers = reply.status, reply.read(), dict(reply.headers)
        except urllib.error.HTTPError as exc:
            status, raw, headers = exc.code, exc.read(), dict(exc.headers)
        except (OSError, ValueError) as exc:
            return Response(0, {"code": type(exc).__name__, "message": str(exc)}, {},
                            time.monotonic() - started)
        for name in ("Nonce", "Cart-Token"):
            if headers.get(name):
                self.headers[name] = headers[name]
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")[:200]
        return Response(status, body, headers, time.monotonic() - started)

    def fill_cart(self, items: int = 1) -> Tuple[bool, str, Dict[int, int]]:
        """Start a session and put `items` in-stock products in the cart -> (ok, why, {id: qty})."""
        cart = self.request("GET", f"{STORE}/cart")
        if cart.status != 200:
            return False, f"GET cart answered {cart.status} {_code(cart)}", {}
        listing = self.request("GET", f"{STORE}/products?per_page=50")
        if listing.status != 200 or not isinstance(listing.body, list):
            return False, f"GET products answered {listing.status} {_code(listing)}", {}
        # plenty of stock, so a low-stock item sold out by the load never fails the probe
        stocked = [p["id"] for p in listing.body if p.get("is_in_stock", True)
                   and ((p.get("add_to_cart") or {}).get("maximum") or 100) >= 10]
        wanted = random.sample(stocked, min(items, len(stocked)))
        added: Dict[int, int] = {}
        for product_id in wanted:
            reply = self.request("POST", f"{STORE}/cart/add-item", {"id": product_id, "quantity": 1})
            if reply.status not in (200, 201):
                return False, f"add-item {product_id} answered {reply.status} {_code(reply)}", added
            added[product_id] = 1
        return bool(added), "cart filled" if added else "no product in stock", added

    def checkout(self) -> Response:
        """Guest checkout with `cod`; the order carries the run's mark in its customer note."""
        return self.request("POST", f"{STORE}/checkout", {
            "billing_address": GUEST_ADDRESS, "shipping_address": GUEST_ADDRESS, "payment_method": "cod",
            "customer_note": order_note()})

    def cart_items(self) -> Optional[Dict[int, int]]:
        """{product id: quantity} of the current cart, or None when the store did not answer."""
        reply = self.request("GET", f"{STORE}/cart")
        if reply.status != 200 or not isinstance(reply.body, dict):
            return None
        return {item["id"]: item["quantity"] for item in reply.body.get("items", [])}


def _code(response: Response) -> str:
    body = response.body
    return body.get("code", "") if isinstance(body, dict) else ""
