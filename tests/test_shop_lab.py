"""The stand-in shop against the real lab: journey, bad input, stock guard, failovers.

Needs the `lab` fixture (real MariaDB primary/standby, Redis + Sentinel, HAProxy, the shop).
"""
import base64
import json
import threading
import urllib.error
import urllib.request

import pymysql
import pytest
import redis

from groundfloor.supervisor import poll_until

pytestmark = pytest.mark.lab
STORE = "/wp-json/wc/store/v1"
BILLING = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
           "address_1": "1 Main St", "city": "London", "postcode": "N1", "country": "GB"}


class Shopper:
    """One guest: keeps the Cart-Token and Nonce the shop hands out, like a Store API client."""

    def __init__(self, url: str):
        self.url = url
        self.auth = {}

    def call(self, method, path, body=None, raw=None, headers=None, timeout=30):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **self.auth,
                                              **(headers or {})})
        try:
            resp = urllib.request.urlopen(req, timeout=timeout)
        except urllib.error.HTTPError as err:
            resp = err
        payload = json.loads(resp.read() or b"null")
        if resp.headers.get("Cart-Token"):
            self.auth = {"Cart-Token": resp.headers["Cart-Token"], "Nonce": resp.headers["Nonce"]}
        return resp.status, resp.headers, payload

    def start(self):
        self.call("GET", STORE + "/cart")
        return self

    def add(self, pid, quantity=1):
        return self.call("POST", STORE + "/cart/add-item", {"id": pid, "quantity": quantity})

    def checkout(self, **overrides):
        return self.call("POST", STORE + "/checkout",
                         {"billing_address": BILLING, "payment_method": "cod", **overrides})


@pytest.fixture(scope="module")
def shop_url(lab):
    return lab.env["GAMEDAY_SHOP_URL"]


@pytest.fixture
def db(lab):
    e = lab.env
    conn = pymysql.connect(host=lab.resolve(e["GAMEDAY_MYSQL_HOST"]), port=int(e["GAMEDAY_MYSQL_PORT"]),
                           user=e["GAMEDAY_MYSQL_USER"], password=e["GAMEDAY_MYSQL_PASSWORD"],
                           database=e["GAMEDAY_MYSQL_DATABASE"], ssl_disabled=True, autocommit=True)
    yield conn
    conn.close()


def scalar(db, sql, *args):
    with db.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()[0]


def read_order(lab, shop_url, order_id):
    """Basic credentials, which WooCommerce reads only over HTTPS: the lab's HTTPS is a TLS
    proxy's X-Forwarded-Proto header on loopback (woolab/shop/auth.py)."""
    token = base64.b64encode(f"{lab.env['GAMEDAY_SHOP_CONSUMER_KEY']}:"
                             f"{lab.env['GAMEDAY_SHOP_CONSUMER_SECRET']}".encode()).decode()
    return Shopper(shop_url).call("GET", f"/wp-json/wc/v3/orders/{order_id}",
                                  headers={"Authorization": "Basic " + token,
                                           "X-Forwarded-Proto": "https"})


def test_shop_journey_from_browse_to_order_readable_over_v3(lab, shop_url):
    shopper = Shopper(shop_url)
    status, headers, products = shopper.call("GET", STORE + "/products?per_page=5&category=decor")
    assert status == 200 and len(products) == 5 and int(headers["X-WP-Total"]) == 25
    assert all(p["categories"][0]["slug"] == "decor" for p in products)
    assert {"id", "name", "slug", "prices", "is_in_stock"} <= set(products[0])
    status, _, product = shopper.call("GET", f"{STORE}/products/{products[0]['id']}")
    assert status == 200 and product["prices"]["currency_minor_unit"] == 2
    status, _, cart = shopper.add(products[0]["id"], 2)
    assert status == 201 and cart["items_count"] == 2
    status, _, cart = shopper.add(products[1]["id"])
    key = cart["items"][1]["key"]
    status, _, cart = shopper.call("POST", STORE + "/cart/update-item", {"key": key, "quantity": 3})
    assert status == 200 and cart["items_count"] == 5
    status, _, cart = shopper.call("POST", STORE + "/cart/remove-item", {"key": key})
    assert status == 200 and cart["items_count"] == 2
    expected_total = int(cart["totals"]["total_price"])
    status, _, order = shopper.checkout(customer_note="leave at door")
    assert status == 200 and order["status"] == "processing"
    assert order["payment_result"]["payment_status"] == "success"
    assert order["order_key"].startswith("wc_order_")
    assert shopper.call("GET", STORE + "/cart")[2]["items_count"] == 0  # cleared after commit
    status, _, stored = read_order(lab, shop_url, order["order_id"])
    assert status == 200 and stored["order_key"] == order["order_key"]
    assert round(float(stored["total"]) * 100) == expected_total
    assert stored["billing"]["email"] == BILLING["email"] and stored["customer_note"] == "leave at door"


@pytest.mark.parametrize("case", ["unknown product", "over stock", "empty cart", "invalid email",
                                  "unknown payment method", "malformed json", "oversize body"])
def test_bad_input_gets_a_woocommerce_error_and_writes_nothing(shop_url, db, case):
    shopper = Shopper(shop_url).start()
    if case not in ("empty cart", "unknown product", "over stock"):
        assert shopper.add(7)[0] == 201
    orders_before = scalar(db, "SELECT COUNT(*) FROM orders")
    stock_before = scalar(db, "SELECT SUM(stock) FROM products")
    expected = {
        "unknown product": (lambda: shopper.add(99999), 404, "woocommerce_rest_product_invalid_id"),
        "over stock": (lambda: shopper.add(7, 10 ** 6), 400, "woocommerce_rest_product_partially_out_of_stock"),
        "empty cart": (lambda: shopper.checkout(), 400, "woocommerce_rest_cart_empty"),
        "invalid email": (lambda: shopper.checkout(billing_address={**BILLING, "email": "x@"}),
                          400, "rest_invalid_param"),
        "unknown payment method": (lambda: shopper.checkout(payment_method="stripe"),
                                   400, "woocommerce_rest_checkout_payment_method_disabled"),
        "malformed json": (lambda: shopper.call("POST", STORE + "/checkout", raw=b'{"billing_address":'),
                           400, "rest_invalid_json"),
        "oversize body": (lambda: shopper.call("POST", STORE + "/checkout", raw=b" " * 100_000),
                          413, "rest_request_entity_too_large"),
    }[case]
    status, _, body = expected[0]()
    assert (status, body["code"]) == expected[1:]
    assert body["data"]["status"] == status and body["message"]
    assert scalar(db, "SELECT COUNT(*) FROM orders") == orders_before
    assert scalar(db, "SELECT SUM(stock) FROM products") == stock_before


def test_concurrent_checkouts_never_take_stock_below_zero(lab, shop_url, db):
    pid = 150
    with db.cursor() as cur:
        cur.execute("UPDATE products SET stock = 3 WHERE id = %s", (pid,))
    # a stock change through WooCommerce cleans the product's object cache; this one is SQL, so
    # the product a shopper viewed in the last minute (stock 0 after the lab's load) goes too
    cache_primary(lab).delete(f"wc:product:{pid}")
    shoppers = [Shopper(shop_url).start() for _ in range(8)]
    for s in shoppers:
        assert s.add(pid)[0] == 201
    results = []
    threads = [threading.Thread(target=lambda s=s: results.append(s.checkout())) for s in shoppers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r[0] for r in results)
    assert statuses == [200] * 3 + [409] * 5
    assert {r[2]["code"] for r in results if r[0] == 409} == {"woocommerce_rest_product_out_of_stock"}
    assert scalar(db, "SELECT stock FROM products WHERE id = %s", pid) == 0


def test_no_order_is_half_written(shop_url, db):
    Shopper(shop_url).start().add(3)
    with db.cursor() as cur:
        cur.execute("SELECT o.id FROM orders o LEFT JOIN order_items i ON i.order_id = o.id"
                    " GROUP BY o.id HAVING COUNT(i.id) = 0 OR SUM(i.total) <> MAX(o.total)")
        assert cur.fetchall() == ()


def test_db_failover_mid_load_gives_only_503s_then_the_same_cart_checks_out(lab, shop_url, db):
    waiting = Shopper(shop_url).start()
    assert waiting.add(11)[0] == 201
    statuses, acknowledged, stop = [], [], threading.Event()

    def load():
        while not stop.is_set():
            s = Shopper(shop_url).start()
            status, headers, body = s.add(12)
            if status == 201:
                status, headers, body = s.checkout()
            statuses.append((status, headers.get("Retry-After"), body.get("code")))
            if status == 200:
                acknowledged.append(body["order_id"])

    workers = [threading.Thread(target=load) for _ in range(4)]
    for w in workers:
        w.start()
    assert poll_until(lambda: len(statuses) >= 4, 20)  # shoppers are checking out
    lab.failover_db(wait=False)
    during = []

    def held_cart_ordered():  # the held cart: 503 while the DB is away, then an order
        status, headers, body = waiting.checkout()
        during.append(status)
        assert status in (200, 503), body
        assert status == 200 or int(headers["Retry-After"]) > 0, body
        return status == 200
    poll_until(held_cart_ordered, 120, 0.2)
    lab.wait_idle()
    recovered = len(statuses)
    assert poll_until(lambda: len(statuses) >= recovered + 4, 20)  # and after the recovery
    stop.set()
    for w in workers:
        w.join()
    assert during[-1] == 200
    assert {s for s, _, _ in statuses} <= {200, 201, 503}, statuses
    assert any(s == 503 for s, _, _ in statuses) or 503 in during  # the outage was seen
    assert all(r and int(r) > 0 for s, r, _ in statuses if s == 503)
    missing = [oid for oid in acknowledged if read_order(lab, shop_url, oid)[0] != 200]
    assert missing == []  # RPO 0: every acknowledged order survived the failover


def cache_primary(lab) -> redis.Redis:
    """A client of the cache's primary endpoint, as the shop reaches it."""
    e = lab.env
    return redis.Redis(host=lab.resolve(e["GAMEDAY_REDIS_HOST"]), port=int(e["GAMEDAY_REDIS_PORT"]),
                       password=e.get("GAMEDAY_REDIS_PASSWORD") or None, socket_timeout=2)


def replicas_caught_up(lab):
    """A condition: every replica has applied what the cache primary had written by now."""
    primary = cache_primary(lab)
    written = primary.info("replication")["master_repl_offset"]

    def caught_up():
        replicas = [v for k, v in primary.info("replication").items() if k.startswith("slave")]
        return bool(replicas) and all(int(r["offset"]) >= written for r in replicas)
    return caught_up


def test_cache_failover_keeps_carts_that_were_acknowledged(lab, shop_url):
    shoppers = [Shopper(shop_url).start() for _ in range(10)]
    for i, s in enumerate(shoppers):
        assert s.add(20 + i, 2)[0] == 201
    assert poll_until(replicas_caught_up(lab), 5)  # asynchronous replication: the carts are there
    lab.failover_cache(wait=True)
    for i, s in enumerate(shoppers):
        status, _, cart = s.call("GET", STORE + "/cart")
        assert status == 200 and [(it["id"], it["quantity"]) for it in cart["items"]] == [(20 + i, 2)]
    assert shoppers[0].checkout()[0] == 200


def test_a_stale_cart_save_never_overwrites_a_newer_cart(lab):
    """A request that read the cart and then outlived its client (its write held by a failover,
    retried on the new primary) must not overwrite what the shopper saved since: the hardened
    store saves only over the revision it read. WooCommerce's session table (the stock profile)
    lets the last writer win. Against the lab's real Redis, with the shop's own settings."""
    import uuid
    from woolab.shop.cache import Cache, CartChanged, CartStore
    from woolab.shop.config import load_config
    store = CartStore(Cache(load_config(str(lab.state_dir / "run" / "shop.json"))))
    session = "t_stale_" + uuid.uuid4().hex
    store.save(session, {"items": [{"id": 1}], "rev": "r1"}, read_rev="")
    store.save(session, {"items": [{"id": 1}, {"id": 2}], "rev": "r2"}, read_rev="r1")  # the next add
    with pytest.raises(CartChanged):  # the stale request, computed from r1
        store.save(session, {"items": [{"id": 1}, {"id": 3}], "rev": "r3"}, read_rev="r1")
    # a retry of a save that did go through (its answer was lost) is accepted, not refused
    store.save(session, {"items": [{"id": 1}, {"id": 2}], "rev": "r2"}, read_rev="r1")
    assert store.load(session) == {"items": [{"id": 1}, {"id": 2}], "rev": "r2"}
    store.save(session, {"items": [], "rev": "r4"})  # without a revision: written as before
    assert store.load(session)["rev"] == "r4"
    store.clear(session)


def test_on_an_instance_lab_every_query_goes_through_the_one_endpoint(lab, shop_url):
    """No reader endpoint: catalogue reads, checkout and the Store API order lookup all go to
    the instance endpoint, and the lookup finds the order just placed."""
    settings = json.loads((lab.state_dir / "run" / "shop.json").read_text())
    assert "db_reader_host" not in settings and settings["db_host"] == lab.env["GAMEDAY_MYSQL_HOST"]
    log_path = lab.state_dir / "run" / "shop-access.jsonl"
    offset = log_path.stat().st_size
    shopper = Shopper(shop_url).start()
    assert shopper.call("GET", STORE + "/products?search=instance-lab-listing")[0] == 200
    shopper.add(3)
    status, _, order = shopper.checkout()
    assert status == 200
    lookup = f"{STORE}/order/{order['order_id']}?key={order['order_key']}&billing_email=ada%40example.com"
    status, _, found = shopper.call("GET", lookup)
    assert status == 200 and found["id"] == order["order_id"] and found["items"][0]["id"] == 3
    with open(log_path, "rb") as fh:
        fh.seek(offset)
        served = {json.loads(ln)["db"] for ln in fh.read().splitlines() if ln.strip()}
    assert served <= {None, "writer"} and "writer" in served
