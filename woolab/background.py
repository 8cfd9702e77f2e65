"""Background operations, as AWS runs them: the API call returns at once, the work goes on.

Each operation names the resource it owns. When one fails, only that resource is settled back
to `available` (a failed DB failover must not flip a replication group that is busy with its own
TestFailover), the error is recorded once for `take_errors`, and the controller lives on.
"""
import logging
import threading
from typing import Callable, List, Optional

from groundfloor.supervisor import poll_until

log = logging.getLogger("woolab")


class BackgroundRunner:
    def __init__(self, on_failure: Callable[[str, str, str], None]):
        """`on_failure(kind, resource_id, why)` settles the owned resource after a failure."""
        self._on_failure = on_failure
        self._threads: List[threading.Thread] = []
        self._errors: List[str] = []
        self._lock = threading.Lock()
        self.generation = 0  # bumped by every operation, so observers never apply a stale view

    def run(self, owner: tuple, fn: Callable, *args) -> None:
        """Run `fn(*args)` in a thread; `owner` is (kind, resource id) of what it changes."""
        self.generation += 1

        def body():
            try:
                fn(*args)
            except Exception as exc:  # a failed mechanic must not kill the controller
                log.exception("background operation %s failed", fn.__name__)
                with self._lock:
                    self._errors.append(f"{fn.__name__}: {exc}")
                self._on_failure(owner[0], owner[1], f"{fn.__name__}: {exc}")

        thread = threading.Thread(target=body, name=fn.__name__, daemon=True)
        thread.owner = tuple(owner)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def busy(self) -> bool:
        with self._lock:
            return any(t.is_alive() for t in self._threads)

    def running(self) -> List[str]:
        """The names of the operations still running (what `gameday lab status` reports)."""
        with self._lock:
            return [t.name for t in self._threads if t.is_alive()]

    def idle(self, kind: str, resources) -> list:
        """The `resources` of `kind` (db, replication-group) that are `available` with no
        operation of theirs running: what monitoring and healing may act on."""
        return [r for r in resources if r.status == "available" and not self.busy_with((kind, r.id))]

    def busy_with(self, owner: tuple) -> bool:
        """Whether an operation on this resource is still running."""
        with self._lock:
            return any(t.is_alive() and t.owner == tuple(owner) for t in self._threads)

    def take_errors(self) -> List[str]:
        """Errors since the last call (each reported once)."""
        with self._lock:
            errors, self._errors = self._errors, []
        return errors

    def wait_idle(self, timeout: Optional[float] = 60.0) -> None:
        """Block until every operation has finished (tests, benchmarks, shutdown); None: no limit."""
        poll_until(lambda: not self.busy(), float("inf") if timeout is None else timeout, interval=0.02)
