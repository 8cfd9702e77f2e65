"""The phases of a run, derived from its run directory alone (for the live view and its tests).

A game day goes: steady state before, each fault (injected → control plane done → data plane
writable), pauses between faults in step-by-step mode, steady state after, rollbacks, end. No
single file says all of that while the run is going, so this module puts together what each
file says, as it is written:

* ``experiment.json`` (written by ``gameday run`` first): the plan, so every phase is listed as
  pending from the start;
* ``progress.jsonl`` (chaosext.progress): which hypothesis, activity or rollback runs now;
* ``faults.jsonl`` (chaosext.faultlog): a fault the moment it is injected, and its measured
  result when it recovered;
* the lab's ``events.jsonl`` (woolab.events, lab runs only): its ground truth — the control
  plane's "failover completed" and the endpoint's "writable" marker — seconds before the fault
  action returns, so the live view shows them as they happen;
* ``pauses.jsonl`` / ``pause.json`` (chaosext.pause) and ``journal.json`` (the end).

:func:`phases` is a pure function of those contents and a clock, so it is tested on files.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from chaosext import faultlog
from groundfloor import jsonlines
from groundfloor.aws_events import classify
from chaosext.pause import CURRENT, is_fault, read_pauses
from chaosext.progress import PROGRESS
from groundfloor.timefmt import iso, parse_time

__all__ = ["RunState", "read_state", "phases", "read_lines"]

SKEW = 1.0  # seconds a lab event may precede the pack's own injection stamp


@dataclass
class RunState:
    """The run directory's files, parsed (each one may still be missing)."""

    experiment: Dict[str, Any] = field(default_factory=dict)
    progress: List[Dict[str, Any]] = field(default_factory=list)
    ledger: List[Dict[str, Any]] = field(default_factory=list)
    pauses: List[Dict[str, Any]] = field(default_factory=list)
    pause_now: Optional[Dict[str, Any]] = None
    journal: Optional[Dict[str, Any]] = None
    lab_events: List[Dict[str, Any]] = field(default_factory=list)


def read_lines(path: str) -> List[Dict[str, Any]]:
    """JSON lines of a file being appended to: a torn last line is skipped."""
    return jsonlines.records(path)


def _json(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_state(run_dir: str, lab_events: Optional[List[Dict[str, Any]]] = None) -> RunState:
    """Everything :func:`phases` needs from ``run_dir`` (and the lab's events, if any)."""
    return RunState(experiment=_json(os.path.join(run_dir, "experiment.json")) or {},
                    progress=read_lines(os.path.join(run_dir, PROGRESS)),
                    ledger=faultlog.read(run_dir), pauses=read_pauses(run_dir),
                    pause_now=_json(os.path.join(run_dir, CURRENT)),
                    journal=_json(os.path.join(run_dir, "journal.json")),
                    lab_events=list(lab_events or []))


def _epoch(value: Any) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return parse_time(value).timestamp()
    except (TypeError, ValueError):
        return None


def _span(progress: List[Dict], start: str, end: str, stage: Optional[str] = None) -> Dict:
    """Status and times of a phase bracketed by two progress events."""
    began = next((e for e in progress if e["event"] == start
                  and (stage is None or e.get("stage") == stage)), None)
    ended = next((e for e in progress if e["event"] == end
                  and (stage is None or e.get("stage") == stage)), None)
    status = "pending" if began is None else ("running" if ended is None else "done")
    if ended is not None and ended.get("met") is False:
        status = "failed"
    return {"status": status, "started_at": iso(began and began["at"]),
            "ended_at": iso(ended and ended["at"])}


def _hypothesis(state: RunState, stage: str) -> Dict[str, Any]:
    title = "Steady state before" if stage == "before" else "Steady state after"
    return {"kind": "hypothesis", "key": f"hypothesis-{stage}", "title": title,
            **_span(state.progress, "hypothesis-started", "hypothesis-ended", stage)}


def _first(events: List[Dict], target: str, since: float, test) -> Optional[float]:
    times = [float(e["time"]) for e in events if e.get("source_id") == target
             and float(e.get("time") or 0) >= since - SKEW and test(e)]
    return min(times) if times else None


def _lab_completed(event: Dict[str, Any]) -> bool:
    kind = classify(event.get("message") or "")
    return event.get("source_type") != "lab" and kind is not None \
        and kind.kind == "failover-completed"


def _lab_writable(event: Dict[str, Any]) -> bool:
    return event.get("source_type") == "lab" and "writable" in (event.get("categories") or [])


def _fault(name: str, injected: Optional[Dict], ended: Optional[Dict], state: RunState,
           now: float) -> Dict[str, Any]:
    """One fault's phase: its milestones from the ledger, else (live) from the lab's events."""
    phase: Dict[str, Any] = {"kind": "fault", "key": f"fault-{name}", "title": name,
                             "status": "pending", "target": None, "injected_at": None,
                             "control_plane_done_at": None, "writable_at": None,
                             "rto_seconds": None, "control_plane_seconds": None,
                             "source": None}
    if injected is None:
        return phase
    t0 = _epoch(injected.get("injected_at")) or now
    target = injected.get("target")
    phase.update(title=f"{injected.get('fault')} on {target}", target=target,
                 method=injected.get("method"), injected_at=iso(t0), status="injected")
    if ended is not None:
        cp, wr = _epoch(ended.get("control_plane_completed_at")), \
            _epoch(ended.get("data_plane_writable_at"))
        source = "measured"
    else:
        cp = _first(state.lab_events, target, t0, _lab_completed)
        wr = _first(state.lab_events, target, t0, _lab_writable)
        source = "lab events" if cp or wr else None
    if cp is not None:
        phase.update(control_plane_done_at=iso(cp), control_plane_seconds=round(cp - t0, 3),
                     status="control plane done")
    if wr is not None:
        phase.update(writable_at=iso(wr), rto_seconds=round(wr - t0, 3),
                     status="writable" if ended is None else "recovered")
    elif ended is not None:
        phase["status"] = "recovered"
    phase["source"] = source
    if wr is None and ended is None:  # the live counters: seconds since injection so far
        phase["elapsed_seconds"] = round(max(0.0, now - t0), 1)
        if cp is None:
            phase["control_plane_elapsed_seconds"] = phase["elapsed_seconds"]
    return phase


def _ledger_pairs(ledger: List[Dict]) -> List[tuple]:
    """(injected, ended-or-None) per fault, in injection order."""
    pairs: List[list] = []
    for record in ledger:
        if record.get("record") == "injected":
            pairs.append([record, None])
        elif record.get("record") == "ended":
            match = next((p for p in pairs if p[1] is None
                          and p[0].get("fault") == record.get("fault")
                          and p[0].get("injected_at") == record.get("injected_at")), None)
            if match is None:
                pairs.append([record, record])
            else:
                match[1] = record
    return [tuple(p) for p in pairs]


def _pause(name: str, state: RunState, planned: bool) -> Optional[Dict[str, Any]]:
    done = next((p for p in state.pauses if p.get("before") == name), None)
    now = state.pause_now if (state.pause_now or {}).get("before") == name else None
    record = done or now
    if record is None and not planned:
        return None
    status = "pending" if record is None else (
        "waiting" if done is None and now.get("state") == "waiting" else "done")
    record = record or {}
    return {"kind": "pause", "key": f"pause-{name}", "title": f"Paused before {name}",
            "status": status, "started_at": record.get("started_at"),
            "ended_at": record.get("ended_at"), "how": record.get("how"),
            "timeout_seconds": record.get("timeout_seconds")}


def _plan(experiment: Dict[str, Any]) -> tuple:
    """(fault activity names in method order, whether the run pauses between faults)."""
    pause = next((c for c in experiment.get("controls") or []
                  if (c.get("provider") or {}).get("module") == "chaosext.pause"), None)
    names = ((pause or {}).get("provider") or {}).get("arguments", {}).get("faults")
    faults = [a.get("name") for a in experiment.get("method") or []
              if isinstance(a, dict) and is_fault(a, names)]
    return faults, pause is not None


def _started(progress: List[Dict], name: str) -> Optional[Dict]:
    return next((e for e in progress if e["event"] == "activity-started"
                 and e.get("stage") == "method" and e.get("name") == name), None)


def _end(state: RunState) -> Optional[Dict[str, Any]]:
    """How the run ended (journal, else the progress line), or None while it runs."""
    if state.journal is not None:
        return {"status": state.journal.get("status"), "deviated": state.journal.get("deviated"),
                "at": state.journal.get("end")}
    ended = next((e for e in state.progress if e["event"] == "experiment-ended"), None)
    return None if ended is None else {"status": ended.get("status"),
                                       "deviated": ended.get("deviated"), "at": iso(ended["at"])}


def phases(state: RunState, now: float) -> Dict[str, Any]:
    """The run's phases in order, each with a status and its times; live counters use ``now``."""
    faults, pausing = _plan(state.experiment)
    pairs = _ledger_pairs(state.ledger)
    out = [_hypothesis(state, "before")] if state.experiment.get("steady-state-hypothesis") \
        or any(e["event"] == "hypothesis-started" for e in state.progress) else []
    for i, name in enumerate(faults):
        pause = _pause(name, state, pausing and i > 0)
        if pause:
            out.append(pause)
        injected, ended = pairs[i] if i < len(pairs) else (None, None)
        phase = _fault(name, injected, ended, state, now)
        if phase["status"] == "pending" and _started(state.progress, name):
            phase["status"] = "starting"
        out.append(phase)
    for injected, ended in pairs[len(faults):]:  # faults the plan did not name (a custom action)
        out.append(_fault(str(injected.get("fault")), injected, ended, state, now))
    if out and out[0]["kind"] == "hypothesis":
        out.append(_hypothesis(state, "after"))
    if state.experiment.get("rollbacks") or any(e["event"] == "rollbacks-started"
                                                for e in state.progress):
        out.append({"kind": "rollbacks", "key": "rollbacks", "title": "Rollbacks",
                    "activities": [r.get("name") for r in state.experiment.get("rollbacks") or []],
                    **_span(state.progress, "rollbacks-started", "rollbacks-ended")})
    end = _end(state)
    if end is not None:
        for phase in out:
            phase["status"] = {"pending": "skipped", "starting": "stopped", "running": "stopped",
                               "waiting": "stopped", "injected": "stopped"}.get(phase["status"],
                                                                               phase["status"])
    running = next((e for e in reversed(state.progress) if e["event"] == "activity-started"), None)
    return {"now": iso(now), "title": state.experiment.get("title"),
            "status": "running" if end is None else (end["status"] or "ended"),
            "end": end, "current": running and running.get("name") if end is None else None,
            "phases": out}
