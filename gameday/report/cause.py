"""Why a run was interrupted, as one sentence for the verdict line.

A journal only says `interrupted`; the cause is elsewhere. In order of precedence:

1. `interruption.json`, written by `gameday run` when a signal (SIGINT, SIGTERM, SIGHUP) stopped
   the experiment: which signal, when, and whether a second one aborted the rollbacks;
2. Chaos Toolkit's log (`chaostoolkit.log`): the first CRITICAL line, which is either the
   chaostoolkit-addons safeguard naming the probe that tripped ("Safeguard '…' triggered the end
   of the experiment") or the message of the interruption a control or guardrail raised (for
   instance "load: shop host '…' does not resolve").
"""
import json
import os
import re
from typing import Any, Dict, Optional
from groundfloor import run_files

__all__ = ["INTERRUPTION_FILE", "interruption_cause"]

INTERRUPTION_FILE = run_files.INTERRUPTION
LOG_FILE = "chaostoolkit.log"
LOG_LINE = re.compile(r"^\[(?P<at>[\d-]+ [\d:]+) (?P<level>[A-Z]+)\](?: \[[^\]]*\])? (?P<msg>.*)$")
SAFEGUARD = re.compile(r"Safeguard '(?P<name>.+)' triggered the end of the experiment")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
LOG_SCAN_LIMIT = 5_000_000  # bytes: a log larger than this is read from its start only


def interruption_cause(run_dir: str) -> Optional[Dict[str, Any]]:
    """{"kind": "signal"|"safeguard"|"error", "message": one sentence, ...} or None if unknown."""
    return _from_signals(run_dir) or _from_log(run_dir)


def _from_signals(run_dir: str) -> Optional[Dict[str, Any]]:
    try:
        with open(os.path.join(run_dir, INTERRUPTION_FILE), encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, ValueError):
        return None
    signals = [s for s in record.get("signals") or [] if isinstance(s, dict) and s.get("signal")]
    if not signals:
        return None
    first = signals[0]
    message = f"{first['signal']} sent to gameday at {first.get('at') or 'an unknown time'}"
    if record.get("rollbacks_aborted"):
        message += f"; a second signal ({signals[1]['signal'] if len(signals) > 1 else '?'}) " \
                   "aborted the rollbacks"
    return {"kind": "signal", "signal": first["signal"], "at": first.get("at"),
            "rollbacks_aborted": bool(record.get("rollbacks_aborted")), "message": message}


def _from_log(run_dir: str) -> Optional[Dict[str, Any]]:
    try:
        with open(os.path.join(run_dir, LOG_FILE), encoding="utf-8", errors="replace") as fh:
            text = fh.read(LOG_SCAN_LIMIT)
    except OSError:
        return None
    for raw in text.splitlines():
        match = LOG_LINE.match(ANSI.sub("", raw))
        if not match or match["level"] != "CRITICAL":
            continue
        message = match["msg"].strip()
        guard = SAFEGUARD.search(message)
        if guard:
            return {"kind": "safeguard", "by": guard["name"], "at": match["at"],
                    "message": f"safeguard {guard['name']} tripped"}
        return {"kind": "error", "at": match["at"], "message": message}
    return None
