"""MariaDB through the instance (or cluster) endpoint: a fresh connection per request, like PHP.

Reads that may go to a Multi-AZ DB cluster's reader endpoint go through :meth:`Database.read`,
which asks :mod:`woolab.shop.readsplit` where the current request's reads belong and falls back
to the writer when the reader fails. Connection loss, a read-only server and timeouts become
``ServiceUnavailable`` (503 with Retry-After), never a 500. PyMySQL 1.2 builds a new TLS
context per connection when no TLS option is given (~20 ms CPU each), so TLS is off on loopback
unless a CA bundle is configured, in which case one shared ``ssl.SSLContext`` serves every
connection.
"""
from __future__ import annotations

import contextlib
import logging
import ssl
from typing import Callable, ContextManager, Iterator, Optional, TypeVar

import pymysql
from pymysql.connections import Connection
from pymysql.err import Error as MySQLError

from groundfloor.resolve import Resolver

from . import readsplit
from .config import ShopConfig, resolver_for
from .errors import ServiceUnavailable

log = logging.getLogger("woolab.shop")
T = TypeVar("T")

# errnos that mean "the database is not (writably) there right now"
OUTAGE_ERRNOS = {
    1040,  # too many connections
    1053,  # server shutdown in progress
    1205,  # lock wait timeout
    1213,  # deadlock (retry the request)
    1290,  # --read-only: a demoted primary
    1792,  # read-only transaction
    1836,  # read-only mode
    1927,  # connection killed
    2002, 2003,  # cannot connect
    2006,  # server has gone away
    2013,  # lost connection during query (also read timeouts)
    2014, 2055,
}


class Database:
    """Opens per-request connections to the writer endpoint, and to the reader endpoint for
    the reads the request's routing allows."""

    def __init__(self, config: ShopConfig, resolver: Optional[Resolver] = None) -> None:
        self.config = config
        self.resolver = resolver or resolver_for(config)
        self.readers_down = readsplit.DownList()
        self._ssl: Optional[ssl.SSLContext] = None
        if config.db_ssl_ca:
            self._ssl = ssl.create_default_context(cafile=config.db_ssl_ca)

    def _connect(self, read_timeout: Optional[float] = None,
                 address: Optional[str] = None) -> pymysql.connections.Connection:
        c = self.config
        options = {"ssl": self._ssl} if self._ssl else {"ssl_disabled": True}
        return pymysql.connect(
            host=address or self.resolver.address(c.db_host), port=c.db_port, user=c.db_user,
            password=c.db_password,
            database=c.db_name, charset="utf8mb4", autocommit=False,
            connect_timeout=c.db_connect_timeout,
            read_timeout=read_timeout or c.db_read_timeout,
            write_timeout=c.db_write_timeout,
            cursorclass=pymysql.cursors.Cursor,
            **options,
        )

    def connection(self, read_timeout: Optional[float] = None) -> ContextManager[Connection]:
        """A writer connection for work that may write; the request's later reads then go to
        the writer too. Outages surface as ServiceUnavailable."""
        reads = readsplit.current()
        reads.wrote = True
        reads.served.add(readsplit.WRITER)
        return self._opened(read_timeout)

    def read(self, work: Callable[[pymysql.connections.Connection], T]) -> T:
        """Run the read-only `work(conn)` where the request's routing sends reads: the reader
        endpoint, or the writer when pinned, after a write, or when the reader fails (cannot be
        reached, or fails the read: a lagging reader may lack what the writer has)."""
        reads = readsplit.current()
        reader_host = self.config.db_reader_host
        if reader_host and reads.target() == readsplit.READER:
            address = None
            try:
                address = self.resolver.address(reader_host)
                if not self.readers_down.is_down(address):
                    with self._opened(address=address) as conn:
                        result = work(conn)
                    reads.served.add(readsplit.READER)
                    return result
            except (ServiceUnavailable, MySQLError, OSError) as exc:  # e.g. a table not replicated yet
                if address:
                    self.readers_down.mark(address)
                log.warning("reader endpoint %s (%s) failed, reading from the writer: %s",
                            reader_host, address, getattr(exc, "message", exc))
            reads.served.add(readsplit.FALLBACK)
        else:
            reads.served.add(readsplit.WRITER)
        with self._opened() as conn:
            return work(conn)

    @contextlib.contextmanager
    def _opened(self, read_timeout: Optional[float] = None,
                address: Optional[str] = None) -> Iterator[pymysql.connections.Connection]:
        conn = None
        try:
            conn = self._connect(read_timeout, address)
            yield conn
        except (MySQLError, OSError) as exc:
            errno = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            if isinstance(exc, (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError)) \
                    or errno in OUTAGE_ERRNOS:
                raise self.unavailable(errno) from None
            raise
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def unavailable(self, errno: Optional[int]) -> ServiceUnavailable:
        if errno in (1290, 1792, 1836):
            detail = "The store database is read-only (failover in progress)."
        else:
            detail = "The store database is temporarily unavailable."
        retry = self.config.checkout_retry_after
        return ServiceUnavailable(
            "woocommerce_rest_database_unavailable",
            f"{detail} Your cart is kept; please try again in {retry} seconds.",
            retry, cause=f"mysql errno {errno}" if errno else "mysql connection error", errno=errno)
