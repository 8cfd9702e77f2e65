"""Each fault's recovery per service, and the final state of its FIS experiment, from a journal.

A fault declares the services it touches (chaosext.fault_model). Its result carries one
recovery figure per service (`recovery`); a fault started without waiting (an FIS experiment
with `wait: false`) is measured by the data-plane wait probes that follow it, one per endpoint
kind, and its experiment's final state by the `wait_for_experiments` probe that follows it.
Every service's RTO is judged against that service's own threshold, never against a threshold
found from the fault's name.
"""
from typing import Any, Dict, List, Optional

from chaosext.fault_model import CATALOGUE, SERVICES, declared, service_of_data_plane
from chaosext.thresholds import threshold_from
from groundfloor.timefmt import iso, parse_time

__all__ = ["services_of", "recovery_of", "fill_from_waits", "final_fis", "judge"]


def _when(value: Any) -> Optional[str]:
    try:
        return iso(parse_time(value)) if value not in (None, "") else None
    except (ValueError, TypeError, OverflowError):
        return None


def _epoch(value: Any) -> Optional[float]:
    stamp = _when(value)
    return parse_time(stamp).timestamp() if stamp else None


def services_of(output: Dict[str, Any], fault: Optional[str]) -> List[str]:
    """The services a fault result declares; for a result without them, the service of the
    endpoint it measured, else the catalogue's declaration of that fault."""
    found, _ = declared(output.get("services") or ())
    if found:
        return list(found)
    measured = service_of_data_plane((output.get("data_plane") or {}).get("kind"))
    if measured:
        return [measured]
    known = CATALOGUE.get(str(fault))
    return list(known.services) if known else []


def recovery_of(output: Dict[str, Any], services: List[str]) -> Dict[str, Dict[str, Any]]:
    """service -> {writable_at, rto_seconds, source, data_plane} from a fault result."""
    given = output.get("recovery") if isinstance(output.get("recovery"), dict) else {}
    rows = {}
    for service, entry in given.items():
        if isinstance(entry, dict) and service in SERVICES:
            rows[service] = {"service": service, "writable_at": _when(entry.get("writable_at")),
                             "rto_seconds": entry.get("rto_seconds"), "source": "fault",
                             "time_to_recover_seconds": entry.get("time_to_recover_seconds"),
                             "data_plane": entry.get("data_plane")}
    if not rows and len(services) == 1 and output.get("rto_seconds") is not None:
        rows[services[0]] = {"service": services[0], "source": "fault",
                             "writable_at": _when(output.get("data_plane_writable_at")),
                             "rto_seconds": output.get("rto_seconds"),
                             "time_to_recover_seconds": None,
                             "data_plane": output.get("data_plane")}
    return rows


def fill_from_waits(row: Dict[str, Any], later: List[Dict[str, Any]], is_fault) -> None:
    """A fault injected without waiting is measured by the data-plane wait probes after it (up
    to the next fault): the first one of each declared service's endpoint kind gives that
    service's RTO (a fault that declares no service takes the first one of any kind)."""
    injected = _epoch(row["injected_at"])
    for entry in later:
        if is_fault(entry):
            break
        output = entry.get("output")
        if not (isinstance(output, dict) and output.get("writable_again_at")):
            continue
        service = service_of_data_plane(output.get("kind")) or str(output.get("kind"))
        wanted = service in row["services"] if row["services"] else not row["recovery"]
        if not wanted or service in row["recovery"]:
            continue
        writable = _when(output["writable_again_at"])
        row["recovery"][service] = {
            "service": service, "writable_at": writable,
            "rto_seconds": round(_epoch(writable) - injected, 3),
            "source": _activity_name(entry), "time_to_recover_seconds": None,
            "data_plane": output}
    _overall(row)


def _overall(row: Dict[str, Any]) -> None:
    """The fault is over for clients once the last of its services writes again."""
    measured = [r for r in row["recovery"].values() if r.get("rto_seconds") is not None]
    if not measured or row["data_plane_writable_at"] is not None:
        return
    last = max(measured, key=lambda r: r["rto_seconds"])
    row["data_plane_writable_at"], row["rto_seconds"] = last["writable_at"], last["rto_seconds"]
    row["rto_source"] = last["source"]


def _activity_name(entry: Dict[str, Any]) -> str:
    activity = entry.get("activity") or {}
    return activity.get("name") or (activity.get("provider") or {}).get("func") or "?"


def final_fis(row: Dict[str, Any], later: List[Dict[str, Any]], summarize) -> None:
    """Replace a fault's FIS experiment (as it stood when the action returned) by the last
    state a later probe read (`wait_for_experiments`, `experiment_state`); a fault started
    without waiting has its control plane done when that experiment ended (as `run_fault`
    says for one it waited for)."""
    fis = row.get("fis")
    if not fis or not fis.get("experiment_id"):
        return
    for entry in later:
        output = entry.get("output") if isinstance(entry.get("output"), dict) else {}
        seen = (output.get("experiments") or {}).get(fis["experiment_id"]) \
            if isinstance(output.get("experiments"), dict) else None
        if seen is None and output.get("experiment_id") == fis["experiment_id"]:
            seen = output
        if isinstance(seen, dict) and seen.get("state"):
            row["fis"] = summarize({**seen, "template_id": fis.get("template_id")})
    ended, injected = _epoch(row["fis"].get("ended_at")), _epoch(row["injected_at"])
    if row["control_plane_completed_at"] is None and ended is not None and injected is not None:
        row["control_plane_completed_at"] = _when(row["fis"]["ended_at"])
        row["control_plane_seconds"] = round(ended - injected, 3)


def judge(fault: Dict[str, Any], threshold: Any) -> None:
    """Judge each service's RTO against its own threshold; the fault passes when all do.

    A fault of one service keeps that service's threshold on the fault itself; a fault of
    several has one per service in `recovery` and none on the fault.
    """
    services = list(fault["recovery"]) or fault["services"] or [None]
    verdicts = []
    for service in services:
        limit = threshold_from(threshold, fault["fault"], fault["target"], service)
        entry = fault["recovery"].get(service)
        if entry is not None:
            rto = entry.get("rto_seconds")
            entry["rto_threshold_seconds"] = limit
            entry["rto_within_threshold"] = None if limit is None or rto is None else rto <= limit
            verdicts.append(entry["rto_within_threshold"])
        elif len(services) == 1:
            verdicts.append(None if limit is None or fault["rto_seconds"] is None
                            else fault["rto_seconds"] <= limit)
    single = len(fault["services"]) <= 1
    fault["rto_threshold_seconds"] = threshold_from(
        threshold, fault["fault"], fault["target"], services[0]) if single else None
    judged = [v for v in verdicts if v is not None]
    fault["rto_within_threshold"] = all(judged) if judged else None
