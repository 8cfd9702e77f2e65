"""Chaos Toolkit control: stop between faults until the team says go on (step-by-step game day).

Before every method action that injects a fault, except the first, the experiment waits: the
previous fault has recovered and its pauses are over, and the team can look at the charts and
talk before the next one. The load, the safeguards and every measurement keep running (they
live in other threads and processes); only the method waits. It goes on when the file
``$GAMEDAY_RUN_DIR/continue`` appears (``gameday run --pause-between-faults`` creates it on Enter
or SIGUSR1; ``touch`` does too), or by itself after ``timeout`` seconds, so an unattended run
never hangs. Ctrl-C during a pause stops the run as it would stop an activity.

Each pause is appended to ``pauses.jsonl`` when it ends (``before``, ``started_at``,
``ended_at``, ``how``: ``enter``, ``SIGUSR1``, ``file``, ``timeout`` or ``interrupted``) and
the current one is in ``pause.json`` while it lasts; the report marks them::

    "controls": [..., {"name": "pause-between-faults", "provider": {
        "type": "python", "module": "chaosext.pause", "arguments": {"timeout": 600}}}]

Arguments: ``timeout`` (seconds, 600), ``faults`` (names of the activities that count as
faults; by default the actions of the fault modules below).
"""
import json
import logging
import os
import time
from typing import Any, Dict, List, Optional

from chaoslib.types import Configuration, Experiment, Secrets

from groundfloor import jsonlines
from chaosext.load.config import RUN_DIR_ENV
from groundfloor.timefmt import iso

__all__ = ["CONTINUE", "PAUSES", "CURRENT", "configure_control", "before_method_control",
           "before_rollback_control", "before_activity_control", "is_fault", "wait_for_continue",
           "read_pauses"]

logger = logging.getLogger("chaostoolkit")

CONTINUE, PAUSES, CURRENT = "continue", "pauses.jsonl", "pause.json"
DEFAULT_TIMEOUT = 600.0
FAULT_MODULES = ("chaosext.rds.actions", "chaosext.elasticache.actions", "chaosext.fis.actions",
                 "chaosext.lab.actions", "chaosaws.rds.actions", "chaosaws.elasticache.actions")
NOT_FAULTS = ("restore_replicas", "stop_experiment")  # they repair or stop, inject nothing
_state: Dict[str, Any] = {"stage": None, "faults_seen": 0}


def is_fault(activity: Dict[str, Any], names: Optional[List[str]] = None) -> bool:
    """Whether ``activity`` injects a fault: named in ``names``, else an action of a fault module."""
    if names is not None:
        return activity.get("name") in names
    provider = activity.get("provider") or {}
    return (activity.get("type") == "action" and provider.get("module") in FAULT_MODULES
            and provider.get("func") not in NOT_FAULTS)


def configure_control(configuration: Configuration = None, secrets: Secrets = None,
                      experiment: Experiment = None, **arguments: Any) -> None:
    _state.update(stage=None, faults_seen=0)


def before_method_control(context: Any, **arguments: Any) -> None:
    _state["stage"] = "method"


def before_rollback_control(context: Any, **arguments: Any) -> None:
    _state["stage"] = "rollbacks"


def before_activity_control(context: Any, timeout: Any = DEFAULT_TIMEOUT,
                            faults: Optional[List[str]] = None, **arguments: Any) -> None:
    """Wait before the second and every later fault of the method."""
    activity = context if isinstance(context, dict) else {}
    if _state["stage"] != "method" or not is_fault(activity, faults):
        return
    _state["faults_seen"] += 1
    run_dir = os.environ.get(RUN_DIR_ENV)
    if _state["faults_seen"] > 1 and run_dir:
        wait_for_continue(run_dir, str(activity.get("name")), float(timeout))


def wait_for_continue(run_dir: str, before: str, timeout: float,
                      poll: float = 0.1) -> Dict[str, Any]:
    """Block until ``RUN_DIR/continue`` exists or ``timeout`` passes; record the pause."""
    go_on = os.path.join(run_dir, CONTINUE)
    _remove(go_on)  # a leftover from an earlier pause must not skip this one
    started = time.time()
    record = {"before": before, "started_at": iso(started), "timeout_seconds": timeout}
    _write_json(os.path.join(run_dir, CURRENT), {"state": "waiting", **record})
    logger.info("paused before %s: create %s to go on (gameday: press Enter or send SIGUSR1); "
                "going on by itself in %g s", before, go_on, timeout)
    how = "interrupted"
    try:
        while time.time() - started < timeout:
            if os.path.exists(go_on):
                how = _read_how(go_on)
                break
            time.sleep(poll)
        else:
            how = "timeout"
            logger.warning("pause before %s: nobody said go on within %g s; going on", before,
                           timeout)
    finally:  # Ctrl-C during the pause: recorded as interrupted, then raised on
        record.update(ended_at=iso(time.time()), how=how)
        _append(os.path.join(run_dir, PAUSES), record)
        _write_json(os.path.join(run_dir, CURRENT), {"state": "ended", **record})
        _remove(go_on)
    logger.info("pause before %s ended (%s) after %.1f s", before, how, time.time() - started)
    return record


def read_pauses(run_dir: str) -> List[Dict[str, Any]]:
    """The pauses of a run, in order (torn or foreign lines skipped)."""
    return [r for r in jsonlines.records(os.path.join(run_dir, PAUSES)) if r.get("started_at")]


def _read_how(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read().strip()
    except OSError:
        return "file"
    return text[:40] if text else "file"


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _append(path: str, record: Dict[str, Any]) -> None:
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
    except OSError as exc:
        logger.warning("pause: %s not written: %s", path, exc)


def _write_json(path: str, data: Dict[str, Any]) -> None:
    try:
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except OSError as exc:
        logger.warning("pause: %s not written: %s", path, exc)
