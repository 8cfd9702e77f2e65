"""One connection attempt per endpoint at a time: the data-plane probes' pacer.

Whichever probes run (a steady-state check, the watch measuring an outage, a FIS fault's own
watch), their attempts to one endpoint are spaced at least MIN_INTERVAL apart, so polling never
disturbs the load the shop is under.
"""
import threading
import time
from typing import Dict, Tuple

__all__ = ["MIN_INTERVAL", "PACER"]

MIN_INTERVAL = 0.1  # seconds between two connection attempts to one endpoint


class Pacer:
    """Spaces connection attempts to one endpoint at least MIN_INTERVAL apart."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: Dict[Tuple[str, int], float] = {}

    def wait(self, host: str, port: int) -> None:
        """Block until this endpoint's next slot, then claim it (slot = now + MIN_INTERVAL)."""
        while True:
            with self._lock:
                now = time.monotonic()
                due = self._next.get((host, port), 0.0)
                if now >= due:
                    self._next[(host, port)] = now + MIN_INTERVAL
                    return
            time.sleep(due - now)


PACER = Pacer()
