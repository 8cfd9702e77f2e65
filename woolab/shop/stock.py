"""How a request meets an outage under each profile: ``hardened`` answers 503, ``stock`` as
unhardened WordPress + WooCommerce + Redis Object Cache do (docs/shop.md cites every rule).

``stock``, per request:
1. WordPress bootstrap: ``wpdb::__construct`` connects (``db_connect``); a failed connect sets
   ``wpdb->error`` and ``wp_set_wpdb_vars()`` calls ``dead_db()``: the HTTP 500 page "Error
   establishing a database connection", at once, for every page (browsing too).
2. ``wp_start_object_cache()``: the Redis Object Cache drop-in connects and pings; an exception
   goes to ``WP_Object_Cache::handle_exception`` and, without ``WP_REDIS_GRACEFUL``, to
   ``show_error_and_die``: the HTTP 500 page "Error establishing a Redis connection". Any later
   Redis error in the request (timeout, READONLY, lost connection) takes the same path.
3. A database connection lost mid-request: ``wpdb::query`` calls ``check_connection()``, which
   reconnects up to ``reconnect_retries`` (5) times with ``sleep(1)`` after each failure; back
   again, the query is repeated; still gone, ``bail()`` and ``dead_db()``: the same 500 page.
   Any other failed query (a read-only server, a lock timeout) returns ``false`` to WooCommerce,
   whose request then ends in WordPress's critical-error answer (500).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Tuple

from .cache import Cache, CartStore
from .config import ShopConfig
from .db import Database
from .errors import ServiceUnavailable, ShopError
from .sessions import SessionTableStore

Result = Tuple[int, Any, Tuple]
RECONNECT_RETRIES = 5  # wpdb::$reconnect_retries
# errnos after which wpdb finds its connection gone (2006 on the next query) and reconnects
GONE_AWAY = {None, 1053, 1927, 2002, 2003, 2006, 2013, 2014, 2055}
HTML = "text/html; charset=utf-8"

DEAD_DB_HTML = ("<!DOCTYPE html>\n<html lang=\"en-US\">\n<head>\n<meta charset=\"utf-8\">\n"
                "<title>Database Error</title>\n</head>\n<body id=\"error-page\">\n"
                "<div class=\"wp-die-message\"><h1>Error establishing a database connection</h1></div>\n"
                "</body>\n</html>\n")
REDIS_ERROR_HTML = ("<!DOCTYPE html>\n<html lang=\"en-US\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<title>WordPress &rsaquo; Error</title>\n</head>\n<body id=\"error-page\">\n"
                    "<div class=\"wp-die-message\"><h1>Error establishing a Redis connection</h1>\n"
                    "<p>To disable Redis, delete the <code>object-cache.php</code> file in the "
                    "<code>/wp-content/</code> directory.</p></div>\n</body>\n</html>\n")


class ErrorPage(ShopError):
    """A WordPress HTML error page (``wp_die``/``dead_db``): status 500, no JSON body."""

    def __init__(self, code: str, html: str, cause: str = "") -> None:
        super().__init__(code, html, 500, {"cause": cause} if cause else {},
                         {"Content-Type": HTML})
        self.html = html

    def body(self) -> bytes:  # type: ignore[override]
        return self.html.encode("utf-8")


def dead_db(cause: str = "") -> ErrorPage:
    return ErrorPage("dead_db", DEAD_DB_HTML, cause)


def redis_error(cause: str = "") -> ErrorPage:
    return ErrorPage("redis_connection_error", REDIS_ERROR_HTML, cause)


def critical_error(cause: str = "") -> ShopError:
    return ShopError("internal_server_error", "There has been a critical error on this website.",
                     500, {"cause": cause} if cause else {})


def is_cache_outage(err: ServiceUnavailable) -> bool:
    return err.code.startswith(("woocommerce_rest_cache", "woocommerce_rest_cart_not_replicated"))


class HardenedSite:
    """Today's behaviour: handlers run as they are; outages are 503 with Retry-After."""

    def __init__(self, config: ShopConfig, db: Database, cache: Cache) -> None:
        self.config, self.db, self.cache = config, db, cache

    def serve(self, handler: Callable[[Any], Result], req: Any) -> Result:
        return handler(req)

    def cart_store(self):
        return CartStore(self.cache)


class StockSite(HardenedSite):
    """The unhardened store's request life cycle (see the module docstring)."""

    def __init__(self, config: ShopConfig, db: Database, cache: Cache,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(config, db, cache)
        self.sleep = sleep

    def cart_store(self):
        return SessionTableStore(self.cache, self.db)

    def serve(self, handler: Callable[[Any], Result], req: Any) -> Result:
        self._bootstrap()
        try:
            return handler(req)
        except ServiceUnavailable as err:
            if is_cache_outage(err) or err.errno not in GONE_AWAY:
                raise self._page(err) from None
            if not self._check_connection():
                raise dead_db(_cause(err)) from None
        try:  # reconnected: the failed query runs again
            return handler(req)
        except ServiceUnavailable as err:
            raise self._page(err) from None

    def _bootstrap(self) -> None:
        try:
            with self.db.connection():
                pass
        except ServiceUnavailable as err:
            raise dead_db(_cause(err)) from None
        try:
            self.cache.run(lambda r: r.ping())
        except ServiceUnavailable as err:
            raise redis_error(_cause(err)) from None

    def _check_connection(self) -> bool:
        """``wpdb::check_connection``: up to 5 reconnects, one second apart."""
        for _ in range(RECONNECT_RETRIES):
            try:
                with self.db.connection():
                    return True
            except ServiceUnavailable:
                self.sleep(1.0)
        return False

    @staticmethod
    def _page(err: ServiceUnavailable) -> ShopError:
        if is_cache_outage(err):
            return redis_error(_cause(err))
        return dead_db(_cause(err)) if err.errno in GONE_AWAY else critical_error(_cause(err))


def _cause(err: ServiceUnavailable) -> str:
    return str(err.data.get("cause", ""))


def make_site(config: ShopConfig, db: Database, cache: Cache) -> HardenedSite:
    """The request life cycle of the configured profile."""
    return (StockSite if config.profile == "stock" else HardenedSite)(config, db, cache)
