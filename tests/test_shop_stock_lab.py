"""WooCommerce's own auth and the `stock` profile against the real lab shop.

Auth: the official `woocommerce` Python client over plain HTTP (OAuth 1.0a), and raw requests
for a wrong signature, a replayed nonce and a stale timestamp. Profiles: real DB and cache
failovers while a shopper keeps asking, answered the way an unhardened WordPress store answers.
"""
import threading
import time
from collections import Counter
from urllib.parse import urlencode

import pymysql
import pytest
import redis
import requests
from woocommerce import API

from groundfloor import oauth1
from load_helpers import shop_settings

pytestmark = pytest.mark.lab
STORE = "/wp-json/wc/store/v1"
BILLING = {"first_name": "Ada", "last_name": "Lovelace", "address_1": "1 Analytical Way",
           "city": "London", "postcode": "N1", "country": "GB", "email": "ada@example.com"}


@pytest.fixture(scope="module")
def shop(lab):
    return lab.env["GAMEDAY_SHOP_URL"]


@pytest.fixture(scope="module")
def creds(lab):
    return lab.env["GAMEDAY_SHOP_CONSUMER_KEY"], lab.env["GAMEDAY_SHOP_CONSUMER_SECRET"]


def place_order(shop):
    s = requests.Session()
    token = s.get(shop + STORE + "/cart", timeout=10).headers["Cart-Token"]
    headers = {"Cart-Token": token}
    assert s.post(shop + STORE + "/cart/add-item", json={"id": 7, "quantity": 1}, headers=headers,
                  timeout=10).status_code == 201
    reply = s.post(shop + STORE + "/checkout", json={"billing_address": BILLING, "payment_method": "cod"},
                   headers=headers, timeout=10)
    assert reply.status_code == 200, reply.text[:200]
    return reply.json()["order_id"], s, headers


def test_official_woocommerce_client_lists_and_reads_orders_over_http(shop, creds):
    order_id, _, _ = place_order(shop)
    wc = API(url=shop, consumer_key=creds[0], consumer_secret=creds[1], version="wc/v3", timeout=10)
    listing = wc.get("orders", params={"include": str(order_id)})
    assert listing.status_code == 200, listing.text[:200]
    assert [o["id"] for o in listing.json()] == [order_id]
    one = wc.get(f"orders/{order_id}")
    assert one.status_code == 200 and one.json()["id"] == order_id


def signed_get(shop, creds, **kw):
    url = shop + "/wp-json/wc/v3/orders"
    params = oauth1.signed_params("GET", url, creds[0], creds[1], {"per_page": "1"}, **kw)
    return requests.get(url + "?" + urlencode(params), timeout=10)


def test_oauth_on_the_lab_accepts_a_valid_signature_and_refuses_bad_ones(shop, creds):
    nonce = f"lab{time.time_ns()}"
    assert signed_get(shop, creds, nonce=nonce, method="HMAC-SHA1").status_code == 200
    replay = signed_get(shop, creds, nonce=nonce, method="HMAC-SHA1")
    assert replay.status_code == 401
    assert replay.json()["message"] == "Invalid nonce - nonce has already been used."
    wrong = signed_get(shop, (creds[0], creds[1] + "x"))
    assert wrong.status_code == 401
    assert wrong.json()["message"] == "Invalid signature - provided signature does not match."
    stale = signed_get(shop, creds, timestamp=int(time.time()) - 16 * 60)
    assert stale.status_code == 401 and stale.json()["message"] == "Invalid timestamp."


def test_basic_auth_counts_only_behind_https_on_the_lab(shop, creds):
    url = shop + "/wp-json/wc/v3/orders"
    plain = requests.get(url, auth=creds, timeout=10)
    assert plain.status_code == 401 and plain.json()["code"] == "woocommerce_rest_cannot_view"
    assert requests.get(url, auth=creds, headers={"X-Forwarded-Proto": "https"},
                        timeout=10).status_code == 200


class Asker(threading.Thread):
    """Sends one request over and over, counting (status, content type, first <h1>) answers."""

    def __init__(self, url, headers=None, body=None):
        super().__init__(daemon=True)
        self.url, self.headers, self.body = url, headers or {}, body
        self.seen, self.halt = Counter(), threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                r = requests.request("POST" if self.body else "GET", self.url, json=self.body,
                                     headers=self.headers, timeout=15)
            except requests.RequestException as exc:
                self.seen[type(exc).__name__] += 1
                continue
            h1 = r.text.split("<h1>")[1].split("</h1>")[0] if "<h1>" in r.text else ""
            self.seen[(r.status_code, r.headers.get("Content-Type", "").split(";")[0], h1)] += 1

    def stop(self):
        self.halt.set()
        self.join(20)
        return self.seen


def during(fault, url, headers=None, body=None):
    askers = [Asker(url, headers, body) for _ in range(3)]
    for a in askers:
        a.start()
    time.sleep(0.5)
    fault()
    time.sleep(1.0)
    seen = Counter()
    for a in askers:
        seen.update(a.stop())
    return seen


def errors(seen):
    return {k: n for k, n in seen.items() if not (isinstance(k, tuple) and k[0] == 200)}


def test_stock_db_failover_answers_wordpress_dead_db_page(lab, shop):
    with shop_settings(lab, profile="stock"):
        seen = during(lab.failover_db, shop + STORE + "/products/5")
    assert errors(seen), seen  # browsing fails too: every WordPress page needs its database
    assert set(errors(seen)) == {(500, "text/html", "Error establishing a database connection")}, seen


def test_hardened_db_failover_answers_only_503_and_browsing_stays_up(lab, shop):
    with shop_settings(lab, profile="hardened"):
        seen = during(lab.failover_db, shop + STORE + "/products/5")
    assert all(k[0] == 503 for k in errors(seen)), seen


def test_stock_cache_failover_answers_the_redis_plugin_fatal_page_and_keeps_the_cart(lab, shop):
    """Reads keep working from the demoted primary; a cart write meets READONLY (or no primary),
    which the Redis Object Cache drop-in turns into its fatal error page."""
    e = lab.env
    with shop_settings(lab, profile="stock"):
        s = requests.Session()
        headers = {"Cart-Token": s.get(shop + STORE + "/cart", timeout=10).headers["Cart-Token"]}
        added = s.post(shop + STORE + "/cart/add-item", json={"id": 9, "quantity": 2},
                       headers=headers, timeout=10)
        assert added.status_code == 201
        seen = during(lab.failover_cache, shop + STORE + "/cart/update-item", headers,
                      {"key": added.json()["items"][0]["key"], "quantity": 2})
        assert errors(seen), seen
        assert set(errors(seen)) == {(500, "text/html", "Error establishing a Redis connection")}, seen
        # the cache copy is gone (as if the promoted replica missed it): the table still has it
        primary = redis.Redis(host=lab.resolve(e["GAMEDAY_REDIS_HOST"]), port=int(e["GAMEDAY_REDIS_PORT"]),
                              password=e.get("GAMEDAY_REDIS_PASSWORD") or None)
        assert primary.delete(*primary.keys("wc_session_id:*")) >= 1
        cart = s.get(shop + STORE + "/cart", headers=headers, timeout=10).json()
    assert [(i["id"], i["quantity"]) for i in cart["items"]] == [(9, 2)]
    conn = pymysql.connect(host=lab.resolve(e["GAMEDAY_MYSQL_HOST"]), port=int(e["GAMEDAY_MYSQL_PORT"]),
                           user=e["GAMEDAY_MYSQL_USER"], password=e["GAMEDAY_MYSQL_PASSWORD"],
                           database=e["GAMEDAY_MYSQL_DATABASE"], ssl_disabled=True)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM woocommerce_sessions WHERE session_value LIKE %s", ('%"id":9,%',))
        assert cur.fetchone()[0] >= 1
