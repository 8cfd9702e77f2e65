"""Checks that were skipped because their optional setting is not configured.

A skipped check passes (the experiment can still run on what is configured), but it must not
look measured: each skip is logged as a warning and appended to ``RUN_DIR/not-measured.jsonl``,
which the report lists under "not measured".
"""
import json
import logging
import os
import time
from typing import Any, Dict, List, Optional

from chaoslib.types import Configuration

from chaosext.errors import ActivityError
from chaosext.load.config import run_dir_of
from groundfloor import run_files

__all__ = ["skip", "read", "FILE"]

logger = logging.getLogger("chaostoolkit")
FILE = run_files.NOT_MEASURED


def skip(check: str, why: str, configuration: Configuration = None) -> None:
    """Warn that `check` was not measured and remember it for the report (once per check)."""
    logger.warning("%s not measured: %s", check, why)
    try:
        path = os.path.join(run_dir_of(configuration), FILE)
    except ActivityError:
        return  # no run directory (a bare activity call): the warning is all there is
    if any(entry["check"] == check for entry in read(os.path.dirname(path))):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps({"check": check, "why": why, "t": round(time.time(), 3)}) + "\n")


def read(run_dir: Optional[str]) -> List[Dict[str, Any]]:
    """The skipped checks recorded in `run_dir` (empty when none)."""
    path = os.path.join(run_dir or "", FILE)
    if not run_dir or not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]
