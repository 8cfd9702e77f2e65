"""Read/write splitting: which database endpoint a read of the current request goes to.

The hardened shop on a Multi-AZ DB cluster sends catalogue reads to the cluster's reader
endpoint and everything else to the cluster (writer) endpoint, deciding as WordPress's
read/write-splitting ``db.php`` drop-ins do (HyperDB, LudicrousDB; docs/db-cluster.md cites them):

- A statement goes to a replica only when it is a read and the request has not written yet;
  after a write, the request's later reads go to the primary, so it reads its own writes.
- A request that must read its own writes from the start (carts, checkout, order lookups)
  sends all of its reads to the primary (the drop-ins' ``send_reads_to_masters()``).
  Here a route opts in to the readers (``READER_ROUTES``: the catalogue); every other route is
  pinned to the writer, so a route added later is safe by default.
- A reader that cannot be reached, or fails the read, costs one read on the writer instead of
  an error (the drop-ins try the next server of their read groups, the primary last), and its address is
  avoided for ``READER_DOWN_SECONDS`` (HyperDB marks a server down for 10 s), so a dead reader
  does not cost every read a connect timeout.

The ``stock`` profile and a shop without a reader endpoint (an instance lab, a single server)
read everything through the one endpoint. The state is per request (a context variable: the
shop's gthread workers serve one request per thread at a time).
"""
from __future__ import annotations

import contextlib
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, Optional, Set

READER_ROUTES = frozenset({"products", "product"})
READER_DOWN_SECONDS = 10.0
READER, WRITER, FALLBACK = "reader", "writer", "writer-fallback"


@dataclass
class RequestReads:
    """The read routing of one request: whether it may use a reader, and what served it."""

    may_use_reader: bool = False
    wrote: bool = False
    served: Set[str] = field(default_factory=set)

    def target(self) -> str:
        """Where the next read goes: a reader until the request wrote (or if pinned)."""
        return READER if self.may_use_reader and not self.wrote else WRITER

    def summary(self) -> Optional[str]:
        """What served this request's database work, for the access log (None: no database)."""
        return ",".join(sorted(self.served)) or None


def may_use_reader(profile: str, route: str, reader_host: Optional[str]) -> bool:
    """Whether reads of `route` may go to the reader endpoint: hardened profile, a reader
    endpoint configured, and a catalogue route."""
    return profile == "hardened" and bool(reader_host) and route in READER_ROUTES


_current: ContextVar[Optional[RequestReads]] = ContextVar("woolab_shop_request_reads", default=None)


@contextlib.contextmanager
def request_scope(reads: RequestReads) -> Iterator[RequestReads]:
    """Make `reads` the routing of the request running in this context."""
    token = _current.set(reads)
    try:
        yield reads
    finally:
        _current.reset(token)


def current() -> RequestReads:
    """The running request's routing; outside a request (start-up, health) a pinned one."""
    return _current.get() or RequestReads()


class DownList:
    """Reader addresses that failed recently, avoided until their time is up (per process)."""

    def __init__(self, seconds: float = READER_DOWN_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._until: Dict[str, float] = {}
        self._lock = threading.Lock()

    def mark(self, address: str) -> None:
        with self._lock:
            self._until[address] = self.clock() + self.seconds

    def is_down(self, address: str) -> bool:
        with self._lock:
            until = self._until.get(address)
            if until is None:
                return False
            if self.clock() >= until:
                del self._until[address]
                return False
            return True
