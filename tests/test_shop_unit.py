"""Shop behaviour that needs no servers: config, tokens, validation, shapes, and outage mapping.

Backends that are down are real closed/refusing ports, not mocks: the app must answer 503
with Retry-After (never 500) within its configured timeouts.
"""
import io
import json
import socket
import threading
import time

import pytest

from woolab.shop.app import ShopApp
from woolab.shop.cache import Cache, operation_retry
from woolab.shop.cart import cart_shape
from woolab.shop.checkout import validate
from woolab.shop.config import ConfigError, ShopConfig, load_config
from woolab.shop.errors import ServiceUnavailable, ShopError
from woolab.shop.server import gunicorn_argv
from woolab.shop.tokens import NONCE_TICK_SECONDS, Tokens


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def offline_config(**overrides) -> ShopConfig:
    base = dict(db_port=closed_port(), redis_port=closed_port(), retry=False,
                connection_timeout=0.5, db_connect_timeout=0.5, nonce_secret="s3cret",
                consumer_key="ck_t", consumer_secret="cs_t", checkout_retry_after=7)
    base.update(overrides)
    return ShopConfig(**base)


def call(app, method, path, body=None, headers=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path.split("?")[0],
               "QUERY_STRING": path.partition("?")[2], "CONTENT_LENGTH": str(len(data)),
               "CONTENT_TYPE": "application/json", "wsgi.input": io.BytesIO(data)}
    for k, v in (headers or {}).items():
        environ["HTTP_" + k.upper().replace("-", "_")] = v
    seen = {}

    def start_response(status, hdrs):
        seen["status"] = int(status.split()[0])
        seen["headers"] = dict(hdrs)

    out = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], json.loads(out)


# ---------------------------------------------------------------- config
def test_config_reads_json_and_env_overrides_the_resilience_knobs(tmp_path):
    path = tmp_path / "shop.json"
    path.write_text(json.dumps({"db_port": 1234, "max_retries": 3, "redis_password": "pw"}))
    cfg = load_config(str(path), {"SHOP_RETRY": "off", "SHOP_RETRY_WAIT": "250",
                                  "SHOP_CACHE_FAIL_OPEN": "yes", "WOOLAB_SHOP_ACCESS_LOG": "/tmp/x"})
    assert (cfg.db_port, cfg.max_retries, cfg.retry, cfg.retry_wait) == (1234, 3, False, 250)
    assert cfg.cache_fail_open is True and cfg.access_log == "/tmp/x"


def test_config_defaults_mirror_the_recommended_settings():
    cfg = ShopConfig()
    assert (cfg.connection_timeout, cfg.read_write_timeout, cfg.retry_wait, cfg.max_retries) == (2.0, 5.0, 1000, 5)
    assert cfg.retry is True and cfg.cart_wait_replicas == 0


@pytest.mark.parametrize("content,message", [
    ('{"max_retries": "many"}', "max_retries"),
    ('{"no_such_knob": 1}', "unknown field"),
    ('{"db_port": ', "not valid JSON"),
])
def test_config_rejects_bad_values_with_one_clear_message(tmp_path, content, message):
    path = tmp_path / "shop.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_config(str(path), {})


def test_config_public_view_hides_secrets():
    public = ShopConfig(db_password="pw", nonce_secret="n").public()
    assert public["db_password"] == "***" and public["nonce_secret"] == "***"


# ---------------------------------------------------------------- tokens
def test_cart_token_round_trips_and_rejects_forgery_and_expiry():
    tokens = Tokens("k")
    session = tokens.new_session()
    token = tokens.cart_token(session, now=1000)
    assert tokens.session_of(token, now=1001) == session
    assert tokens.session_of(token[:-2] + "xx", now=1001) is None
    assert Tokens("other").session_of(token, now=1001) is None
    assert tokens.session_of(token, now=1000 + 3 * 86400) is None
    assert tokens.session_of("not-a-token") is None


def test_nonce_is_valid_for_its_session_for_two_ticks_only():
    tokens = Tokens("k")
    now = 10 * NONCE_TICK_SECONDS + 5
    nonce = tokens.nonce("s1", now)
    assert tokens.nonce_valid("s1", nonce, now + NONCE_TICK_SECONDS)
    assert not tokens.nonce_valid("s1", nonce, now + 2 * NONCE_TICK_SECONDS)
    assert not tokens.nonce_valid("s2", nonce, now)


# ---------------------------------------------------------------- validation and shapes
GOOD = {"billing_address": {"email": "a@example.com", "first_name": "A"}, "payment_method": "cod"}


@pytest.mark.parametrize("body,code", [
    ({"payment_method": "cod"}, "rest_missing_callback_param"),
    ({**GOOD, "billing_address": {"email": "nope"}}, "rest_invalid_param"),
    ({**GOOD, "billing_address": "x"}, "rest_invalid_param"),
    ({**GOOD, "payment_method": "bitcoin"}, "woocommerce_rest_checkout_payment_method_disabled"),
    ({"billing_address": GOOD["billing_address"]}, "woocommerce_rest_checkout_missing_payment_method"),
])
def test_checkout_validation_names_the_woocommerce_error(body, code):
    with pytest.raises(ShopError) as err:
        validate(body, ShopConfig())
    assert err.value.code == code and err.value.status == 400


def test_checkout_ships_to_billing_address_when_no_shipping_address_given():
    req = validate(GOOD, ShopConfig())
    assert req["shipping"]["first_name"] == "A" and "email" not in req["shipping"]


def test_cart_shape_totals_are_minor_units_as_strings():
    cart = {"rev": "1", "items": [{"key": "k", "id": 3, "quantity": 2, "name": "N", "slug": "n",
                                   "sku": "S", "price": 1250, "regular_price": 1500, "stock": 8}]}
    shape = cart_shape(cart, ShopConfig(currency="EUR"))
    assert shape["items_count"] == 2
    assert shape["totals"]["total_price"] == "2500" and shape["totals"]["currency_code"] == "EUR"
    item = shape["items"][0]
    assert (item["key"], item["id"], item["quantity"], item["low_stock_remaining"]) == ("k", 3, 2, 8)
    assert item["totals"]["line_total"] == "2500" and item["prices"]["regular_price"] == "1500"


# ---------------------------------------------------------------- retry policy
def test_no_retry_baseline_makes_one_attempt():
    assert operation_retry(ShopConfig(retry=False)).get_retries() == 0
    assert operation_retry(ShopConfig(max_retries=5)).get_retries() == 5


def test_redis_retry_is_applied_once_per_operation_not_squared():
    """A server that accepts and hangs up: max_retries=3 must mean 4 connection attempts."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted = []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    cfg = ShopConfig(redis_port=listener.getsockname()[1], max_retries=3, retry_wait=10,
                     connection_timeout=0.5, read_write_timeout=0.5)
    with pytest.raises(ServiceUnavailable):
        Cache(cfg).run(lambda r: r.get("k"))
    listener.close()
    assert len(accepted) == 4


# ---------------------------------------------------------------- the WSGI app, backends down
def test_mutation_without_nonce_or_cart_token_is_refused_401():
    status, headers, body = call(ShopApp(offline_config()), "POST", "/wp-json/wc/store/v1/cart/add-item",
                                 {"id": 1, "quantity": 1})
    assert status == 401 and body["code"] == "woocommerce_rest_missing_nonce"
    assert body["data"]["status"] == 401
    assert headers["Nonce"] and headers["Cart-Token"]  # a client can recover from the answer


def test_mutation_with_a_wrong_nonce_is_refused_403():
    status, _, body = call(ShopApp(offline_config()), "POST", "/wp-json/wc/store/v1/cart/add-item",
                           {"id": 1}, {"Nonce": "0123456789"})
    assert status == 403 and body["code"] == "woocommerce_rest_invalid_nonce"


def test_nonce_from_a_previous_answer_is_accepted_with_its_cart_token():
    app = ShopApp(offline_config())
    _, headers, _ = call(app, "POST", "/wp-json/wc/store/v1/cart/add-item", {"id": 1})
    session = app.tokens.session_of(headers["Cart-Token"])
    assert app.tokens.nonce_valid(session, headers["Nonce"])


def test_malformed_json_is_rejected_before_touching_any_backend():
    app = ShopApp(offline_config())
    _, headers, _ = call(app, "POST", "/wp-json/wc/store/v1/cart/add-item", {})
    auth = {"Cart-Token": headers["Cart-Token"], "Nonce": headers["Nonce"]}
    status, _, body = call(app, "POST", "/wp-json/wc/store/v1/checkout", headers=auth, raw=b"{not json")
    assert status == 400 and body["code"] == "rest_invalid_json"


def test_oversize_body_is_refused_413():
    app = ShopApp(offline_config(max_body_bytes=100))
    token = app.tokens.cart_token(app.tokens.new_session())
    status, headers, body = call(app, "POST", "/wp-json/wc/store/v1/checkout",
                                 headers={"Cart-Token": token}, raw=b"{" + b" " * 200 + b"}")
    assert status == 413 and body["code"] == "rest_request_entity_too_large"
    assert headers["Connection"] == "close"


def test_unknown_route_answers_rest_no_route():
    status, _, body = call(ShopApp(offline_config()), "GET", "/wp-json/wc/store/v1/nothing")
    assert status == 404 and body["code"] == "rest_no_route"


@pytest.mark.parametrize("query,headers", [
    ("", {}),
    ("consumer_key=ck_t&consumer_secret=cs_t", {}),
    ("", {"Authorization": "Basic Y2tfdDpjc190"}),
])
def test_v3_orders_over_plain_http_ignore_basic_and_query_credentials(query, headers):
    """WooCommerce reads Basic and query-string credentials only when is_ssl(): on plain HTTP
    the request is unauthenticated (no database is asked, so this holds with it down)."""
    status, _, body = call(ShopApp(offline_config()), "GET", "/wp-json/wc/v3/orders/1?" + query,
                           headers=headers)
    assert status == 401 and body["code"] == "woocommerce_rest_cannot_view"


def test_browse_with_database_and_cache_down_is_a_fast_503_with_retry_after():
    app = ShopApp(offline_config(cache_fail_open=True))
    started = time.monotonic()
    status, headers, body = call(app, "GET", "/wp-json/wc/store/v1/products")
    assert time.monotonic() - started < 2
    assert status == 503 and headers["Retry-After"] == "7"
    assert body["code"] == "woocommerce_rest_database_unavailable"
    assert "try again" in body["message"]


def test_orders_read_with_database_down_is_503_not_500():
    """The API key lives in the database, so with it down the read is a 503 like any other."""
    signed = "oauth_consumer_key=ck_t&oauth_timestamp=1&oauth_nonce=n&oauth_signature=s" \
             "&oauth_signature_method=HMAC-SHA256"
    status, headers, body = call(ShopApp(offline_config()), "GET", "/wp-json/wc/v3/orders/1?" + signed)
    assert status == 503 and headers["Retry-After"] == "7"


def test_cart_with_cache_down_is_503_naming_the_session_store():
    status, _, body = call(ShopApp(offline_config()), "GET", "/wp-json/wc/store/v1/cart")
    assert status == 503 and body["code"] == "woocommerce_rest_cache_unavailable"


def test_health_reports_both_backends_down_as_503():
    status, _, body = call(ShopApp(offline_config()), "GET", "/healthz")
    assert status == 503 and body["status"] == "degraded"
    assert body["db"]["ok"] is False and body["cache"]["ok"] is False


def test_access_log_gets_one_json_line_per_request(tmp_path):
    log = tmp_path / "access.jsonl"
    app = ShopApp(offline_config(access_log=str(log)))
    call(app, "GET", "/wp-json/wc/store/v1/nothing")
    call(app, "GET", "/healthz")
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(l["route"], l["status"]) for l in lines] == [("unmatched", 404), ("health", 503)]
    assert all(isinstance(l["latency_ms"], float) for l in lines)


def test_gunicorn_argv_binds_loopback_and_passes_config(tmp_path):
    argv = gunicorn_argv(str(tmp_path / "shop.json"), 15301, str(tmp_path / "a.jsonl"))
    assert "woolab.shop.wsgi:app" in argv and "127.0.0.1:15301" in argv
    assert f"WOOLAB_SHOP_CONFIG={tmp_path / 'shop.json'}" in argv
