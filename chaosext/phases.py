"""Chaos Toolkit control: the run's phases, one line each in ``RUN_DIR/phases.jsonl``.

Chaos Toolkit tells controls when each part of an experiment begins: the steady-state hypothesis
before the method, the method, the hypothesis again after it, the rollbacks, the end. Nothing
else in a run directory says which of these is running now, and the facilitator's pulse
(``gameday run``, gameday/pulse.py) needs it, so this control writes one record per phase::

    {"phase": "hypothesis-before", "at": "2026-12-01T01:02:03.456Z"}

Phases, in the order chaoslib plays them (chaoslib/run.py: gate hypothesis, method, deviation
hypothesis, rollbacks): ``experiment``, ``hypothesis-before``, ``method``,
``hypothesis-after``, ``rollbacks``, then ``ended`` with the journal's ``status``. `gameday run`
adds this control to the experiment it runs (first, so a phase is recorded before the other
controls' hooks for it, e.g. the load's warm-up); declared in an experiment by hand::

    "controls": [{"name": "gameday-phases", "provider": {"type": "python",
                                                        "module": "chaosext.phases"}}, ...]

Writing never raises: a phase that cannot be recorded must not fail the experiment.
"""
import json
import logging
import os
import time
from typing import Any, Dict, List

from chaoslib.types import Configuration, Experiment, Journal, Secrets

from chaosext.load.config import RUN_DIR_ENV
from chaosext.timefmt import iso

__all__ = ["configure_control", "before_experiment_control", "before_hypothesis_control",
           "before_method_control", "before_rollback_control", "after_experiment_control",
           "PHASES_FILE", "read"]

logger = logging.getLogger("chaostoolkit")

PHASES_FILE = "phases.jsonl"
_state: Dict[str, bool] = {"method_started": False}


def _record(phase: str, **extra: Any) -> None:
    run_dir = os.environ.get(RUN_DIR_ENV)
    if not run_dir:
        return
    path = os.path.join(run_dir, PHASES_FILE)
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"phase": phase, "at": iso(time.time()), **extra}) + "\n")
    except OSError as exc:
        logger.warning("run phases %s not written: %s", path, exc)


def configure_control(configuration: Configuration = None, secrets: Secrets = None,
                      experiment: Experiment = None, **arguments: Any) -> None:
    """A new experiment: its hypothesis comes before the method again."""
    _state["method_started"] = False


def before_experiment_control(context: Experiment, configuration: Configuration = None,
                              secrets: Secrets = None, **arguments: Any) -> None:
    _record("experiment")


def before_hypothesis_control(context: Any, configuration: Configuration = None,
                              secrets: Secrets = None, **arguments: Any) -> None:
    """The same hypothesis runs twice; which one this is depends on whether the method ran."""
    _record("hypothesis-after" if _state["method_started"] else "hypothesis-before")


def before_method_control(context: Any, configuration: Configuration = None,
                          secrets: Secrets = None, **arguments: Any) -> None:
    _state["method_started"] = True
    _record("method")


def before_rollback_control(context: Any, configuration: Configuration = None,
                            secrets: Secrets = None, **arguments: Any) -> None:
    _record("rollbacks")


def after_experiment_control(context: Experiment, state: Journal = None,
                             configuration: Configuration = None, secrets: Secrets = None,
                             **arguments: Any) -> None:
    status = state.get("status") if isinstance(state, dict) else None
    _record("ended", status=status)


def read(run_dir: str) -> List[Dict[str, Any]]:
    """The phase records of a run directory in order (a torn last line is skipped)."""
    records = []
    try:
        with open(os.path.join(run_dir, PHASES_FILE), encoding="utf-8") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and record.get("phase"):
                    records.append(record)
    except OSError:
        return []
    return records
