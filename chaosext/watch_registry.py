"""Data-plane outages being measured right now in this `chaos run` process.

The safeguard runs in the same process as the fault actions (chaostoolkit-addons runs it in a
thread). Every running write watch registers here, so the safeguard knows that clients still
cannot write through an endpoint however little shopper load there is to show it.
"""
import threading
from typing import Any, Dict, List

__all__ = ["watching", "live_outages"]

_watches: List[Any] = []  # chaosext.dataplane.WriteWatch objects
_lock = threading.Lock()


def watching(watch: Any, running: bool) -> None:
    """Register (`running`) or forget a write watch."""
    with _lock:
        if running:
            _watches.append(watch)
        elif watch in _watches:
            _watches.remove(watch)


def live_outages() -> List[Dict[str, Any]]:
    """[{"kind": "mysql"|"redis", "endpoint", "down_since"}] for every endpoint a running watch
    has seen fail and not yet seen take a write again."""
    with _lock:
        watches = list(_watches)
    return [{"kind": w.kind, "endpoint": str(w.endpoint), "down_since": w.first_failure_at}
            for w in watches if w.first_failure_at is not None and not w.recovered]
