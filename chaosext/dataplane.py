"""Data-plane probes: is the Redis / MySQL endpoint the application uses writable, and when again?

One Redis client factory and one MySQL connection factory, configured from the experiment's
configuration (or secrets, for passwords):
`redis_host`, `redis_port` (6379), `redis_password`, `redis_username`, `redis_ssl`,
`redis_ssl_ca`, `redis_tls_verify`; `mysql_host`, `mysql_port` (3306), `mysql_user`,
`mysql_password`, `mysql_database`, `mysql_tls`, `mysql_ssl_ca`, `mysql_tls_verify`
(`mysql_ssl_disabled` still turns TLS off). Each one may also come from the environment variable
listed in `chaosext.settings` (e.g. GAMEDAY_REDIS_TLS, GAMEDAY_MYSQL_CA). Certificates are
verified whenever TLS is used, unless `*_tls_verify` is false;
`dataplane_attempt_timeout` (seconds one connect+write of the outage measurement may take,
default 0.25: one hung attempt must not delay the measured recovery); `dataplane_check_timeout`
(seconds the steady-state checks `redis_writable` / `mysql_writable` give their one write, default
2: they ask whether the endpoint takes writes, and a write acknowledged in 0.4 s on a busy
machine is taken).

Each check opens a fresh connection, as a PHP request does, so it lands wherever the endpoint
points now. A per-endpoint pacer (`chaosext/pacer.py`) guarantees at most one connection attempt
per 100 ms per endpoint, whichever probes run, so polling never disturbs the load.
"""
import logging
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

import pymysql
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from chaoslib.types import Configuration, Secrets

from chaosext.attempts import Attempt, failed
from chaosext.pacer import MIN_INTERVAL, PACER
from chaosext import settings, thresholds, unmeasured, watch_registry
from chaosext.fault_model import service_of_data_plane
from chaosext.alerts import faults as fault_log
from chaosext.addresses import is_loopback
from chaosext.errors import ActivityError
from groundfloor.resolve import NameNotResolved, connect_host, default_resolver
from groundfloor.supervisor import poll_until
from groundfloor.timefmt import iso

__all__ = ["redis_writable", "mysql_writable", "wait_until_writable"]

logger = logging.getLogger("chaostoolkit")

PROBE_KEY = "gameday:probe"
PROBE_TABLE = "gameday_probe"
MYSQL_TABLE_MISSING = 1146


def _get(key: str, configuration: Configuration, secrets: Secrets, default: Any = None) -> Any:
    return settings.lookup(key, configuration, secrets, default)


def _timeout(configuration: Configuration) -> float:
    return float((configuration or {}).get("dataplane_attempt_timeout", 0.25))


def _check_timeout(configuration: Configuration) -> float:
    return float((configuration or {}).get("dataplane_check_timeout", 2.0))


@dataclass(frozen=True)
class Endpoint:
    kind: str  # "redis" | "mysql"
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.kind} endpoint {self.host}:{self.port}"


def endpoint(kind: str, configuration: Configuration = None, secrets: Secrets = None
             ) -> Optional[Endpoint]:
    """The configured endpoint of `kind`, or None when the configuration names none."""
    if kind not in ("redis", "mysql"):
        raise ActivityError(f"unknown data-plane kind {kind!r}: use 'redis' or 'mysql'")
    host = _get(f"{kind}_host", configuration, secrets)
    if not host:
        return None
    port = int(_get(f"{kind}_port", configuration, secrets, 6379 if kind == "redis" else 3306))
    return Endpoint(kind, str(host), port)


def _require(kind: str, configuration: Configuration, secrets: Secrets) -> Endpoint:
    found = endpoint(kind, configuration, secrets)
    if found is None:
        raise ActivityError(f"no {kind} endpoint configured: set `{kind}_host` (and "
                            f"`{kind}_port`) in the configuration")
    return found


def redis_client(configuration: Configuration = None, secrets: Secrets = None,
                 timeout: Optional[float] = None) -> redis.Redis:
    """The Redis client factory: short timeouts, no hidden retries (a probe must see failures)."""
    point = _require("redis", configuration, secrets)
    timeout = timeout if timeout is not None else _timeout(configuration)
    return redis.Redis(
        host=connect_host(point.host), port=point.port,
        username=_get("redis_username", configuration, secrets),
        password=_get("redis_password", configuration, secrets),
        socket_connect_timeout=timeout, socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0), **_redis_tls(configuration, secrets),
    )


def _redis_tls(configuration: Configuration, secrets: Secrets) -> Dict[str, Any]:
    """TLS only when asked for (ElastiCache in-transit encryption); then verified by default."""
    if not settings.flag(_get("redis_ssl", configuration, secrets, False)):
        return {}
    verify = settings.tristate(_get("redis_tls_verify", configuration, secrets)) is not False
    return {"ssl": True, "ssl_ca_certs": _get("redis_ssl_ca", configuration, secrets),
            "ssl_cert_reqs": "required" if verify else "none", "ssl_check_hostname": verify}


_SHARED_TLS: Dict[Tuple[Optional[str], bool], ssl.SSLContext] = {}


def mysql_tls_wanted(host: str, configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """`mysql_tls` when set; otherwise TLS everywhere but loopback (and off by `mysql_ssl_disabled`)."""
    if settings.flag(_get("mysql_ssl_disabled", configuration, secrets, False)):
        return False
    wanted = settings.tristate(_get("mysql_tls", configuration, secrets))
    return (not is_loopback(host)) if wanted is None else wanted


def _mysql_tls(host: str, configuration: Configuration, secrets: Secrets) -> Dict[str, Any]:
    """No TLS, or one shared SSLContext (PyMySQL would build one per connect), verified by
    default: with the CA bundle given (RDS: global-bundle.pem), else the system trust store."""
    if not mysql_tls_wanted(host, configuration, secrets):
        return {"ssl_disabled": True}
    ca = _get("mysql_ssl_ca", configuration, secrets)
    verify = settings.tristate(_get("mysql_tls_verify", configuration, secrets)) is not False
    if (ca, verify) not in _SHARED_TLS:
        context = ssl.create_default_context(cafile=ca)
        if not verify:  # encryption only, when the operator said so
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        _SHARED_TLS[(ca, verify)] = context
    return {"ssl": _SHARED_TLS[(ca, verify)]}


def mysql_connection(configuration: Configuration = None, secrets: Secrets = None,
                     timeout: Optional[float] = None) -> pymysql.connections.Connection:
    """The MySQL connection factory: one fresh autocommit connection with short timeouts."""
    point = _require("mysql", configuration, secrets)
    timeout = timeout if timeout is not None else _timeout(configuration)
    host = connect_host(point.host)
    return pymysql.connect(
        host=host, port=point.port,
        user=_get("mysql_user", configuration, secrets),
        password=_get("mysql_password", configuration, secrets) or "",
        database=_get("mysql_database", configuration, secrets),
        connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout,
        autocommit=True, **_mysql_tls(host, configuration, secrets),
    )


def _write_redis(configuration: Configuration, secrets: Secrets) -> None:
    client = redis_client(configuration, secrets)
    try:
        client.set(PROBE_KEY, repr(time.time()), px=60000)
    finally:
        client.close()


def _write_mysql(configuration: Configuration, secrets: Secrets) -> None:
    upsert = (f"INSERT INTO {PROBE_TABLE} (id, probed_at) VALUES (1, NOW(6)) "
              "ON DUPLICATE KEY UPDATE probed_at = VALUES(probed_at)")
    connection = mysql_connection(configuration, secrets)
    try:
        with connection.cursor() as cursor:
            try:
                cursor.execute(upsert)
            except pymysql.err.ProgrammingError as error:
                if error.args[0] != MYSQL_TABLE_MISSING:
                    raise
                cursor.execute(f"CREATE TABLE IF NOT EXISTS {PROBE_TABLE} "
                               "(id INT PRIMARY KEY, probed_at DATETIME(6))")
                cursor.execute(upsert)
    finally:
        connection.close()


WRITERS = {"redis": _write_redis, "mysql": _write_mysql}


def attempt_write(kind: str, configuration: Configuration = None, secrets: Secrets = None) -> Attempt:
    """One paced write attempt; its outcome, times in epoch seconds."""
    point = _require(kind, configuration, secrets)
    PACER.wait(point.host, point.port)
    started = time.time()
    try:
        WRITERS[kind](configuration, secrets)
        return Attempt(True, None, started, time.time())
    except (redis.RedisError, pymysql.err.MySQLError, OSError) as error:
        return failed(error, started)


SKIP_FIX = {"mysql": "set GAMEDAY_MYSQL_HOST (and _PORT/_USER/_PASSWORD/_DATABASE) to measure it",
            "redis": "set GAMEDAY_REDIS_HOST (and _PORT/_PASSWORD) to measure it"}


def _writable(kind: str, configuration: Configuration, secrets: Secrets) -> bool:
    if endpoint(kind, configuration, secrets) is None:
        unmeasured.skip(f"{kind} data plane", f"no {kind} endpoint configured; {SKIP_FIX[kind]}",
                        configuration)
        return True
    check = {**(configuration or {}), "dataplane_attempt_timeout": _check_timeout(configuration)}
    outcome = attempt_write(kind, check, secrets)
    if not outcome.ok:
        raise ActivityError(f"{_require(kind, configuration, secrets)} is not writable: {outcome.why}")
    return True


def redis_writable(configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """Write a short-lived probe key through the Redis primary endpoint the application uses.

    Returns True when the write was acknowledged; fails the activity with the reason
    (refused connection, timeout, READONLY from a demoted primary) otherwise. Without a
    configured Redis endpoint the check is skipped: True, a warning, and "not measured".
    """
    return _writable("redis", configuration, secrets)


def mysql_writable(configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """Upsert one row of the `gameday_probe` table through the MySQL endpoint the application uses.

    Returns True when the write committed; fails the activity with the MySQL error number
    (2003 cannot connect, 2013 lost, 1290 read-only, ...) otherwise. Without a configured MySQL
    endpoint the check is skipped: True, a warning, and "not measured".
    """
    return _writable("mysql", configuration, secrets)


@dataclass
class WriteWatch:
    """Polls an endpoint with paced write attempts and remembers outage boundaries.

    `first_failure_at` is the start time of the first failed attempt. The endpoint became
    writable again somewhere between the last failed attempt and the end of the first
    acknowledged write after it (`writable_again_between`): from the end of that failed attempt
    when it got an answer (refused, READONLY), from its start when it timed out, since a hang
    proves nothing past its start (chaosext/attempts.py). Attempts are paced at least
    MIN_INTERVAL apart, so the interval is about 100 ms plus one attempt wide, or one timeout
    plus one attempt after a hang. `writable_again_at` is its middle, the estimate with the
    smallest worst-case error (half the interval, against up to all of it for either end); the
    interval itself is in the result.
    """

    kind: str
    configuration: Configuration = None
    secrets: Secrets = None
    interval: float = MIN_INTERVAL
    first_failure_at: Optional[float] = None
    first_success_at: Optional[float] = None
    writable_again_at: Optional[float] = None
    writable_again_between: Optional[Tuple[float, float]] = None
    last_failure_known_at: Optional[float] = None  # the last failed attempt's known_not_writable_at
    attempts: int = 0
    failures: int = 0
    last_error: Optional[str] = None
    attempt: Optional[Callable[..., Attempt]] = None  # else attempt_write
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: Optional[threading.Thread] = None

    def __post_init__(self) -> None:
        self.endpoint = _require(self.kind, self.configuration, self.secrets)
        self.interval = max(float(self.interval), MIN_INTERVAL)

    @property
    def outage_seconds(self) -> Optional[float]:
        if self.first_failure_at is None:
            return 0.0 if self.first_success_at is not None else None
        if self.writable_again_at is None:
            return None
        return round(self.writable_again_at - self.first_failure_at, 3)

    @property
    def recovered(self) -> bool:
        return self.writable_again_at is not None

    def step(self) -> bool:
        """One attempt; returns whether the endpoint was writable."""
        outcome = (self.attempt or attempt_write)(self.kind, self.configuration, self.secrets)
        self.attempts += 1
        if outcome.ok:
            if self.first_success_at is None:
                self.first_success_at = outcome.finished
            if self.first_failure_at is not None and self.writable_again_at is None:
                self.writable_again_between = (self.last_failure_known_at, outcome.finished)
                self.writable_again_at = (self.last_failure_known_at + outcome.finished) / 2
        else:
            self.failures += 1
            self.last_error = outcome.why
            self.last_failure_known_at = outcome.known_not_writable_at
            if self.first_failure_at is None:
                self.first_failure_at = outcome.started
                logger.info("%s not writable from %s: %s", self.endpoint, iso(outcome.started), outcome.why)
        return outcome.ok

    def _loop(self) -> None:
        while not self._stop.is_set() and not self.recovered:
            began = time.monotonic()
            self.step()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def start(self) -> "WriteWatch":
        watch_registry.watching(self, True)
        self._thread = threading.Thread(target=self._loop, name=f"watch-{self.kind}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        watch_registry.watching(self, False)

    def result(self) -> Dict[str, Any]:
        return {
            "endpoint": f"{self.endpoint.host}:{self.endpoint.port}",
            "kind": self.kind,
            "first_failure_at": iso(self.first_failure_at),
            "first_success_at": iso(self.first_success_at),
            "writable_again_at": iso(self.writable_again_at),
            "writable_again_between": ([iso(t) for t in self.writable_again_between]
                                       if self.writable_again_between else None),
            "outage_seconds": self.outage_seconds,
            "attempts": self.attempts,
            "failures": self.failures,
            "last_error": self.last_error,
        }


def wait_until_writable(kind: str, timeout: Optional[float] = None,
                        interval: float = MIN_INTERVAL, expect_outage: bool = False,
                        configuration: Configuration = None, secrets: Secrets = None
                        ) -> Dict[str, Any]:
    """Poll writes to the `redis` or `mysql` endpoint (every `interval` >= 0.1 s) until it is writable.

    With `expect_outage`, first wait for the endpoint to fail (a fault injected without
    waiting) and then for it to recover. Returns first_failure_at / first_success_at /
    writable_again_at (ISO-8601 UTC) and the outage length; fails the activity when the
    endpoint is not writable within `timeout` seconds (default: twice the RTO threshold of the
    service behind it, chaosext.thresholds).
    """
    service = service_of_data_plane(kind)
    timeout = thresholds.fault_timeout(configuration, None, None, timeout,
                                       [service] if service else [])
    watch = WriteWatch(kind, configuration, secrets, interval)

    def writable() -> bool:
        return watch.step() and (watch.recovered or not expect_outage)

    watch_registry.watching(watch, True)
    try:
        if poll_until(writable, float(timeout), watch.interval):
            if not watch.recovered:
                watch.writable_again_at = watch.first_success_at
            fault_log.remember_writable(watch.result())
            return watch.result()
    finally:
        watch_registry.watching(watch, False)
    if watch.first_failure_at is None:
        raise ActivityError(f"{watch.endpoint} stayed writable for {timeout:g} s: the expected "
                            "outage never happened")
    raise ActivityError(f"{watch.endpoint} not writable again within {timeout:g} s "
                        f"(last error: {watch.last_error})")


def resolve_endpoint(address: str, port: Optional[int]) -> Dict[str, Any]:
    """What a DNS name resolves to now, as a client reconnecting would see it (the lab's DNS
    server with $GAMEDAY_DNS_SERVER, the system resolver otherwise)."""
    try:
        resolved = default_resolver().addresses(address)
    except NameNotResolved as error:
        raise ActivityError(f"endpoint {address} does not resolve: {error}") from None
    return {"address": address, "port": port, "resolved": resolved}
