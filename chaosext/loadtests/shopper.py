"""Guest shoppers on the WooCommerce Store API v1: browse, view a product, add to cart, view the
cart, check out with Cash on delivery.

Each shopper is one browser session: it keeps the ``Nonce`` and ``Cart-Token`` response headers
and sends them back on every request, as the WooCommerce blocks checkout does, so the same file
runs against the lab's stand-in shop and a real store. Requests are named by journey step
(``browse``, ``product``, ``add_to_cart``, ``view_cart``, ``checkout``, ``order_received``) so
statistics group per step. Right after an acknowledged checkout the shopper reads its order back
through the Store API's order route (``order_received``: what the order-received page shows); an
order the store answers it cannot find is a read-your-writes failure, error class
``order_not_visible``. Measurement lives in :mod:`chaosext.load.recorder` (imported below),
not in the tasks.

Settings (command line or environment): ``--browse-weight`` ``--product-weight``
``--add-to-cart-weight`` ``--view-cart-weight`` ``--checkout-weight`` (integers, 0 disables a
step), ``--order-received-check`` (1 default, 0 skips the read-back), ``--think-min``/
``--think-max`` (seconds between steps), ``--request-timeout``, and the checkout address
``--address-country``/``--address-state``/``--address-postcode``/``--address-city``.
Every task is tagged with its step name, so ``--tags checkout`` or ``--exclude-tags browse`` work.

Run: ``locust -f loadtests/shopper.py --headless -u 20 -r 5 --run-time 1m --host http://shop``
"""
from __future__ import annotations

import itertools
import random
import sys
from typing import Any, Dict, List, Optional
from urllib.parse import urlencode

from locust import FastHttpUser, between, constant, events, tag, task

from chaosext.load.recorder import CartLost, StepFailed, order_acknowledged
from chaosext.shop.marker import order_note

API = "/wp-json/wc/store/v1"
# WooCommerce's answer for an order it cannot find (404), or that fails the key check (401,
# older releases) — right after an acknowledged checkout, either means the order was not visible
ORDER_NOT_FOUND = "woocommerce_rest_invalid_order"
ORDER_NOT_VISIBLE = "order_not_visible"  # the error class timelines and reports count

# flag, environment variable, type, default, help
SETTINGS = [
    ("--browse-weight", "SHOPPER_BROWSE_WEIGHT", int, 10, "weight of listing products"),
    ("--product-weight", "SHOPPER_PRODUCT_WEIGHT", int, 8, "weight of viewing one product"),
    ("--add-to-cart-weight", "SHOPPER_ADD_TO_CART_WEIGHT", int, 4, "weight of adding to cart"),
    ("--view-cart-weight", "SHOPPER_VIEW_CART_WEIGHT", int, 3, "weight of viewing the cart"),
    ("--checkout-weight", "SHOPPER_CHECKOUT_WEIGHT", int, 2, "weight of checking out"),
    ("--order-received-check", "SHOPPER_ORDER_RECEIVED_CHECK", int, 1,
     "1: read the order back right after checkout (read-your-writes); 0: skip it"),
    ("--think-min", "SHOPPER_THINK_MIN", float, 0.5, "least seconds between steps"),
    ("--think-max", "SHOPPER_THINK_MAX", float, 2.0, "most seconds between steps"),
    ("--request-timeout", "SHOPPER_REQUEST_TIMEOUT", float, 10.0,
     "seconds before a request counts as failed (connect: half of it)"),
    ("--address-country", "SHOPPER_COUNTRY", str, "US", "checkout address country (ISO code)"),
    ("--address-state", "SHOPPER_STATE", str, "CA", "checkout address state"),
    ("--address-postcode", "SHOPPER_POSTCODE", str, "94110", "checkout address postcode"),
    ("--address-city", "SHOPPER_CITY", str, "San Francisco", "checkout address city"),
]
STEPS = ("browse", "product", "add_to_cart", "view_cart", "checkout")
_shopper_numbers = itertools.count(1)


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("gameday shopper")
    for flag, env, kind, default, help_text in SETTINGS:
        group.add_argument(flag, type=kind, default=default, env_var=env, help=help_text)


@events.init.add_listener
def _configure(environment: Any, **_: Any) -> None:
    """Apply weights and think times before users spawn (Locust filters --tags afterwards)."""
    opts = environment.parsed_options
    if opts is None:  # library use without a command line: keep the defaults
        opts = type("Defaults", (), {f[0][2:].replace("-", "_"): f[3] for f in SETTINGS})()
    weights = {step: getattr(opts, step + "_weight") for step in STEPS}
    bad = [f"--{s.replace('_', '-')}-weight={w}" for s, w in weights.items() if w < 0]
    if bad or not any(weights.values()):
        sys.exit("shopper: journey weights must be >= 0 and at least one > 0 (got "
                 + (", ".join(bad) or "all zero") + ")")
    if not 0 <= opts.think_min <= opts.think_max:
        sys.exit(f"shopper: need 0 <= --think-min ({opts.think_min}) <= --think-max "
                 f"({opts.think_max})")
    if opts.request_timeout <= 0:
        sys.exit("shopper: --request-timeout must be > 0")
    if opts.order_received_check not in (0, 1):
        sys.exit(f"shopper: --order-received-check must be 0 or 1 (got {opts.order_received_check})")
    Shopper.order_received_check = bool(opts.order_received_check)
    Shopper.tasks = [getattr(Shopper, step) for step, w in weights.items() for _ in range(w)]
    Shopper.wait_time = (constant(0) if opts.think_max == 0
                         else between(opts.think_min, opts.think_max))
    Shopper.network_timeout = opts.request_timeout
    Shopper.connection_timeout = opts.request_timeout / 2
    Shopper.address = {"city": opts.address_city, "postcode": opts.address_postcode,
                       "country": opts.address_country, "state": opts.address_state}


class Shopper(FastHttpUser):
    """One guest browser session on the shop."""

    address: Dict[str, str] = {"city": "San Francisco", "postcode": "94110",
                               "country": "US", "state": "CA"}
    order_received_check = True  # off for the run once the store answers that it lacks the route

    def on_start(self) -> None:
        self.number = next(_shopper_numbers)
        self.nonce: Optional[str] = None
        self.cart_token: Optional[str] = None
        self.products: List[int] = []
        self.pages = 1
        self.cart: Dict[int, int] = {}  # what this shopper put in its cart: product id -> qty
        # the cart of a checkout that got no answer (timeout, reset): the order may still be
        # placed later (the request can outlive the client by tens of seconds), so these items
        # leaving the cart is no loss, until they do or an acknowledged checkout settles it
        self.maybe_ordered: Dict[int, int] = {}
        self.browse()
        self.view_cart()  # a fresh session gets its Nonce and Cart-Token here

    # ---------------------------------------------------------------- the session headers
    def restart_session(self) -> None:
        """Drop the cart and its session, like a shopper who gives up and opens a new tab."""
        self.nonce = self.cart_token = None
        self.cart = {}
        self.view_cart()

    def _headers(self) -> Dict[str, str]:
        headers = {}
        if self.nonce:
            headers["Nonce"] = self.nonce
        if self.cart_token:
            headers["Cart-Token"] = self.cart_token
        return headers

    def _remember(self, response: Any) -> None:
        headers = response.headers or {}
        self.nonce = headers.get("Nonce") or self.nonce
        self.cart_token = headers.get("Cart-Token") or self.cart_token

    def _call(self, method: str, path: str, step: str, body: Any = None):
        return self.client.request(method, API + path, name=step, json=body,
                                   headers=self._headers(), catch_response=True)

    def _check_cart(self, response: Any, data: Any) -> None:
        """Fail the step as ``cart_lost`` when items this shopper added are gone."""
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            response.failure(StepFailed("cart response has no items list"))
            return
        actual: Dict[int, int] = {}
        for item in items:
            pid = item.get("id")
            actual[pid] = actual.get(pid, 0) + int(item.get("quantity", 0) or 0)
        missing = {pid: qty for pid, qty in self.cart.items() if actual.get(pid, 0) < qty}
        excused = self._emptied_by_late_checkout(missing)
        self.cart = actual
        if missing and not excused:
            response.failure(CartLost(f"cart came back without {missing} (session lost)"))

    def _emptied_by_late_checkout(self, missing: Dict[int, int]) -> bool:
        """Whether the checkout that got no answer explains these items leaving the cart (and
        then it is settled). Completing late, it empties the whole cart, as WooCommerce's
        empty_cart() after the order does: its own items go, and so does whatever this shopper
        added while it was still running. All its items gone is the sign it completed."""
        excused = bool(missing) and bool(self.maybe_ordered) and set(self.maybe_ordered) <= set(missing)
        if excused:
            self.maybe_ordered = {}
        return excused

    # ---------------------------------------------------------------- journey steps
    @tag("browse")
    @task
    def browse(self) -> None:
        page = random.randint(1, self.pages)
        with self._call("GET", f"/products?per_page=20&page={page}", "browse") as resp:
            self._remember(resp)
            if not _answered_ok(resp):
                return
            data = _json(resp)
            if not isinstance(data, list):
                resp.failure(StepFailed("product list is not a JSON array"))
                return
            found = [p["id"] for p in data if isinstance(p, dict) and _buyable(p)]
            if found:
                self.products = found
            self.pages = max(1, int(resp.headers.get("X-WP-TotalPages") or 1))

    @tag("product")
    @task
    def product(self) -> None:
        if not self.products:
            return self.browse()
        pid = random.choice(self.products)
        with self._call("GET", f"/products/{pid}", "product") as resp:
            self._remember(resp)
            if _answered_ok(resp) and (_json(resp) or {}).get("id") != pid:
                resp.failure(StepFailed(f"product {pid} answered with another id"))

    @tag("add_to_cart")
    @task
    def add_to_cart(self) -> bool:
        if not self.products:
            self.browse()
            if not self.products:
                return False
        pid = random.choice(self.products)
        with self._call("POST", "/cart/add-item", "add_to_cart", {"id": pid, "quantity": 1}) as resp:
            self._remember(resp)
            if not _answered_ok(resp):  # a timed-out add may or may not be in the cart
                return False
            self.cart[pid] = self.cart.get(pid, 0) + 1
            self._check_cart(resp, _json(resp))
            return bool(self.cart)

    @tag("view_cart")
    @task
    def view_cart(self) -> None:
        with self._call("GET", "/cart", "view_cart") as resp:
            self._remember(resp)
            if _answered_ok(resp):
                self._check_cart(resp, _json(resp))

    @tag("checkout")
    @task
    def checkout(self) -> None:
        if not self.cart and not self.add_to_cart():
            return
        billing = {"first_name": "Game", "last_name": f"Day{self.number}",
                   "address_1": "1 Failover Street", **self.address,
                   "email": f"shopper{self.number}@example.com", "phone": "5550100"}
        shipping = {k: v for k, v in billing.items() if k not in ("email",)}
        body = {"billing_address": billing, "shipping_address": shipping,
                "payment_method": "cod", "payment_data": [], "customer_note": order_note()}
        with self._call("POST", "/checkout", "checkout", body) as resp:
            self._remember(resp)
            data = _json(resp) or {}
            if not resp.status_code:  # no answer: the order may exist (not acknowledged)
                self.maybe_ordered = dict(self.cart)
                return
            if not resp.ok:
                if data.get("code") == "woocommerce_rest_cart_empty" and self.cart:
                    lost, self.cart = self.cart, {}
                    excused = self._emptied_by_late_checkout(lost)
                    self.maybe_ordered = {}
                    if not excused:
                        resp.failure(CartLost(f"checkout found the cart empty; had {lost}"))
                elif 400 <= resp.status_code < 500:
                    self.restart_session()  # e.g. out of stock: this cart can never check out
                return
            order_id = data.get("order_id")
            if not order_id:
                resp.failure(StepFailed("checkout answered without an order_id", "no_order_id"))
                return
            self.cart, self.maybe_ordered = {}, {}
            order_acknowledged.fire(order_id=order_id, order_key=data.get("order_key"),
                                    status=data.get("status"))
            payment = (data.get("payment_result") or {}).get("payment_status")
            if payment == "failure":
                resp.failure(StepFailed(f"order {order_id}: payment failed", "payment_failed"))
        if self.order_received_check:
            self.order_received(order_id, data.get("order_key"), billing["email"])

    def order_received(self, order_id: Any, order_key: Any, email: str) -> None:
        """Read the order just placed back, as the order-received page does: an acknowledged
        order the store cannot find is a read-your-writes failure (``order_not_visible``)."""
        query = urlencode({"key": order_key or "", "billing_email": email})
        with self._call("GET", f"/order/{order_id}?{query}", "order_received") as resp:
            self._remember(resp)
            data = _json(resp)
            data = data if isinstance(data, dict) else {}
            code = data.get("code")
            if resp.status_code == 404 and code == "rest_no_route":
                resp.success()  # a WooCommerce without the Store API order route: no check
                Shopper.order_received_check = False
            elif resp.status_code in (401, 404) and code == ORDER_NOT_FOUND:
                resp.failure(StepFailed(f"order {order_id} acknowledged by checkout but not found: "
                                        f"{data.get('message')}", ORDER_NOT_VISIBLE))
            elif _answered_ok(resp) and data.get("id") != order_id:
                resp.failure(StepFailed(f"order {order_id} answered with id {data.get('id')}"))


def _answered_ok(response: Any) -> bool:
    """A 2xx/3xx answer. Locust gives a request that got no answer (timeout, reset) status 0,
    and its `ok` is true for any status below 400, so `ok` alone would take a timed-out add
    for an acknowledged one."""
    return 0 < response.status_code < 400


def _json(response: Any) -> Any:
    try:
        return response.json()
    except (ValueError, TypeError):
        return None


def _buyable(product: Dict[str, Any]) -> bool:
    """Simple products a guest can add without choosing a variation."""
    return (product.get("is_purchasable", True) and product.get("is_in_stock", True)
            and product.get("type", "simple") == "simple" and "id" in product)
