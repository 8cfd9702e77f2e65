"""Read-only reachability of the shop, the DB and the cache from the runner, and the Store API
prerequisites of the load.

Nothing here writes: the shop gets GETs only (no cart is filled, no `GET /checkout`, which
creates a draft order in WooCommerce), MySQL gets `SELECT 1` and Redis `PING` + `ROLE`. TLS
failures are told apart (no TLS at the endpoint, untrusted certificate) so the fix is named.
"""
import socket
import ssl
from typing import List, Optional

import pymysql
import redis

from chaosext import dataplane
from chaosext.attempts import describe_failure
from groundfloor.resolve import connect_host
from chaosext.shop.client import STORE, StoreSession
from chaosext.shop.rest import RestClient

from .context import Context
from .table import FAIL, OK, WARN, Row

__all__ = ["shop_rows", "mysql_row", "redis_row", "explain_connect_error"]

CA_HELP = {"mysql": "set GAMEDAY_MYSQL_CA to the CA bundle that signed the server certificate "
                    "(RDS: global-bundle.pem from the RDS documentation)",
           "redis": "set GAMEDAY_REDIS_CA to the CA bundle that signed the cache certificate"}
TLS_OFF_HELP = {"mysql": "the server does not offer TLS: unset GAMEDAY_MYSQL_TLS (or set it to false)",
                "redis": "the endpoint does not speak TLS: unset GAMEDAY_REDIS_TLS (or enable "
                         "in-transit encryption on the replication group)"}
TLS_ONLY_HELP = {"mysql": "the server requires TLS: set GAMEDAY_MYSQL_TLS=true and GAMEDAY_MYSQL_CA to the "
                          "CA bundle that signed its certificate",
                 "redis": "the endpoint speaks TLS only (in-transit encryption): set GAMEDAY_REDIS_TLS=true "
                          "and GAMEDAY_REDIS_CA to the CA bundle that signed its certificate"}
ENV_HELP = {"mysql": "check GAMEDAY_MYSQL_HOST/_PORT and the security group / network path from the runner",
            "redis": "check GAMEDAY_REDIS_HOST/_PORT and the security group / network path from the runner"}


def explain_connect_error(kind: str, error: Exception) -> str:
    """The fix for a failed connection, from what the error says (TLS, CA, auth, network)."""
    text = str(error)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return CA_HELP[kind]
    if ("doesn't support it" in text or "WRONG_VERSION_NUMBER" in text or "record layer failure" in text
            or "UNEXPECTED_EOF" in text or "EOF occurred" in text or "SSL" in text.upper()
            and "Connection closed" in text):
        return TLS_OFF_HELP[kind]
    if isinstance(error, (redis.AuthenticationError, redis.exceptions.ResponseError)) and (
            "WRONGPASS" in text or "NOAUTH" in text or "invalid" in text.lower()):
        return "check GAMEDAY_REDIS_USERNAME / GAMEDAY_REDIS_PASSWORD"
    if isinstance(error, pymysql.err.OperationalError) and error.args and error.args[0] == 1045:
        return "check GAMEDAY_MYSQL_USER / GAMEDAY_MYSQL_PASSWORD"
    return ENV_HELP[kind]


def mysql_row(context: Context, timeout: float = 3.0) -> Row:
    point = dataplane.endpoint("mysql", context.configuration, context.secrets)
    if point is None:
        return Row("reach", "DB endpoint", WARN, "not configured: the DB data-plane check is skipped "
                   "and the report says \"not measured\"", "set GAMEDAY_MYSQL_HOST (and _PORT/_USER/_PASSWORD)")
    tls = dataplane.mysql_tls_wanted(point.host, context.configuration, context.secrets)
    try:
        connection = dataplane.mysql_connection(context.configuration, context.secrets, timeout=timeout)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        finally:
            connection.close()
    except (pymysql.err.MySQLError, OSError) as error:
        fix = explain_connect_error("mysql", error)
        if not tls and getattr(error, "args", (None,))[:1] == (1045,) and _mysql_wants_tls(context, timeout):
            fix = TLS_ONLY_HELP["mysql"]
        return Row("reach", "DB endpoint", FAIL, f"{point.host}:{point.port}: {describe_failure(error)}",
                   fix)
    return Row("reach", "DB endpoint", OK, f"{point.host}:{point.port} answers (TLS {'verified' if tls and _verified(context, 'mysql') else 'on, not verified' if tls else 'off'})")


def _verified(context: Context, kind: str) -> bool:
    from chaosext import settings
    key = "mysql_tls_verify" if kind == "mysql" else "redis_tls_verify"
    return settings.tristate(settings.lookup(key, context.configuration, context.secrets)) is not False


def _mysql_wants_tls(context: Context, timeout: float) -> bool:
    """Whether the credentials that failed in the clear pass over TLS: the server then requires
    secure transport (MariaDB answers a plain login with Access denied, not with why)."""
    configuration = {**(context.configuration or {}), "mysql_tls": True, "mysql_tls_verify": False}
    try:
        dataplane.mysql_connection(configuration, context.secrets, timeout=timeout).close()
        return True
    except (pymysql.err.MySQLError, OSError):
        return False


def _speaks_tls(host: str, port: int, timeout: float) -> bool:
    """Whether the endpoint completes a TLS handshake (certificate not checked: only the question
    "is this TLS?" is asked, nothing is sent over it)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection((connect_host(host), port), timeout=timeout) as sock:
            with context.wrap_socket(sock):
                return True
    except (OSError, ValueError):
        return False


def _speaks_plain_redis(host: str, port: int, timeout: float) -> bool:
    """Whether the endpoint answers an unencrypted PING (with +PONG, or -NOAUTH: still Redis)."""
    try:
        with socket.create_connection((connect_host(host), port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"PING\r\n")
            return sock.recv(16)[:1] in (b"+", b"-")
    except OSError:
        return False


def redis_row(context: Context, timeout: float = 3.0) -> Row:
    from chaosext import settings
    point = dataplane.endpoint("redis", context.configuration, context.secrets)
    if point is None:
        return Row("reach", "cache endpoint", WARN, "not configured: the cache data-plane check is skipped "
                   "and the report says \"not measured\"", "set GAMEDAY_REDIS_HOST (and _PORT/_PASSWORD)")
    tls = settings.flag(settings.lookup("redis_ssl", context.configuration, context.secrets, False))
    if "cache_tls" in context.facts and context.facts["cache_tls"] != tls:
        fix = "set GAMEDAY_REDIS_TLS=true" if context.facts["cache_tls"] else "unset GAMEDAY_REDIS_TLS"
        return Row("reach", "cache endpoint", FAIL, f"the replication group has in-transit encryption "
                   f"{'on' if context.facts['cache_tls'] else 'off'} but TLS is {'on' if tls else 'off'} here", fix)
    client = dataplane.redis_client(context.configuration, context.secrets, timeout=timeout)
    try:
        client.ping()
        role = client.execute_command("ROLE")[0]
    except (redis.RedisError, OSError) as error:
        fix = explain_connect_error("redis", error)
        if tls and fix == ENV_HELP["redis"] and _speaks_plain_redis(point.host, point.port, timeout):
            fix = TLS_OFF_HELP["redis"]  # a plain server waits for more of the TLS hello: a timeout
        elif not tls and fix == ENV_HELP["redis"] and _speaks_tls(point.host, point.port, timeout):
            fix = TLS_ONLY_HELP["redis"]  # a TLS-only server closes a plain connection
        return Row("reach", "cache endpoint", FAIL, f"{point.host}:{point.port}: {type(error).__name__}: {error}", fix)
    finally:
        client.close()
    role = role.decode() if isinstance(role, bytes) else str(role)
    status = OK if role == "master" else FAIL
    return Row("reach", "cache endpoint", status, f"{point.host}:{point.port} answers, role {role} "
               f"(TLS {'on' if tls else 'off'})", "point GAMEDAY_REDIS_HOST at the primary endpoint")


def _products_row(session: StoreSession) -> Row:
    listing = session.request("GET", f"{STORE}/products?per_page=50")
    if listing.status != 200 or not isinstance(listing.body, list):
        why = listing.body.get("message") if isinstance(listing.body, dict) else listing.body
        return Row("store", "products in stock", FAIL, f"GET products answered {listing.status or 'nothing'}: {why}",
                   "check GAMEDAY_SHOP_URL (the Store API lives under /wp-json/wc/store/v1) and the network")
    stocked = [p for p in listing.body if p.get("is_in_stock", True) and p.get("is_purchasable", True)]
    if not stocked:
        return Row("store", "products in stock", FAIL, "no purchasable product in stock on the first page",
                   "stock some simple products (the load buys them)")
    return Row("store", "products in stock", OK, f"{len(stocked)} of {len(listing.body)} on the first page")


def _payment_row(session: StoreSession, method: str = "cod") -> Row:
    cart = session.request("GET", f"{STORE}/cart")
    offered = cart.body.get("payment_methods") if isinstance(cart.body, dict) else None
    if cart.status != 200 or offered is None:
        return Row("store", "payment method", FAIL, f"GET cart answered {cart.status or 'nothing'}",
                   "check that the Store API is enabled")
    if method not in offered:
        return Row("store", "payment method", FAIL, f"{method} not offered (offered: {', '.join(offered) or 'none'})",
                   "enable Cash on delivery (WooCommerce > Settings > Payments)")
    return Row("store", "payment method", OK, f"{method} offered")


def _rest_rows(context: Context, base: str, timeout: float) -> List[Row]:
    from chaosext import settings
    key, secret = (settings.lookup(k, context.configuration, context.secrets)
                   for k in ("consumer_key", "consumer_secret"))
    if not key or not secret:
        return [Row("store", "REST read keys", WARN, "not configured: the order RPO check is skipped and the "
                    "report says \"not measured\"; guest checkout not checked",
                    "set GAMEDAY_SHOP_CONSUMER_KEY/_SECRET (read keys)")]
    client = RestClient(base, key, secret, timeout)
    status, _ = client.call("GET", "/orders?per_page=1&_fields=id")
    rows = [Row("store", "REST read keys", OK if status == 200 else FAIL, f"GET /wc/v3/orders answered {status}",
                "check GAMEDAY_SHOP_CONSUMER_KEY/_SECRET (WooCommerce > Settings > Advanced > REST API)")]
    status, body = client.call("GET", "/settings/account/woocommerce_enable_guest_checkout")
    value = body.get("value") if isinstance(body, dict) else None
    if status == 200:
        rows.append(Row("store", "guest checkout", OK if value == "yes" else FAIL, f"woocommerce_enable_guest_checkout={value}",
                        "allow guest checkout (WooCommerce > Settings > Accounts & Privacy)"))
    else:
        rows.append(Row("store", "guest checkout", WARN, f"not checked: the settings API answered {status}",
                        "give the REST key a user who may read settings, or check the setting by hand"))
    return rows


def shop_rows(context: Context, shop_url: Optional[str], timeout: float = 5.0) -> List[Row]:
    if not shop_url:
        return [Row("reach", "shop", FAIL, "no shop URL", "set GAMEDAY_SHOP_URL")]
    session = StoreSession(shop_url.rstrip("/"), timeout)
    reply = session.request("GET", f"{STORE}/products?per_page=1")
    if reply.status == 0:
        why = reply.body.get("message") if isinstance(reply.body, dict) else reply.body
        return [Row("reach", "shop", FAIL, f"{shop_url}: {why}", "check GAMEDAY_SHOP_URL and the network path")]
    rows = [Row("reach", "shop", OK, f"{shop_url} answers ({reply.status})")]
    rows += [_products_row(session), _payment_row(session)]
    return rows + _rest_rows(context, shop_url.rstrip("/"), timeout)
