"""Read/write splitting of the stand-in shop on the Multi-AZ DB cluster lab (one cluster lab for
the module): catalogue reads land on a reader, carts, checkout and the order lookup on the
writer, the stock profile on the writer only, a crashed pair of readers costs no failed read,
and shoppers read every acknowledged order back through a cluster failover.

Which server ran a query is the servers' own count: MariaDB's user statistics
(``userstat``; ``information_schema.USER_STATISTICS.SELECT_COMMANDS`` of the shop's user), read
over each member's admin socket; the shop's access log (``db``) must agree with it.
"""
import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pymysql
import pytest
from conftest import assert_cluster_whole, rds_client
import redis

from chaosext.load.timeline import read_orders, totals
from groundfloor.supervisor import poll_until
from load_helpers import STORE, ShopLog, db_order_keys, shop_settings
from test_load_journey import assert_locust_finished, once_checkouts_flow, run_locust
from woolab import servers
from woolab.config import DB_CLUSTER_ID

pytestmark = pytest.mark.lab
LISTINGS = 6  # uncached catalogue listings per check: two SELECTs each
SHOPPERS = 8


@pytest.fixture(autouse=True)
def _cluster_whole_after_each_test(cluster_lab):
    yield
    assert_cluster_whole(cluster_lab, 90)


@pytest.fixture
def rds(cluster_lab):
    return rds_client(cluster_lab)


def roles(rds):
    """(writer, [readers]) of the cluster now."""
    members = rds.describe_db_clusters(DBClusterIdentifier=DB_CLUSTER_ID)["DBClusters"][0]["DBClusterMembers"]
    writer = next(m["DBInstanceIdentifier"] for m in members if m["IsClusterWriter"])
    return writer, sorted(m["DBInstanceIdentifier"] for m in members if not m["IsClusterWriter"])


def statuses(rds, members):
    found = rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [DB_CLUSTER_ID]}])
    return {m["DBInstanceIdentifier"]: m["DBInstanceStatus"] for m in found["DBInstances"]
            if m["DBInstanceIdentifier"] in members}


def selects(lab, members):
    """SELECTs the shop's user ran on each member since its user statistics were switched on
    (switched on here, so the first call is the baseline)."""
    counts = {}
    for member in members:
        conn = servers.mysql_root(Path(lab.state_dir, "run"), member)
        try:
            with conn.cursor() as cur:
                cur.execute("SET GLOBAL userstat = 1")
                cur.execute("SELECT SELECT_COMMANDS FROM information_schema.USER_STATISTICS"
                            " WHERE USER = 'shop'")
                row = cur.fetchone()
        finally:
            conn.close()
        counts[member] = row[0] if row else 0
    return counts


def store(lab, path, body=None, headers=None, method=None):
    """(status, JSON body, headers) of one Store API request to the lab's shop."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(lab.env["GAMEDAY_SHOP_URL"] + STORE + path, data=data,
                                 method=method or ("POST" if data else "GET"),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read()), resp.headers
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), err.headers


def browse_uncached(lab, listings: int = LISTINGS) -> None:
    """Catalogue listings no cache holds (a search term never used before): each reads the DB."""
    term = uuid.uuid4().hex[:12]
    for n in range(listings):
        status, body, _ = store(lab, f"/products?search={term}{n}")
        assert status == 200 and body == []


def delta(before, after):
    return {m: after[m] - before[m] for m in after}


def test_catalogue_reads_of_the_hardened_shop_land_on_a_reader_never_the_writer(cluster_lab, rds):
    writer, readers = roles(rds)
    before, log = selects(cluster_lab, [writer, *readers]), ShopLog(cluster_lab)
    browse_uncached(cluster_lab)
    moved = delta(before, selects(cluster_lab, [writer, *readers]))
    assert moved[writer] == 0 and sum(moved[r] for r in readers) == 2 * LISTINGS, moved
    assert [r["db"] for r in log.records("products")] == ["reader"] * LISTINGS


def guest_order(lab, product_id):
    """A cart write, its read back and a checkout as a guest; (order, session headers)."""
    _, _, headers = store(lab, "/cart")
    session = {"Cart-Token": headers["Cart-Token"], "Nonce": headers["Nonce"]}
    status, cart, _ = store(lab, "/cart/add-item", {"id": product_id, "quantity": 1}, session)
    assert status == 201 and [i["id"] for i in cart["items"]] == [product_id]
    status, cart, _ = store(lab, "/cart", headers=session)
    assert status == 200 and [i["id"] for i in cart["items"]] == [product_id]
    address = {"first_name": "Read", "last_name": "Back", "address_1": "1 Lab Road", "city": "Austin",
               "state": "TX", "postcode": "73301", "country": "US", "email": "read.back@example.com"}
    status, order, _ = store(lab, "/checkout", {"billing_address": address, "payment_method": "cod"},
                             session)
    assert status == 200 and order["order_id"], order
    return order, session


def test_a_cart_write_its_read_checkout_and_the_order_lookup_go_to_the_writer(cluster_lab, rds):
    writer, readers = roles(rds)
    product = 7
    cache = redis.Redis(host=cluster_lab.resolve(cluster_lab.env["GAMEDAY_REDIS_HOST"]),
                        port=int(cluster_lab.env["GAMEDAY_REDIS_PORT"]),
                        password=cluster_lab.env["GAMEDAY_REDIS_PASSWORD"])
    cache.delete(f"wc:product:{product}")  # the add reads the product from the database
    cache.close()
    before, log = selects(cluster_lab, [writer, *readers]), ShopLog(cluster_lab)
    order, _ = guest_order(cluster_lab, product)
    query = urlencode({"key": order["order_key"], "billing_email": "read.back@example.com"})
    status, found, _ = store(cluster_lab, f"/order/{order['order_id']}?{query}")
    moved = delta(before, selects(cluster_lab, [writer, *readers]))
    assert status == 200 and found["id"] == order["order_id"] and found["status"] == "processing"
    assert [i["id"] for i in found["items"]] == [product]
    assert found["billing_address"]["email"] == "read.back@example.com"
    # product (1), checkout's locked read (1), the lookup (order + items: 2)
    assert all(moved[r] == 0 for r in readers) and moved[writer] >= 4, moved
    served = {r["route"]: r["db"] for r in log.records()}
    assert served == {"cart": None, "cart_add_item": "writer", "checkout": "writer",
                      "store_order": "writer"}, served


def test_the_order_lookup_refuses_a_wrong_key_or_email_and_an_unknown_order_as_woocommerce(cluster_lab):
    order, _ = guest_order(cluster_lab, 8)
    oid, key = order["order_id"], order["order_key"]
    cases = [(f"/order/{oid}?key=wc_order_wrong&billing_email=read.back%40example.com",
              401, "woocommerce_rest_invalid_order"),
             (f"/order/{oid}?key={key}", 401, "woocommerce_rest_invalid_billing_email"),
             (f"/order/{oid}?key={key}&billing_email=other%40example.com",
              401, "woocommerce_rest_invalid_billing_email"),
             (f"/order/{oid + 100000}?key={key}&billing_email=read.back%40example.com",
              404, "woocommerce_rest_invalid_order")]
    for path, status, code in cases:
        got, body, _ = store(cluster_lab, path)
        assert (got, body["code"]) == (status, code), path


def test_the_stock_profile_reads_the_catalogue_from_the_writer_only(cluster_lab, rds):
    writer, readers = roles(rds)
    with shop_settings(cluster_lab, profile="stock"):
        before, log = selects(cluster_lab, [writer, *readers]), ShopLog(cluster_lab)
        browse_uncached(cluster_lab)
        moved = delta(before, selects(cluster_lab, [writer, *readers]))
    assert all(moved[r] == 0 for r in readers) and moved[writer] == 2 * LISTINGS, moved
    assert {r["db"] for r in log.records("products")} == {"writer"}


def test_with_both_readers_crashed_catalogue_reads_fall_back_to_the_writer(cluster_lab, rds):
    writer, readers = roles(rds)
    before, log = selects(cluster_lab, [writer]), ShopLog(cluster_lab)
    for reader in readers:
        cluster_lab.call(f"/_lab/crash?id={reader}")
    started = time.monotonic()
    browse_uncached(cluster_lab)  # every listing answered 200 (asserted inside)
    took = time.monotonic() - started
    moved = delta(before, selects(cluster_lab, [writer]))
    assert moved[writer] == 2 * LISTINGS, moved  # the writer served every read
    served = [r["db"] for r in log.records("products")]
    assert served[0] == "writer-fallback" and set(served) <= {"writer-fallback", "reader"}, served
    assert took < LISTINGS * 1.0, took  # a refused reader costs no connect timeout per read
    # the lab notices each crash (one after the other); then the autouse fixture waits for the
    # rebuilt readers
    noticed = set()

    def both_noticed() -> bool:
        noticed.update(m for m, status in statuses(rds, readers).items() if status != "available")
        return noticed == set(readers)
    assert poll_until(both_noticed, 30, 0.1), noticed


def test_readers_cut_off_in_their_azs_cost_one_timeout_each_then_reads_skip_them(cluster_lab, rds):
    """A black hole accepts the connection and never answers: a worker waits out its timeout
    once per reader, then avoids that reader for 10 s instead of waiting on every read. (On the
    lab the connect succeeds and the server greeting's read times out, docs/lab-network.md; the
    shop's read timeout is 1 s here to keep the test short.)"""
    writer, readers = roles(rds)
    azs = {m["DBInstanceIdentifier"]: m["AvailabilityZone"] for m in rds.describe_db_instances(
        Filters=[{"Name": "db-cluster-id", "Values": [DB_CLUSTER_ID]}])["DBInstances"]}
    with shop_settings(cluster_lab, db_read_timeout=1):
        before, log = selects(cluster_lab, [writer, *readers]), ShopLog(cluster_lab)
        for az in {azs[r] for r in readers}:
            cluster_lab.call(f"/_lab/network?az={az}&blackhole=1&service=db&seconds=60")
        try:
            started = time.monotonic()
            browse_uncached(cluster_lab, 3 * LISTINGS)
            took = time.monotonic() - started
        finally:
            cluster_lab.call("/_lab/network?clear=1")
        moved = delta(before, selects(cluster_lab, [writer, *readers]))
    assert moved[writer] == 2 * 3 * LISTINGS and all(moved[r] == 0 for r in readers), moved
    assert {r["db"] for r in log.records("products")} == {"writer-fallback"}
    # two workers, two readers: at most four timeouts of 1 s (measured: 5.0 s in all), far from
    # one per listing (18 s)
    assert took < 4 * 1.0 + 4, took


def test_shoppers_see_every_acknowledged_order_right_after_checkout_through_a_failover(
        cluster_lab, rds, tmp_path):
    writer, _ = roles(rds)
    once_checkouts_flow(tmp_path, lambda: rds.failover_db_cluster(DBClusterIdentifier=DB_CLUSTER_ID))
    result = run_locust(cluster_lab.env["GAMEDAY_SHOP_URL"], tmp_path, seconds=8,
                        users=SHOPPERS, env={"SHOPPER_CHECKOUT_WEIGHT": "6", "SHOPPER_BROWSE_WEIGHT": "2"})
    assert_locust_finished(result, tmp_path)
    assert poll_until(lambda: roles(rds)[0] != writer, 10, 0.2)  # the failover did happen
    steps = totals(str(tmp_path / "timeline.jsonl"))["steps"]
    ledger = {o["order_id"]: o["order_key"] for o in read_orders(str(tmp_path / "orders.jsonl"))}
    # every acknowledged order was looked up, but those whose shopper the run's end stopped
    assert steps["order_received"]["requests"] >= len(ledger) - SHOPPERS > 0
    assert "order_not_visible" not in steps["order_received"]["errors"], steps["order_received"]
    assert db_order_keys(cluster_lab, ledger) == ledger
