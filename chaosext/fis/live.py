"""The FIS experiments this process started and that have not been seen ending yet.

Why: an FIS experiment goes on after the process that started it is gone, so the pack keeps
this list to stop them on interruption, at exit and in the rollback, and to wait for them when
an action started one without waiting. It imports nothing else of the pack.
"""
import threading
from typing import Any, Callable, Dict

__all__ = ["register", "forget", "live_experiments"]

_live: Dict[str, Any] = {}  # experiment id -> FIS client
_lock = threading.Lock()
_exit_hook = {"installed": False}


def register(experiment_id: str, client, at_exit: Callable[[], Any]) -> None:
    """Remember a started experiment; `at_exit` is registered with atexit once per process."""
    import atexit
    with _lock:
        _live[experiment_id] = client
        if not _exit_hook["installed"]:
            _exit_hook["installed"] = True
            atexit.register(at_exit)


def forget(experiment_id: str) -> None:
    with _lock:
        _live.pop(experiment_id, None)


def live_experiments() -> Dict[str, Any]:
    with _lock:
        return dict(_live)
