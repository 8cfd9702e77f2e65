"""The fault results seen in this Chaos Toolkit run, so later probes can anchor on them.

Chaos Toolkit does not pass one activity's output to the next; the notify control records every
output carrying `injected_at` here, and `failover_events_within` uses the latest one when no
`since` is given. Everything runs in the one `chaos run` process, so module state is enough.
"""
import threading
from typing import Any, Dict, List, Optional

__all__ = ["remember", "last_fault", "faults", "forget", "is_fault_result"]

_lock = threading.Lock()
_faults: List[Dict[str, Any]] = []


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


def forget() -> None:
    with _lock:
        _faults.clear()
