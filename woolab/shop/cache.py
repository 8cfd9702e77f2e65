"""Redis through the replication group's primary endpoint: carts/sessions and the object cache.

Resilience is composed from redis-py's own objects, reading like the commonly recommended Predis options:
``Retry(ConstantBackoff(retry_wait), max_retries)`` with ``ReadOnlyError`` among the retried
errors, so a pooled connection to a demoted primary is dropped and the next attempt reconnects
through the endpoint to the new primary. The retry is applied once per operation: the client's
own per-command retry is set to zero attempts (it still closes the failed connection), because
redis-py 8 also retries inside ``connect()`` with the same policy, which would square the
attempts (36 instead of 6 with max_retries=5).
"""
from __future__ import annotations

import json
from typing import Callable, Optional, TypeVar

import redis
from redis.backoff import ConstantBackoff, ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError, ReadOnlyError, RedisError, TimeoutError
from redis.retry import Retry

from groundfloor.resolve import Resolver, resolving_redis

from .config import ShopConfig, resolver_for
from .errors import ServiceUnavailable, ShopError

T = TypeVar("T")
RETRIED_ERRORS = (ConnectionError, TimeoutError, ReadOnlyError)


def operation_retry(config: ShopConfig) -> Retry:
    """The commonly recommended retry policy as a redis-py Retry; the no-retry baseline is zero retries."""
    if not config.retry or config.max_retries == 0:
        return Retry(NoBackoff(), 0, supported_errors=RETRIED_ERRORS)
    wait = config.retry_wait / 1000.0
    if config.retry_backoff == "exponential":
        backoff = ExponentialBackoff(cap=wait * 2 ** config.max_retries, base=wait)
    else:
        backoff = ConstantBackoff(wait)
    return Retry(backoff, config.max_retries, supported_errors=RETRIED_ERRORS)


def make_client(config: ShopConfig, *, port: Optional[int] = None,
                connect_timeout: Optional[float] = None,
                read_timeout: Optional[float] = None, resolver: Optional[Resolver] = None) -> redis.Redis:
    """A pooled client for the primary endpoint; one attempt per call, failed connections closed."""
    return resolving_redis(
        config.redis_host, port or config.redis_port, resolver or resolver_for(config),
        username=config.redis_username or None,
        password=config.redis_password or None,
        **tls_options(config),
        socket_connect_timeout=connect_timeout or config.connection_timeout,
        socket_timeout=read_timeout or config.read_write_timeout,
        retry=Retry(NoBackoff(), 0, supported_errors=RETRIED_ERRORS),
        retry_on_error=list(RETRIED_ERRORS),
        health_check_interval=0,
        max_connections=256,
    )


def tls_options(config: ShopConfig) -> dict:
    """In-transit encryption as a PHP client would be told (`tls://` with a CA file): verified."""
    if not config.redis_ssl:
        return {}
    return {"ssl": True, "ssl_ca_certs": config.redis_ssl_ca, "ssl_cert_reqs": "required",
            "ssl_check_hostname": True}


class Cache:
    """Runs Redis operations under the configured retry policy and maps failures to 503."""

    def __init__(self, config: ShopConfig, client: Optional[redis.Redis] = None) -> None:
        self.config = config
        self.client = client or make_client(config)
        self.retry = operation_retry(config)

    def run(self, op: Callable[[redis.Redis], T]) -> T:
        """Run ``op`` with retries; a Redis outage becomes ServiceUnavailable (503)."""
        try:
            return self.retry.call_with_retry(lambda: op(self.client), lambda _err: None)
        except RedisError as exc:
            raise ServiceUnavailable(
                "woocommerce_rest_cache_unavailable",
                "The session store is temporarily unavailable. Please try again shortly.",
                self.config.checkout_retry_after, cause=type(exc).__name__) from None

    def try_run(self, op: Callable[[redis.Redis], T], default: T) -> T:
        """Like run(), but in fail-open mode an outage yields ``default`` (a cache miss)."""
        if not self.config.cache_fail_open:
            return self.run(op)
        try:
            return self.run(op)
        except ServiceUnavailable:
            return default


# Compare-and-set of a cart on its revision, atomically in Redis: 1 written (or our own revision
# already there), 0 another request saved a newer cart since this one read it.
SAVE_OVER_REVISION = """
local current = redis.call('GET', KEYS[1])
local rev = ''
if current then rev = cjson.decode(current)['rev'] or '' end
if rev ~= ARGV[3] and rev ~= ARGV[4] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


class CartChanged(ShopError):
    def __init__(self) -> None:
        super().__init__("gameday_cart_changed", "The cart was changed by another request in the "
                         "meantime. Load the cart and try again.", 409)


class CartStore:
    """Carts as JSON under ``wc:cart:<session>``; writes optionally acknowledged by a replica."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    @staticmethod
    def key(session: str) -> str:
        return "wc:cart:" + session

    def load(self, session: str) -> dict:
        raw = self.cache.run(lambda r: r.get(self.key(session)))
        if not raw:
            return {"items": [], "rev": ""}
        return json.loads(raw)

    def save(self, session: str, cart: dict, read_rev: Optional[str] = None) -> None:
        """Write the cart; with `read_rev`, only over that revision (or our own, when a retry
        follows a write that did go through): a stale save raises CartChanged (409)."""
        payload = json.dumps(cart, separators=(",", ":"))
        ttl = self.cache.config.cart_ttl
        if read_rev is None:
            self.cache.run(lambda r: self._write(r, lambda p: p.set(self.key(session), payload, ex=ttl)))
            return
        args = (1, self.key(session), payload, ttl, read_rev, cart.get("rev", ""))
        if not self.cache.run(lambda r: self._write(r, lambda p: p.eval(SAVE_OVER_REVISION, *args))):
            raise CartChanged()

    def clear(self, session: str) -> None:
        self.cache.run(lambda r: self._write(r, lambda p: p.delete(self.key(session))))

    def _write(self, r: redis.Redis, command: Callable):
        """One write, then WAIT for replicas when configured; unacknowledged counts as failed.
        Returns what the write command returned."""
        config = self.cache.config
        if not config.cart_wait_replicas:
            return command(r)
        pipe = r.pipeline(transaction=False)
        command(pipe)
        pipe.execute_command("WAIT", config.cart_wait_replicas, config.cart_wait_timeout_ms)
        written, acked = pipe.execute()[-2:]
        if int(acked) < config.cart_wait_replicas:
            raise ServiceUnavailable(
                "woocommerce_rest_cart_not_replicated",
                "The cart change was not confirmed by a replica in time. Please retry.",
                config.checkout_retry_after,
                cause=f"WAIT {config.cart_wait_replicas} acknowledged by {acked}")
        return written
