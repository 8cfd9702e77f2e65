"""The run's fault ledger: one line per fault the moment it is injected, and one when it ends.

In between, a fault's milestones as they are observed (``{"record": "control-plane-done" |
"writable", …the fault's keys, "at"}``), so a live reader (the facilitator's pulse,
gameday/pulse.py) can say where a fault in flight stands before its result exists.

Chaos Toolkit journals an activity only when it returns. A run stopped while a failover action
still waits for recovery (Ctrl-C, SIGTERM, a safeguard) therefore has a journal without that
action, and a run whose rollbacks were aborted has no journal at all, although the fault did
happen. The report reads this ledger (``$GAMEDAY_RUN_DIR/faults.jsonl``) so every injected
fault is listed with what is known: injected at, and whether it recovered.

Writing never raises: a ledger that cannot be written must not fail the fault itself.
"""
import contextlib
import json
import logging
import os
import signal
import threading
from typing import Any, Dict, Iterator, List, Optional

from groundfloor import jsonlines
from chaosext.load.config import RUN_DIR_ENV
from groundfloor.timefmt import iso
from groundfloor import run_files

__all__ = ["LEDGER", "injected", "milestone", "ended", "read", "signals_deferred"]

logger = logging.getLogger("chaostoolkit")

LEDGER = run_files.FAULTS
# Ctrl-C, SIGTERM (chaoslib's InterruptExecution), SIGHUP, and the safeguards' SIGUSR1/SIGUSR2
HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2}


def _append(record: Dict[str, Any]) -> None:
    run_dir = os.environ.get(RUN_DIR_ENV)
    if not run_dir:
        return
    path = os.path.join(run_dir, LEDGER)
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=str, sort_keys=True) + "\n")
    except OSError as exc:
        logger.warning("fault ledger %s not written: %s", path, exc)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold stop signals back for the block, then deliver them: injecting a fault and recording
    it must happen together, or a Ctrl-C in between leaves a fault nobody lists.

    Blocking the signal mask would not do: a signal sent to the process reaches whichever thread
    does not block it, and Python then raises in the main thread anyway. So the main thread's
    handlers are swapped for one that notes the signal, and the noted signals are raised again
    once the previous handlers are back. Elsewhere than the main thread this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: List[int] = []
    previous: Dict[int, Any] = {}
    try:
        for sig in HELD_SIGNALS:  # one at a time: what was swapped is known if a swap raises
            previous[sig] = signal.signal(sig, lambda signum, frame: noted.append(signum))
        yield
    finally:
        _restore(previous)
        for signum in dict.fromkeys(noted):
            signal.raise_signal(signum)


def _restore(handlers: Dict[int, Any]) -> None:
    """Put every handler back, then raise what a handler raised meanwhile.

    `signal.signal` first runs the handlers of signals that are pending, so a signal landing
    while this restores runs a handler already restored and may raise before the rest are back:
    each is put back even so (a SIGTERM held for ever would be a signal lost)."""
    raised = None
    for sig, handler in handlers.items():
        while True:
            try:
                signal.signal(sig, handler)
                break
            except BaseException as error:  # the pending signal was handled: try the swap again
                raised = raised or error
    if raised is not None:
        raise raised


IDENTITY = ("fault", "target", "method", "injected_at", "services", "kind")


def injected(result: Dict[str, Any]) -> None:
    """Record that a fault was just injected (its result so far: fault, target, method, time,
    the services it touches and its kind; an impairment's plan, so a run stopped mid-fault still
    says what was impaired)."""
    extra = {"impairment": result["impairment"]} if result.get("impairment") else {}
    _append({"record": "injected", **{k: result.get(k) for k in IDENTITY}, **extra})


def milestone(result: Dict[str, Any], kind: str, at: float, service: Optional[str] = None) -> None:
    """Record that a fault in flight reached ``kind`` ("control-plane-done", "writable") at ``at``
    (epoch seconds), for one of its services when given; readers that only know injected/ended
    skip these records."""
    record = {"record": kind, "at": iso(at), **{k: result.get(k) for k in IDENTITY}}
    if service:
        record["service"] = service
    _append(record)


def ended(result: Dict[str, Any]) -> None:
    """Record the full result of a fault that recovered (the journal has it too, if written)."""
    _append({"record": "ended", **result})


def read(run_dir: str) -> List[Dict[str, Any]]:
    """The ledger's records in order; an absent or torn file yields what could be parsed."""
    return [r for r in jsonlines.records(os.path.join(run_dir, LEDGER)) if r.get("fault")]
