"""The shop's read/write splitting without servers (woolab/shop/readsplit.py, Database.read):
which requests may read from a reader, what a write changes, how long a failed reader is
avoided, and that a reader that refuses costs a read on the writer. Refusals are real closed
ports, not mocks."""
import socket

import pymysql
import pytest

from woolab.shop import readsplit
from woolab.shop.config import ShopConfig, load_config
from woolab.shop.db import Database
from woolab.shop.errors import ServiceUnavailable

READER = "cluster-ro.example"


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("route", sorted(readsplit.READER_ROUTES))
def test_catalogue_routes_of_the_hardened_shop_may_read_from_the_reader(route):
    assert readsplit.may_use_reader("hardened", route, READER)


@pytest.mark.parametrize("route", ["cart", "cart_add_item", "cart_update_item", "cart_remove_item",
                                   "checkout", "store_order", "order", "orders", "order_update",
                                   "health", "unmatched", "a_route_added_later"])
def test_routes_that_write_or_read_their_own_writes_are_pinned_to_the_writer(route):
    assert not readsplit.may_use_reader("hardened", route, READER)


def test_the_stock_profile_and_a_shop_without_a_reader_endpoint_never_use_a_reader():
    assert not readsplit.may_use_reader("stock", "products", READER)
    assert not readsplit.may_use_reader("hardened", "products", None)
    assert not readsplit.may_use_reader("hardened", "products", "")


def test_after_a_write_the_requests_reads_go_to_the_writer():
    reads = readsplit.RequestReads(may_use_reader=True)
    assert reads.target() == readsplit.READER
    reads.wrote = True
    assert reads.target() == readsplit.WRITER
    assert readsplit.RequestReads().target() == readsplit.WRITER  # outside a request: pinned


def test_the_request_scope_is_the_running_requests_and_ends_with_it():
    outside = readsplit.current()
    with readsplit.request_scope(readsplit.RequestReads(may_use_reader=True)) as reads:
        assert readsplit.current() is reads
    assert readsplit.current() is not reads and readsplit.current().target() == readsplit.WRITER
    assert outside.target() == readsplit.WRITER


def test_a_failed_reader_is_avoided_for_its_time_then_tried_again():
    now = [100.0]
    down = readsplit.DownList(seconds=10, clock=lambda: now[0])
    assert not down.is_down("10.0.0.2")
    down.mark("10.0.0.2")
    now[0] = 109.9
    assert down.is_down("10.0.0.2") and not down.is_down("10.0.0.3")
    now[0] = 110.0
    assert not down.is_down("10.0.0.2")


def test_the_reader_endpoint_is_a_shop_setting_off_by_default(tmp_path):
    assert ShopConfig().db_reader_host is None
    assert load_config(environ={"SHOP_DB_READER_HOST": READER}).db_reader_host == READER


def _spied_database(reader_ip: str):
    """A Database whose endpoints refuse (closed port) and which records the addresses tried."""
    config = ShopConfig(db_host="127.0.0.1", db_reader_host=reader_ip, db_port=closed_port(),
                        db_connect_timeout=0.5)
    db = Database(config)
    tried = []
    real_connect = db._connect

    def spy(read_timeout=None, address=None):
        tried.append(address or "writer")
        return real_connect(read_timeout, address)
    db._connect = spy
    return db, tried


def test_a_reader_that_refuses_costs_one_read_on_the_writer_and_is_then_skipped():
    db, tried = _spied_database("127.0.0.2")
    reads = readsplit.RequestReads(may_use_reader=True)
    with readsplit.request_scope(reads):
        with pytest.raises(ServiceUnavailable):  # the writer refuses too here
            db.read(lambda conn: None)
        assert tried == ["127.0.0.2", "writer"] and reads.served == {readsplit.FALLBACK}
        with pytest.raises(ServiceUnavailable):
            db.read(lambda conn: None)
    assert tried == ["127.0.0.2", "writer", "writer"]  # marked down: not tried again at once
    assert db.readers_down.is_down("127.0.0.2")


def test_a_pinned_request_and_a_request_that_wrote_read_from_the_writer_only():
    db, tried = _spied_database("127.0.0.2")
    for reads in (readsplit.RequestReads(may_use_reader=False),
                  readsplit.RequestReads(may_use_reader=True, wrote=True)):
        with readsplit.request_scope(reads), pytest.raises(ServiceUnavailable):
            db.read(lambda conn: None)
        assert reads.served == {readsplit.WRITER}
    assert tried == ["writer", "writer"]


def test_a_writer_connection_sends_the_requests_later_reads_to_the_writer():
    db, tried = _spied_database("127.0.0.2")
    reads = readsplit.RequestReads(may_use_reader=True)
    with readsplit.request_scope(reads):
        with pytest.raises(ServiceUnavailable), db.connection():
            pass
        assert reads.wrote and reads.target() == readsplit.WRITER


def test_a_read_the_reader_fails_runs_again_on_the_writer():
    """A reader that lags may lack a table or row the writer has: the read is repeated there."""
    db, tried = _spied_database("127.0.0.2")
    refusing_connect = db._connect

    def reader_lacks_the_table(read_timeout=None, address=None):
        if address == "127.0.0.2":
            tried.append(address)
            raise pymysql.err.ProgrammingError(1146, "Table 'shop.products' doesn't exist")
        return refusing_connect(read_timeout, address)
    db._connect = reader_lacks_the_table
    reads = readsplit.RequestReads(may_use_reader=True)
    with readsplit.request_scope(reads), pytest.raises(ServiceUnavailable):
        db.read(lambda conn: None)
    assert tried == ["127.0.0.2", "writer"] and reads.served == {readsplit.FALLBACK}
