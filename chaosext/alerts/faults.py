"""The fault results seen in this Chaos Toolkit run, so later probes can anchor on them.

Chaos Toolkit does not pass one activity's output to the next; the notify control records every
output carrying `injected_at` here, and `failover_events_within` uses the latest one when no
`since` is given. Everything runs in the one `chaos run` process, so module state is enough.
"""
import logging
import threading
from typing import Any, Callable, Dict, List, Optional

__all__ = ["remember", "last_fault", "faults", "forget", "is_fault_result", "listen", "announce",
           "announced", "remember_writable", "writable_results"]

logger = logging.getLogger("chaostoolkit")
_lock = threading.Lock()
_faults: List[Dict[str, Any]] = []
# Results of `wait_until_writable`: the data-plane recovery of a fault started without waiting
# (an FIS experiment), announced when that experiment ends (chaosext.fis.probes).
_writable: List[Dict[str, Any]] = []
# Who hears "fault-injected" / "recovered" the moment they happen (the notify control), and which
# (event, fault, injected_at) were announced, so the control does not send them twice.
_listeners: List[Callable[[str, Dict[str, Any]], None]] = []
_announced: set = set()


def listen(callback: Optional[Callable[[str, Dict[str, Any]], None]]) -> None:
    """Make `callback` the one listener (None: nobody listens)."""
    with _lock:
        _listeners[:] = [callback] if callback else []
        _announced.clear()


def _key(event: str, result: Dict[str, Any]):
    """An announcement is the event, the fault and its injection time (an action may name its
    target differently at injection and in its result, e.g. an FIS template id)."""
    return event, result.get("fault"), result.get("injected_at")


def announce(event: str, result: Dict[str, Any]) -> None:
    """Called by `run_fault` at injection and at recovery; a listener's failure never stops a fault."""
    with _lock:
        listeners = list(_listeners)
        if listeners:
            _announced.add(_key(event, result))
    for callback in listeners:
        try:
            callback(event, dict(result))
        except Exception:  # notifications must never break the experiment
            logger.exception("gameday notifications: %s listener failed", event)


def announced(event: str, result: Dict[str, Any]) -> bool:
    with _lock:
        return _key(event, result) in _announced


def is_fault_result(output: Any) -> bool:
    """A failover action's result (docs/architecture.md "Fault results"), not a dry run."""
    return (isinstance(output, dict) and bool(output.get("injected_at"))
            and not output.get("dry_run"))


def remember(result: Dict[str, Any]) -> None:
    if is_fault_result(result):
        with _lock:
            _faults.append(result)


def last_fault(target: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """The latest fault result (on `target`, when given), or None."""
    with _lock:
        found = [f for f in _faults if target is None or f.get("target") == target]
    return found[-1] if found else None


def faults() -> List[Dict[str, Any]]:
    with _lock:
        return list(_faults)


def remember_writable(result: Dict[str, Any]) -> None:
    if isinstance(result, dict) and result.get("writable_again_at"):
        with _lock:
            _writable.append(result)


def writable_results() -> List[Dict[str, Any]]:
    with _lock:
        return list(_writable)


def forget() -> None:
    with _lock:
        _faults.clear()
        _writable.clear()
