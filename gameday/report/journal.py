"""Read what a report needs out of a Chaos Toolkit journal: hypothesis, faults, rollbacks, RPO.

A fault is any activity whose output has the fault-result shape (docs/architecture.md) or a
failed action of a `chaosext.*.actions` module; everything else is context. Its recovery per
service and its FIS experiment's final state may come from probes after it
(gameday.report.fault_recovery).
"""
import json
import os
import re
from typing import Any, Dict, List, Optional

from groundfloor.timefmt import iso, parse_time
from gameday.report.fault_recovery import fill_from_waits, final_fis, recovery_of, services_of

__all__ = ["config_value", "experiment_info", "hypothesis", "faults", "rollbacks",
           "safeguards", "rpo_check", "activity_name", "when", "short"]

FAULT_KEYS = ("fault", "target", "method", "injected_at", "control_plane_completed_at",
              "data_plane_writable_at", "rto_seconds", "control_plane_seconds")
RPO_FUNCS = ("acknowledged_orders_exist",)
TEMPLATE = re.compile(r"\$\{([^}]*)\}")


def when(value: Any) -> Optional[str]:
    """Any journal time (naive = UTC, aware, epoch) as the pack's ISO-8601 UTC form."""
    if value in (None, ""):
        return None
    try:
        return iso(parse_time(value))
    except (ValueError, TypeError, OverflowError):
        return None


def epoch(value: Any) -> Optional[float]:
    stamp = when(value)
    return parse_time(stamp).timestamp() if stamp else None


def short(value: Any, limit: int = 160) -> str:
    """A one-line rendering of an activity output for tables."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def config_value(journal: Optional[dict], key: str) -> Any:
    """An experiment configuration entry, resolving `{"type": "env"}` entries as chaoslib does."""
    config = ((journal or {}).get("experiment") or {}).get("configuration") or {}
    value = config.get(key)
    if isinstance(value, dict) and value.get("type") == "env":
        env = os.environ.get(str(value.get("key")))
        return env if env not in (None, "") else value.get("default")
    return value


def render(value: Any, journal: Optional[dict], known: Optional[Dict[str, Any]] = None) -> Any:
    """A journal activity argument with its `${key}` templates filled as the run filled them:
    from the run's own configuration (`known`, target.json), else the journal's configuration;
    a key neither knows is shown as `<key unknown>`, never as a template."""
    if not isinstance(value, str) or "${" not in value:
        return value

    def fill(match: "re.Match") -> str:
        key = match.group(1)
        found = (known or {}).get(key)
        if found in (None, ""):
            found = config_value(journal, key)
        return f"<{key} unknown>" if found in (None, "") or isinstance(found, dict) else str(found)
    return TEMPLATE.sub(fill, value)


def experiment_info(journal: Optional[dict], fallback: Optional[dict] = None) -> Dict[str, Any]:
    """Title, description, tags of the journal's experiment (or `fallback`, the run's input)."""
    experiment = (journal or {}).get("experiment") or fallback or {}
    return {"title": experiment.get("title"), "description": experiment.get("description"),
            "tags": list(experiment.get("tags") or [])}


def activity_name(entry: Dict[str, Any]) -> str:
    activity = entry.get("activity") or {}
    provider = activity.get("provider") or {}
    return activity.get("name") or provider.get("func") or "?"


def _error(entry: Dict[str, Any]) -> Optional[str]:
    """The last line of a failed activity's traceback: the message the extension raised."""
    lines = [ln.strip() for ln in entry.get("exception") or [] if ln.strip()]
    if not lines:
        return None
    last = lines[-1].splitlines()[-1]
    return last.split(": ", 1)[1] if last.startswith(("chaoslib.", "chaosext.")) and ": " in last \
        else last


def _probe_row(entry: Dict[str, Any]) -> Dict[str, Any]:
    activity = entry.get("activity") or {}
    return {"name": activity_name(entry), "status": entry.get("status"),
            "tolerance_met": entry.get("tolerance_met"),
            "tolerance": short(activity.get("tolerance"), 120)
            if activity.get("tolerance") is not None else None,
            "output": short(entry.get("output")), "error": _error(entry),
            "start": when(entry.get("start")), "end": when(entry.get("end"))}


def hypothesis(journal: Optional[dict]) -> Dict[str, Any]:
    """Steady-state hypothesis before and after the method, probe by probe (None: not run)."""
    journal = journal or {}
    declared = (journal.get("experiment") or {}).get("steady-state-hypothesis") or {}
    states = journal.get("steady_states") or {}
    out = {"title": declared.get("title")}
    for phase in ("before", "after"):
        state = states.get(phase)
        if not isinstance(state, dict):
            out[phase] = {"met": None, "probes": []}
            continue
        out[phase] = {"met": state.get("steady_state_met"),
                      "probes": [_probe_row(p) for p in state.get("probes") or []]}
    return out


def _is_fault_action(entry: Dict[str, Any]) -> bool:
    output = entry.get("output")
    if isinstance(output, dict) and "fault" in output and "injected_at" in output:
        return True
    provider = (entry.get("activity") or {}).get("provider") or {}
    module = str(provider.get("module") or "")
    return (entry.get("status") == "failed" and module.startswith("chaosext.")
            and module.endswith(".actions"))


def _fault_row(entry: Dict[str, Any], journal: Optional[dict] = None,
               known: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    output = entry.get("output") if isinstance(entry.get("output"), dict) else {}
    provider = (entry.get("activity") or {}).get("provider") or {}
    arguments = {k: render(v, journal, known) for k, v in (provider.get("arguments") or {}).items()}
    row = {key: output.get(key) for key in FAULT_KEYS}
    row["fault"] = row["fault"] or provider.get("func")
    row["target"] = row["target"] or next(
        (v for k, v in arguments.items() if k.endswith(("_identifier", "_group_id"))), None)
    for key in ("injected_at", "control_plane_completed_at", "data_plane_writable_at"):
        row[key] = when(row[key])
    row.update({
        "activity": activity_name(entry),
        "status": entry.get("status"),
        "error": _error(entry),
        "dry_run": bool(output.get("dry_run")),
        "requested_method": output.get("requested_method"),
        "method_reason": output.get("method_reason"),
        "before": output.get("before"), "after": output.get("after"),
        "data_plane": output.get("data_plane"),
        "fis": fis_experiment(output.get("fis")),
        "services": services_of(output, row["fault"]), "kind": output.get("kind") or "failover",
        "events": [_event(e) for e in output.get("events") or [] if isinstance(e, dict)],
        "rto_source": "fault" if row["rto_seconds"] is not None else None,
        "changed": None,
        "start": when(entry.get("start")), "end": when(entry.get("end")),
    })
    row["recovery"] = recovery_of(output, row["services"])
    if isinstance(output.get("impairment"), dict):  # only impairments carry it (no null key)
        row["impairment"] = output["impairment"]
    return row


def fis_experiment(fis: Any) -> Optional[Dict[str, Any]]:
    """The FIS experiment behind a fault (chaosext.fis results): template, state, targets, actions."""
    if not isinstance(fis, dict):
        return None
    return {"experiment_id": fis.get("experiment_id"), "template_id": fis.get("template_id"),
            "state": fis.get("state"), "reason": fis.get("reason"),
            "started_at": when(fis.get("started_at")), "ended_at": when(fis.get("ended_at")),
            "error_code": (fis.get("error") or {}).get("code"),
            "targets": {name: {k: v for k, v in (t or {}).items() if k in (
                "resource_type", "resource_tags", "resource_arns", "parameters", "selection_mode")}
                for name, t in (fis.get("targets") or {}).items()},
            "actions": {name: {"action_id": a.get("action_id"), "state": a.get("state"),
                               "reason": a.get("reason"), "started_at": when(a.get("started_at")),
                               "ended_at": when(a.get("ended_at"))}
                        for name, a in (fis.get("actions") or {}).items() if isinstance(a, dict)}}


def _event(event: Dict[str, Any]) -> Dict[str, Any]:
    return {"date": when(event.get("date")), "source": event.get("source"),
            "event_id": event.get("event_id"), "kind": event.get("kind"),
            "message": event.get("message")}


def faults(journal: Optional[dict], ledger: List[Dict[str, Any]] = (),
           known: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    """The method's faults in order (a later wait_until_writable supplies a missing RTO), then
    those only the fault ledger knows (chaosext.faultlog): a run stopped mid-fault. A failed
    action takes what the ledger knows of it (one row per fault); `known` is the run's
    configuration, to fill the templates of its arguments."""
    run = list((journal or {}).get("run") or [])
    rows = []
    for index, entry in enumerate(run):
        if not _is_fault_action(entry):
            continue
        row = _fault_row(entry, journal, known)
        if row["status"] == "failed":
            _adopt_ledger(row, ledger)
        if row["data_plane_writable_at"] is None and row["injected_at"]:
            fill_from_waits(row, run[index + 1:], _is_fault_action)
        final_fis(row, run[index + 1:], fis_experiment)
        _derive(row)
        rows.append(row)
    return rows + _ledger_rows(ledger, {_key(r) for r in rows})


def _adopt_ledger(row: Dict[str, Any], ledger: List[Dict[str, Any]]) -> None:
    """A failed action whose fault was injected before it failed: the ledger's record of that
    injection (same target, within the action's time) names the fault and when it was injected;
    without one nothing was injected, so nothing was changed."""
    start, end = epoch(row["start"]), epoch(row["end"])
    for record in ledger:
        at = epoch(record.get("injected_at"))
        if (record.get("target") == row["target"] and at is not None and start is not None
                and start - 1 <= at <= (end if end is not None else at) + 1):
            row.update(fault=record.get("fault") or row["fault"], injected_at=when(at),
                       method=row["method"] or record.get("method"))
            row["changed"] = "injected before the action failed: the resource may have failed over"
            return
    if not row["injected_at"]:
        row["changed"] = "not injected: nothing was changed"


def _key(row: Dict[str, Any]) -> tuple:
    """A fault is its name and injection time: an action may name its target differently in the
    ledger (before the call) and in its result (e.g. an FIS template id)."""
    return row.get("fault"), when(row.get("injected_at"))


def _ledger_rows(ledger: List[Dict[str, Any]], journaled: set) -> List[Dict[str, Any]]:
    """Faults the journal lacks: an `ended` record is a full result, an `injected` one alone a
    fault the run stopped before it recovered (listed with its injection time, not recovered)."""
    latest: Dict[tuple, Dict[str, Any]] = {}
    for record in ledger:
        key = _key(record)
        if key not in journaled and (record.get("record") == "ended" or key not in latest):
            latest[key] = record
    rows = []
    for record in latest.values():
        ended = record.get("record") == "ended"
        row = _fault_row({"activity": {"name": record.get("fault")}, "output": record,
                          "status": "succeeded" if ended else "interrupted"})
        if not ended:
            row["error"] = "the run stopped before its recovery was measured"
        _derive(row)
        rows.append(row)
    return rows


def _derive(row: Dict[str, Any]) -> None:
    """Control-vs-data-plane lag: data plane writable minus control plane completed (s).

    Negative means the shop could write again before AWS reported the failover complete.
    """
    done, writable = epoch(row["control_plane_completed_at"]), epoch(row["data_plane_writable_at"])
    row["control_vs_data_plane_lag_seconds"] = (
        round(writable - done, 3) if done is not None and writable is not None else None)


def rollbacks(journal: Optional[dict]) -> List[Dict[str, Any]]:
    rows = []
    for entry in (journal or {}).get("rollbacks") or []:
        output = entry.get("output")
        rows.append({"name": activity_name(entry), "status": entry.get("status"),
                     "method": output.get("method") if isinstance(output, dict) else None,
                     "output": short(output), "error": _error(entry),
                     "start": when(entry.get("start")), "end": when(entry.get("end"))})
    return rows


def safeguards(journal: Optional[dict]) -> Dict[str, Any]:
    """Declared safeguard probes and whether one interrupted the run.

    chaostoolkit-addons does not journal the tripping probe; an extension whose name contains
    "safeguard" (if a control writes one) supplies `tripped_by`/`message`.
    """
    journal = journal or {}
    experiment = journal.get("experiment") or {}
    declared = []
    for control in experiment.get("controls") or []:
        provider = control.get("provider") or {}
        if "safeguard" in str(provider.get("module", "")) or "safeguard" in str(
                control.get("name", "")):
            declared += [p.get("name") for p in (provider.get("arguments") or {}).get(
                "probes", []) if isinstance(p, dict)]
    extension = next((e for e in journal.get("extensions") or []
                      if isinstance(e, dict) and "safeguard" in str(e.get("name", ""))), {})
    tripped = journal.get("status") == "interrupted"
    return {"declared": declared, "tripped": tripped,
            "tripped_by": extension.get("tripped_by") or extension.get("triggered_by"),
            "at": when(extension.get("at")) or (when(journal.get("end")) if tripped else None),
            "message": extension.get("message")}


def rpo_check(journal: Optional[dict]) -> Optional[Dict[str, Any]]:
    """The last acknowledged-orders check of the run (after hypothesis or method), if any."""
    journal = journal or {}
    states = journal.get("steady_states") or {}
    entries = list(journal.get("run") or [])
    for phase in ("before", "after"):
        if isinstance(states.get(phase), dict):
            entries += states[phase].get("probes") or []
    found = None
    for entry in entries:
        func = ((entry.get("activity") or {}).get("provider") or {}).get("func")
        if func in RPO_FUNCS:
            if found is None or (when(entry.get("end")) or "") >= (when(found.get("end")) or ""):
                found = entry
    if found is None:
        return None
    output = found.get("output") if isinstance(found.get("output"), dict) else {}
    missing = output.get("missing")
    missing_ids = list(missing) if isinstance(missing, list) else []
    count = output.get("missing_count")
    if count is None:
        count = len(missing_ids) if isinstance(missing, list) else missing
    return {"probe": activity_name(found), "status": found.get("status"),
            "checked": output.get("checked"), "missing_count": count,
            "missing": missing_ids[:50], "error": _error(found),
            "by_worker": output.get("by_worker") if isinstance(output.get("by_worker"), dict)
            else {}}
