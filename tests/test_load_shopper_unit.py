"""The shopper's cart bookkeeping (chaosext/loadtests/shopper.py), step by step with a scripted
store: what counts as a lost cart, and what a checkout that got no answer changes about it."""
import os
import types

import pytest


def _import_without_gevent_patching():
    """Locust patches the whole process with gevent when first imported; after the test session
    has imported ssl and friends that recurses, and these tests need none of it. The variable is
    put back at once: the Locust processes other tests start must be patched as usual."""
    before = os.environ.get("LOCUST_SKIP_MONKEY_PATCH")
    os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"
    try:
        from chaosext.load.recorder import CartLost
        from chaosext.loadtests.shopper import Shopper
    finally:
        if before is None:
            del os.environ["LOCUST_SKIP_MONKEY_PATCH"]
        else:
            os.environ["LOCUST_SKIP_MONKEY_PATCH"] = before
    return CartLost, Shopper


CartLost, Shopper = _import_without_gevent_patching()


class Answer:
    """A Locust response inside `catch_response`: status, JSON body, and how the step ended."""

    def __init__(self, status, body=None):
        self.status_code, self.body, self.headers = status, body, {}
        self.ok = status < 400  # as Locust's FastResponse: status 0 (no answer) is "ok" too
        self.failed = None

    def json(self):
        if self.body is None:
            raise ValueError("no body")
        return self.body

    def failure(self, exc):
        self.failed = exc

    def success(self):
        self.succeeded = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def cart(*ids):
    return {"items": [{"id": pid, "quantity": 1} for pid in ids]}


@pytest.fixture
def shopper():
    """A Shopper's state and its own methods, the store answering from `shopper.answers`."""
    me = types.SimpleNamespace(cart={}, maybe_ordered={}, number=1, products=[7, 8],
                               address=dict(Shopper.address), answers=[], seen=[],
                               order_received_check=True)
    for name in ("_check_cart", "_emptied_by_late_checkout", "add_to_cart", "view_cart", "checkout",
                 "restart_session", "order_received"):
        setattr(me, name, types.MethodType(getattr(Shopper, name), me))
    me._remember = lambda response: None

    def call(method, path, step, body=None):
        answer = me.answers.pop(0)
        answer.path = path
        me.seen.append((step, answer))
        return answer
    me._call = call
    return me


def lost(shopper):
    return [a.failed for _, a in shopper.seen if isinstance(a.failed, CartLost)]


def test_an_item_missing_from_an_acknowledged_cart_is_a_lost_cart(shopper):
    shopper.cart = {7: 1, 8: 1}
    shopper.answers = [Answer(200, cart(8))]
    shopper.view_cart()
    assert len(lost(shopper)) == 1 and "7" in str(lost(shopper)[0])


def test_after_a_checkout_without_answer_an_empty_cart_is_not_lost(shopper):
    shopper.cart = {7: 1}
    shopper.answers = [Answer(0), Answer(200, cart())]  # the request timed out; the order went through
    shopper.checkout()
    shopper.view_cart()
    assert lost(shopper) == [] and shopper.cart == {}


def test_after_a_checkout_without_answer_other_missing_items_are_still_lost(shopper):
    shopper.cart = {7: 1}
    shopper.answers = [Answer(0), Answer(201, cart(8))]
    shopper.checkout()
    shopper.products = [8]
    shopper.add_to_cart()  # adds 8: the order took 7 along, fine
    assert lost(shopper) == [] and shopper.cart == {8: 1}
    shopper.answers = [Answer(200, cart())]
    shopper.view_cart()  # 8 was acknowledged after the checkout: its loss counts
    assert len(lost(shopper)) == 1


def test_an_unanswered_checkout_completing_late_also_empties_what_was_added_meanwhile(shopper):
    shopper.cart = {7: 1}
    shopper.products = [8]
    shopper.answers = [Answer(0), Answer(201, cart(7, 8)), Answer(201, cart(8))]
    shopper.checkout()  # no answer: the shop still holds the request (a network cut)
    shopper.add_to_cart()  # 8 joins 7: the order has not completed yet
    assert lost(shopper) == [] and shopper.cart == {7: 1, 8: 1}
    shopper.add_to_cart()  # it completed, emptying the cart (7 and the first 8); then this 8
    assert lost(shopper) == [] and shopper.cart == {8: 1} and shopper.maybe_ordered == {}


def test_while_a_checkout_is_unanswered_losing_other_items_but_not_its_own_is_a_loss(shopper):
    shopper.cart = {7: 1}
    shopper.products = [8]
    shopper.answers = [Answer(0), Answer(201, cart(7, 8)), Answer(200, cart(7))]
    shopper.checkout()
    shopper.add_to_cart()
    shopper.view_cart()  # 7 still there: the order did not empty the cart; 8 vanished on its own
    assert len(lost(shopper)) == 1 and "8" in str(lost(shopper)[0])


def test_an_empty_cart_at_checkout_is_lost_unless_the_last_checkout_got_no_answer(shopper):
    empty = {"code": "woocommerce_rest_cart_empty", "message": "Cannot create order from empty cart."}
    shopper.cart = {7: 1}
    shopper.answers = [Answer(400, empty)]
    shopper.checkout()
    assert len(lost(shopper)) == 1
    shopper.seen.clear()
    shopper.cart = {7: 1}
    shopper.answers = [Answer(0), Answer(400, empty)]
    shopper.checkout()
    shopper.checkout()
    assert lost(shopper) == []


def test_a_checkout_finding_the_cart_emptied_by_a_late_checkout_loses_nothing_added_meanwhile(shopper):
    """A checkout held by a network cut times out for the shopper, who adds another item; the
    held one completes at the cut's end and empties the whole cart; the next checkout finds it
    empty: every item went with the order, none was lost."""
    empty = {"code": "woocommerce_rest_cart_empty", "message": "Cannot create order from empty cart."}
    shopper.cart = {7: 1}
    shopper.products = [8]
    shopper.answers = [Answer(0), Answer(201, cart(7, 8)), Answer(400, empty)]
    shopper.checkout()  # no answer
    shopper.add_to_cart()  # answered before the held checkout completed: 7 and 8
    shopper.checkout()  # the cart was emptied by the late order
    assert lost(shopper) == [] and shopper.cart == {} and shopper.maybe_ordered == {}


def test_a_checkout_finding_the_cart_empty_after_the_late_order_was_settled_is_a_loss(shopper):
    empty = {"code": "woocommerce_rest_cart_empty", "message": "Cannot create order from empty cart."}
    shopper.cart = {7: 1}
    shopper.products = [8]
    shopper.answers = [Answer(0), Answer(201, cart(8)), Answer(400, empty)]
    shopper.checkout()  # no answer
    shopper.add_to_cart()  # 7 gone with the late order, 8 in: settled
    assert lost(shopper) == [] and shopper.maybe_ordered == {}
    shopper.checkout()  # 8 vanished on its own
    assert len(lost(shopper)) == 1 and "8" in str(lost(shopper)[0])


def test_an_unanswered_checkout_may_empty_the_cart_long_after_the_shopper_saw_it_full(shopper):
    shopper.cart = {7: 1, 8: 1}
    shopper.answers = [Answer(0), Answer(200, cart(7, 8)), Answer(200, cart())]
    shopper.checkout()  # no answer; the shop still holds the request
    shopper.view_cart()  # still full: the order is not placed yet
    shopper.view_cart()  # now it is, and the cart is empty
    assert lost(shopper) == []


def test_an_add_that_got_no_answer_is_not_taken_for_acknowledged(shopper):
    shopper.products = [7]
    shopper.answers = [Answer(0), Answer(200, cart())]
    assert shopper.add_to_cart() is False
    shopper.view_cart()  # 7 never made it: no loss, and nothing expected
    assert lost(shopper) == [] and shopper.cart == {}


ORDER = {"order_id": 41, "order_key": "wc_order_abc", "status": "processing",
         "payment_result": {"payment_status": "success"}}


def test_an_acknowledged_order_is_read_back_with_its_key_and_billing_email(shopper):
    shopper.cart = {7: 1}
    shopper.answers = [Answer(200, ORDER), Answer(200, {"id": 41, "status": "processing"})]
    shopper.checkout()
    step, answer = shopper.seen[-1]
    assert step == "order_received" and answer.failed is None
    assert answer.path == "/order/41?key=wc_order_abc&billing_email=shopper1%40example.com"


@pytest.mark.parametrize("status", [404, 401])  # 401: WooCommerce releases that check the key first
def test_an_acknowledged_order_the_store_cannot_find_is_an_order_not_visible_failure(shopper, status):
    shopper.cart = {7: 1}
    missing = {"code": "woocommerce_rest_invalid_order", "message": "Invalid order ID."}
    shopper.answers = [Answer(200, ORDER), Answer(status, missing)]
    shopper.checkout()
    failed = shopper.seen[-1][1].failed
    assert failed is not None and failed.label == "order_not_visible" and "41" in str(failed)


def test_an_outage_on_the_read_back_is_an_http_failure_not_an_invisible_order(shopper):
    shopper.cart = {7: 1}
    down = {"code": "woocommerce_rest_database_unavailable", "message": "try again"}
    shopper.answers = [Answer(200, ORDER), Answer(503, down)]
    shopper.checkout()
    assert shopper.seen[-1][1].failed is None  # Locust fails it by its status: "503 <code>"


def test_a_store_without_the_order_route_turns_the_read_back_off(shopper, monkeypatch):
    monkeypatch.setattr(Shopper, "order_received_check", True)
    shopper.cart = {7: 1}
    no_route = {"code": "rest_no_route", "message": "No route was found matching the URL"}
    shopper.answers = [Answer(200, ORDER), Answer(404, no_route)]
    shopper.checkout()
    answer = shopper.seen[-1][1]
    assert answer.failed is None and answer.succeeded and Shopper.order_received_check is False
