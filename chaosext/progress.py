"""Chaos Toolkit control: where the experiment is, written as it happens (``progress.jsonl``).

Chaos Toolkit writes its journal only when the run ends, so nothing on disk says which phase a
running experiment is in. This control appends one line per step to
``$GAMEDAY_RUN_DIR/progress.jsonl`` — the steady-state hypothesis before and after the method,
each activity of the method, the rollbacks, the end — for the live view (gameday/live/) and
anything else that follows a run from outside. Declare it before the run-directory control::

    "controls": [..., {"name": "progress", "provider": {
        "type": "python", "module": "chaosext.progress"}}]

A line: ``{"event": "activity-started", "stage": "method", "name": "rds-force-failover",
"type": "action", "at": 1700000000.123}``. Events: ``experiment-started``,
``hypothesis-started``/``hypothesis-ended`` (``stage`` ``before``/``after``, ``met``),
``method-started``/``method-ended``, ``activity-started``/``activity-ended`` (``status``),
``rollbacks-started``/``rollbacks-ended``, ``experiment-ended`` (``status``, ``deviated``).
Writing never raises: following a run must not fail it. `phases` reads the file back as the
phases the facilitator's pulse shows (gameday/pulse.py); the live view reads it in full
(gameday/live/phases.py).
"""
import json
import logging
import os
import time
from typing import Any, Dict, List

from chaoslib.types import Configuration, Experiment, Journal, Secrets

from groundfloor import jsonlines
from chaosext import stopsignals
from chaosext.load.config import RUN_DIR_ENV
from groundfloor import run_files

__all__ = ["PROGRESS", "PHASE_OF_EVENT", "event_line", "phases", "configure_control", "before_experiment_control",
           "before_hypothesis_control", "after_hypothesis_control", "before_method_control",
           "after_method_control", "before_activity_control", "after_activity_control",
           "before_rollback_control", "after_rollback_control", "after_experiment_control"]

logger = logging.getLogger("chaostoolkit")

PROGRESS = run_files.PROGRESS
_state: Dict[str, Any] = {"stage": None, "hypotheses": 0, "names": None}


def event_line(event: str, at: float, **fields: Any) -> str:
    """One record of progress.jsonl (also what tests and benches write to stand for a run)."""
    return json.dumps({"event": event, "at": round(at, 3), **fields}, default=str)


def _write(event: str, **fields: Any) -> None:
    run_dir = os.environ.get(RUN_DIR_ENV)
    if not run_dir:
        return
    line = event_line(event, time.time(), **fields)
    try:
        with open(os.path.join(run_dir, PROGRESS), "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    except OSError as exc:
        logger.warning("progress: %s not written: %s", PROGRESS, exc)


def configure_control(configuration: Configuration = None, secrets: Secrets = None,
                      experiment: Experiment = None, **arguments: Any) -> None:
    _state.update(stage=None, hypotheses=0, names=_planned(experiment or {}))


def _planned(experiment: Experiment) -> set:
    """The names of the experiment's own activities: other controls' probes (the safeguards,
    every few seconds) pass through the activity hooks too, and are not steps of the run."""
    hypothesis = (experiment.get("steady-state-hypothesis") or {}).get("probes") or []
    return {a.get("name") for a in [*hypothesis, *(experiment.get("method") or []),
                                    *(experiment.get("rollbacks") or [])] if isinstance(a, dict)}


def _ours(activity: Dict[str, Any]) -> bool:
    return _state["names"] is None or activity.get("name") in _state["names"]


def before_experiment_control(context: Experiment, **arguments: Any) -> None:
    _write("experiment-started", title=(context or {}).get("title"))


def before_hypothesis_control(context: Any, **arguments: Any) -> None:
    """The first hypothesis runs before the method, the second after it."""
    _state["hypotheses"] += 1
    _state["stage"] = "before" if _state["hypotheses"] == 1 else "after"
    _write("hypothesis-started", stage=_state["stage"])


def after_hypothesis_control(context: Any, state: Any = None, **arguments: Any) -> None:
    met = state.get("steady_state_met") if isinstance(state, dict) else None
    _write("hypothesis-ended", stage=_state["stage"], met=met)


def before_method_control(context: Any, **arguments: Any) -> None:
    _state["stage"] = "method"
    _write("method-started")


def after_method_control(context: Any, state: Any = None, **arguments: Any) -> None:
    _write("method-ended")


def before_activity_control(context: Any, **arguments: Any) -> None:
    stopsignals.check()  # a stop Python dropped still ends the method before its next activity
    activity = context if isinstance(context, dict) else {}
    if not _ours(activity):
        return
    _write("activity-started", stage=_state["stage"], name=activity.get("name"),
           type=activity.get("type"))


def after_activity_control(context: Any, state: Any = None, **arguments: Any) -> None:
    activity = context if isinstance(context, dict) else {}
    if not _ours(activity):
        return
    status = state.get("status") if isinstance(state, dict) else None
    _write("activity-ended", stage=_state["stage"], name=activity.get("name"), status=status)


def before_rollback_control(context: Any, **arguments: Any) -> None:
    _state["stage"] = "rollbacks"
    _write("rollbacks-started")


def after_rollback_control(context: Any, state: Any = None, **arguments: Any) -> None:
    _write("rollbacks-ended")


def after_experiment_control(context: Experiment, state: Journal = None,
                             **arguments: Any) -> None:
    journal = state if isinstance(state, dict) else {}
    _write("experiment-ended", status=journal.get("status"), deviated=journal.get("deviated"))


#: progress events that begin a phase of the run, and the phase's name (in chaoslib's order:
#: experiment, steady state before, method, steady state after, rollbacks, end)
PHASE_OF_EVENT = {"experiment-started": "experiment", "method-started": "method",
                  "rollbacks-started": "rollbacks", "experiment-ended": "ended"}


def phases(run_dir: str) -> List[Dict[str, Any]]:
    """The phases begun so far, in order: ``{"phase": "hypothesis-before", "at": epoch}`` (and
    ``status`` for ``ended``); a torn last line is skipped."""
    found: List[Dict[str, Any]] = []
    for record in jsonlines.records(os.path.join(run_dir, PROGRESS)):
        event = record.get("event")
        if event == "hypothesis-started":
            name = f"hypothesis-{record.get('stage')}"
        else:
            name = PHASE_OF_EVENT.get(event)
        if name:
            found.append({"phase": name, "at": record.get("at"),
                          **({"status": record.get("status")} if name == "ended" else {})})
    return found
