"""The run's fault ledger: one line per fault the moment it is injected, and one when it ends.

Chaos Toolkit journals an activity only when it returns. A run stopped while a failover action
still waits for recovery (Ctrl-C, SIGTERM, a safeguard) therefore has a journal without that
action, and a run whose rollbacks were aborted has no journal at all, although the fault did
happen. The report reads this ledger (``$GAMEDAY_RUN_DIR/faults.jsonl``) so every injected
fault is listed with what is known: injected at, and whether it recovered.

Writing never raises: a ledger that cannot be written must not fail the fault itself.
"""
import json
import logging
import os
from typing import Any, Dict, List, Optional

from chaosext.load.config import RUN_DIR_ENV

__all__ = ["LEDGER", "injected", "ended", "read"]

logger = logging.getLogger("chaostoolkit")

LEDGER = "faults.jsonl"


def _append(record: Dict[str, Any]) -> None:
    run_dir = os.environ.get(RUN_DIR_ENV)
    if not run_dir:
        return
    try:
        with open(os.path.join(run_dir, LEDGER), "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=str, sort_keys=True) + "\n")
    except OSError as exc:
        logger.warning("fault ledger %s not written: %s", os.path.join(run_dir, LEDGER), exc)


def injected(result: Dict[str, Any]) -> None:
    """Record that a fault was just injected (its result so far: fault, target, method, time)."""
    _append({"record": "injected", **{k: result.get(k) for k in ("fault", "target", "method",
                                                                  "injected_at")}})


def ended(result: Dict[str, Any]) -> None:
    """Record the full result of a fault that recovered (the journal has it too, if written)."""
    _append({"record": "ended", **result})


def read(run_dir: str) -> List[Dict[str, Any]]:
    """The ledger's records in order; an absent or torn file yields what could be parsed."""
    records = []
    try:
        with open(os.path.join(run_dir, LEDGER), encoding="utf-8") as fh:
            for line in fh:
                record = _parse(line)
                if record is not None:
                    records.append(record)
    except OSError:
        return []
    return records


def _parse(line: str) -> Optional[Dict[str, Any]]:
    try:
        record = json.loads(line)
    except ValueError:  # the last line of a run killed mid-write
        return None
    return record if isinstance(record, dict) and record.get("fault") else None
