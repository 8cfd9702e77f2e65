"""The `stock` profile without servers: its defaults, and its request life cycle against a
database and cache whose failures are scripted (the lab tests cover real failovers)."""
import contextlib
import io
import socket

import pytest

from woolab.shop.app import ShopApp
from woolab.shop.config import ConfigError, ShopConfig, load_config
from woolab.shop.errors import ServiceUnavailable, ShopError
from woolab.shop.profiles import apply_profile_defaults
from woolab.shop.stock import RECONNECT_RETRIES, ErrorPage, StockSite


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_stock_brings_the_plugin_and_php_defaults_unless_a_knob_is_set(tmp_path):
    cfg = load_config(environ={"SHOP_PROFILE": "stock"})
    assert (cfg.retry, cfg.connection_timeout, cfg.read_write_timeout) == (False, 1.0, 1.0)
    assert cfg.db_connect_timeout == 60.0
    assert load_config(environ={"SHOP_PROFILE": "stock", "SHOP_RETRY": "true"}).retry is True
    assert load_config(environ={}).retry is True and load_config(environ={}).profile == "hardened"
    assert apply_profile_defaults({"profile": "hardened"}) == {"profile": "hardened"}
    with pytest.raises(ConfigError, match="profile must be one of hardened, stock"):
        ShopConfig(profile="tuned")


def raw_call(app, path):
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "CONTENT_LENGTH": "0",
               "wsgi.input": io.BytesIO(b"")}
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = int(status.split()[0]), dict(headers)

    return seen, b"".join(app(environ, start_response)).decode()


def test_stock_with_the_database_down_answers_the_wordpress_500_page_even_for_browsing():
    app = ShopApp(ShopConfig(profile="stock", db_port=closed_port(), redis_port=closed_port(),
                             db_connect_timeout=0.5, connection_timeout=0.5))
    seen, body = raw_call(app, "/wp-json/wc/store/v1/products")
    assert seen["status"] == 500 and seen["headers"]["Content-Type"].startswith("text/html")
    assert "<h1>Error establishing a database connection</h1>" in body
    assert "Retry-After" not in seen["headers"]
    health, _ = raw_call(app, "/healthz")
    assert health["status"] == 503  # the lab's own health route is not a WordPress page


class ScriptedDb:
    """Each `connection()` takes the next scripted outcome (True: connects); then it connects."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)

    @contextlib.contextmanager
    def connection(self):
        if self.outcomes and not self.outcomes.pop(0):
            raise ServiceUnavailable("woocommerce_rest_database_unavailable", "down", 5, errno=2003)
        yield object()


class UpCache:
    def run(self, op):
        return True


def site(db, sleeps):
    return StockSite(ShopConfig(profile="stock"), db, UpCache(), sleep=sleeps.append)


def failing_once(errno, code="woocommerce_rest_database_unavailable"):
    calls = []

    def handler(req):
        calls.append(req)
        if len(calls) == 1:
            raise ServiceUnavailable(code, "lost", 5, errno=errno)
        return 200, {"ok": True}, {}
    return handler, calls


def test_a_connection_lost_mid_request_is_reconnected_and_the_work_repeated():
    sleeps = []
    handler, calls = failing_once(2006)
    db = ScriptedDb(True, False, False, True)  # bootstrap, two failed reconnects, back
    assert site(db, sleeps).serve(handler, "req")[0] == 200
    assert len(calls) == 2 and sleeps == [1.0, 1.0]


def test_five_failed_reconnects_end_in_dead_db():
    sleeps = []
    handler, calls = failing_once(2013)
    db = ScriptedDb(True, *[False] * RECONNECT_RETRIES)
    with pytest.raises(ErrorPage) as info:
        site(db, sleeps).serve(handler, "req")
    assert "database connection" in info.value.html and sleeps == [1.0] * RECONNECT_RETRIES
    assert len(calls) == 1


def test_a_read_only_database_is_a_critical_error_not_a_retry():
    sleeps = []
    handler, calls = failing_once(1290)
    with pytest.raises(ShopError) as info:
        site(ScriptedDb(), sleeps).serve(handler, "req")
    assert info.value.status == 500 and info.value.code == "internal_server_error"
    assert len(calls) == 1 and sleeps == []


def test_any_redis_error_mid_request_is_the_plugin_fatal_page():
    handler, _ = failing_once(None, code="woocommerce_rest_cache_unavailable")
    with pytest.raises(ErrorPage) as info:
        site(ScriptedDb(), []).serve(handler, "req")
    assert "Error establishing a Redis connection" in info.value.html and info.value.status == 500
