"""Chaos Toolkit control: a fresh run directory for every run, and the journal saved inside it.

A run's files (load timeline, order ledger, remembered carts, Locust output, journal) belong
together and to that run only: a shared directory would mix two runs' order ledgers and the RPO
check would look up the wrong orders. Declare this control last: Chaos Toolkit configures every
control before the experiment starts (so the directory is chosen before any probe or the load
needs it) and calls the ``after`` hooks in declaration order (so the journal it saves already
carries the other controls' extensions)::

    "controls": [..., {"name": "run-directory", "provider": {
        "type": "python", "module": "chaosext.rundir",
        "arguments": {"name": "rds-force-failover"}}}]

The directory is ``$GAMEDAY_RUN_DIR`` when set (``gameday run`` sets it; set it yourself to
name one), else configuration ``gameday_run_dir`` when non-empty, else a new
``<reports>/<UTC time>-<name>`` where ``<reports>`` is ``$GAMEDAY_REPORTS_DIR`` or ``./reports``
of the working directory and ``<name>`` is the ``name`` argument (else the experiment's title).
The choice is exported as ``$GAMEDAY_RUN_DIR`` for the rest of the run (probes, load, Locust).
After the experiment the journal is written there as ``journal.json``; Chaos Toolkit still
writes its own copy to ``--journal-path`` (``./journal.json`` unless told otherwise).
"""
import logging
import os
import re
import time
from pathlib import Path
from typing import Any, Optional

from chaoslib.types import Configuration, Experiment, Journal, Secrets

from chaosext.load.config import RUN_DIR_ENV, RUN_DIR_KEY
from chaosext.load.process import write_json
from groundfloor import run_files

__all__ = ["configure_control", "after_experiment_control", "choose_run_dir", "run_id",
           "reports_dir"]

logger = logging.getLogger("chaostoolkit")

REPORTS_ENV = run_files.REPORTS_ENV
JOURNAL = run_files.JOURNAL


def reports_dir() -> Path:
    """Where new run directories go: ``$GAMEDAY_REPORTS_DIR``, else ``./reports``."""
    return Path(os.environ.get(REPORTS_ENV) or "reports").resolve()


def run_id(name: str, now: Optional[float] = None) -> str:
    """``<UTC time>-<name>``: sorts by time, says which experiment ran."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48] or "run"
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)) + "-" + slug


def choose_run_dir(name: str, configuration: Configuration = None) -> Path:
    """The run directory by the rules in the module docstring, created if it is new."""
    named = os.environ.get(RUN_DIR_ENV) or (configuration or {}).get(RUN_DIR_KEY)
    if named:
        path = Path(str(named)).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path
    base, stem = reports_dir(), run_id(name)
    base.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 100):  # two runs started in the same second get their own
        path = base / (stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free run directory name under {base} for {stem}")


def configure_control(configuration: Configuration = None, secrets: Secrets = None,
                      experiment: Experiment = None, name: Optional[str] = None,
                      **arguments: Any) -> None:
    """Choose (and create) this run's directory and export it for everything that follows."""
    title = (experiment or {}).get("title") or "run"
    path = choose_run_dir(name or title, configuration)
    os.environ[RUN_DIR_ENV] = str(path)
    logger.info("run directory: %s", path)


def after_experiment_control(context: Experiment, state: Journal = None,
                             configuration: Configuration = None, secrets: Secrets = None,
                             **arguments: Any) -> None:
    """Keep the journal next to the run's other files."""
    run_dir = os.environ.get(RUN_DIR_ENV)
    if run_dir and isinstance(state, dict):
        write_json(os.path.join(run_dir, JOURNAL), state)
