"""`summarize(run_dir)`: the figures of one run as a dict with stable keys (summary.json).

Everything else of the report (HTML, Markdown, JUnit, comparisons) is rendered from this dict,
so the figures are computed in exactly one place. The dict is already redacted.
"""
from typing import Any, Dict, List, Optional

from gameday.report import journal as jr
from gameday.report.fault_recovery import judge as judge_rto
from gameday.report.impact import fault_impacts
from gameday.report.impairment_checks import attach_impairments
from gameday.report.notes import note_events, placed_notes
from gameday.report.paths import strip_paths
from gameday.report.redact import known_secret_values, redact
from gameday.report.replica_lag import summarize_lag
from gameday.report.sources import RunFiles, read_run
from gameday.report.windows import interval_figures, load_figures
from chaosext.load.safeguard import safeguard_reasons
from chaosext import unmeasured
from chaosext.fault_model import SERVICES
from chaosext.pause import read_pauses
from groundfloor.timefmt import iso

__all__ = ["SCHEMA", "summarize", "summarize_files", "VERDICTS"]

SCHEMA = "failover-gameday/report-summary/2"
VERDICTS = ("passed", "deviated", "failed", "interrupted")
LAB_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def summarize(run_dir: str, rto_threshold: Any = None) -> Dict[str, Any]:
    """The run's figures (see docs/reports.md for every key), secrets redacted.

    `rto_threshold` (seconds, or a mapping by fault name / target / service prefix) overrides
    the experiment's configuration `rto_threshold_seconds`.
    """
    return summarize_files(read_run(run_dir), rto_threshold)


def summarize_files(files: RunFiles, rto_threshold: Any = None) -> Dict[str, Any]:
    # mask before extracting: outputs are flattened to text for tables, where keys are lost
    secrets = known_secret_values(files.journal)
    journal = redact(files.journal, secrets) if files.journal else None
    files = RunFiles(files.run_dir, journal, files.cells, files.orders,
                     redact(files.load_summary, secrets) if files.load_summary else None,
                     files.target, ledger=redact(files.ledger, secrets), cause=files.cause,
                     experiment=redact(files.experiment, secrets) if files.experiment else None)
    faults = jr.faults(journal, files.ledger, (files.target or {}).get("configuration"))
    threshold = rto_threshold if rto_threshold is not None else jr.config_value(
        journal, "rto_threshold_seconds")
    intervals = []
    for fault in faults:
        judge_rto(fault, threshold)
        start, end = _interval(fault, files)
        if start is not None:
            intervals.append((start, end))
            fault["load"] = interval_figures(files.cells, start, end)
        else:
            fault["load"] = None
    hypothesis = jr.hypothesis(journal)
    rpo = _rpo(files)
    _shopper_impact(faults, files, rpo)
    safeguards = _safeguards(journal, files.cause)
    verdict, reasons = _verdict(journal, hypothesis, faults, rpo, files.cause)
    if verdict == "interrupted":
        reasons += [f"safeguard: {r}" for r in safeguard_reasons(files.run_dir)]
    verdict, reasons = _load_generation(files.load_summary, verdict, reasons)
    summary = {
        "schema": SCHEMA,
        "run_id": files.run_id,
        "experiment": jr.experiment_info(journal, files.experiment),
        "target": _target(files, faults),
        "start": jr.when((journal or {}).get("start")) or _timeline_edge(files, min),
        "end": jr.when((journal or {}).get("end")) or _timeline_edge(files, max),
        "duration_seconds": _round((journal or {}).get("duration")),
        "status": (journal or {}).get("status") or ("interrupted" if files.cause else None),
        "interruption": files.cause,
        "deviated": bool((journal or {}).get("deviated")),
        "verdict": verdict,
        "verdict_reasons": reasons,
        "hypothesis": hypothesis,
        "faults": faults,
        "load": {**load_figures(files.cells, intervals), **_load_meta(files)},
        "rpo": rpo,
        "replica_lag": summarize_lag(files.run_dir),
        "safeguards": safeguards,
        "rollbacks": jr.rollbacks(journal),
        "pauses": _pauses(files.run_dir),
        "notes": [],
        "events": [],
    }
    summary["notes"] = placed_notes(files.run_dir, summary["start"], faults)
    summary["events"] = sorted(_events(journal, faults, safeguards, files.load_summary)
                               + _pause_events(summary["pauses"]) + note_events(summary["notes"]),
                               key=lambda e: e["at"])
    return strip_paths(redact(summary, secrets), files.run_dir)


def _shopper_impact(faults: List[Dict[str, Any]], files: RunFiles, rpo: Dict[str, Any]) -> None:
    """Each fault's `impact` on shoppers; impairments also get their per-step figures."""
    users = ((files.load_summary or {}).get("settings") or {}).get("users")
    for fault, impact in zip(faults, fault_impacts(files.cells, [jr.epoch(f["injected_at"])
                                                                for f in faults], users)):
        fault["impact"] = impact
    attach_impairments(faults, files.cells, users, rpo, jr.config_value(
        files.journal or {"experiment": files.experiment}, "impairment_thresholds"))


def _pauses(run_dir: str) -> List[Dict[str, Any]]:
    """The pauses between faults of a step-by-step run (chaosext.pause), with their length."""
    out = []
    for p in read_pauses(run_dir):
        start, end = jr.epoch(p.get("started_at")), jr.epoch(p.get("ended_at"))
        out.append({"before": p.get("before"), "started_at": jr.when(p.get("started_at")),
                    "ended_at": jr.when(p.get("ended_at")), "how": p.get("how"),
                    "seconds": _round(end - start, 1) if start and end else None})
    return out


def _pause_events(pauses: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    events = []
    for p in pauses:
        if p["started_at"]:
            events.append({"at": p["started_at"], "source": "pause", "kind": "pause-start",
                           "message": f"paused before {p['before']}"})
        if p["ended_at"]:
            events.append({"at": p["ended_at"], "source": "pause", "kind": "pause-end",
                           "message": f"went on with {p['before']} ({p['how']}) after "
                                      f"{p['seconds']} s"})
    return events


def _round(value: Any, digits: int = 3) -> Optional[float]:
    return round(float(value), digits) if isinstance(value, (int, float)) else None


def _timeline_edge(files: RunFiles, pick) -> Optional[str]:
    seconds = files.seconds
    return iso(pick(seconds)) if seconds else None


def _interval(fault: Dict[str, Any], files: RunFiles):
    """The fault window: injection to recovery; a fault that never recovered lasts to the end of
    the measured load."""
    start = jr.epoch(fault["injected_at"])
    if start is None:
        return None, None
    unrecovered_end = max(files.seconds) + 1 if fault["status"] == "interrupted" and files.seconds \
        else None
    end = (jr.epoch(fault["data_plane_writable_at"])
           or jr.epoch(fault["control_plane_completed_at"]) or jr.epoch(fault["end"])
           or unrecovered_end or start)
    return start, max(start, end)


def _safeguards(journal: Optional[dict], cause: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Declared safeguards; a known cause decides whether one tripped (a signal is not one)."""
    guards = jr.safeguards(journal)
    if cause is not None:
        guards["tripped"] = cause["kind"] == "safeguard"
        if guards["tripped"]:
            guards["tripped_by"] = guards["tripped_by"] or cause.get("by")
        else:
            guards["at"] = None
    return guards


def _rpo(files: RunFiles) -> Dict[str, Any]:
    summary = files.load_summary or {}
    check = jr.rpo_check(files.journal)
    acknowledged = summary.get("orders_acknowledged")
    if acknowledged is None and (files.orders or files.cells):
        acknowledged = len({o["order_id"] for o in files.orders})
    carts = summary.get("carts_lost")
    if carts is None and files.cells:
        carts = sum(c["carts_lost"] for c in files.cells.values())
    by_worker: Dict[str, Dict[str, Any]] = {}
    for order in files.orders:
        if order.get("worker"):
            row = by_worker.setdefault(str(order["worker"]), {"acknowledged": 0, "lost": None})
            row["acknowledged"] += 1
    for name, figures in ((check or {}).get("by_worker") or {}).items():
        by_worker.setdefault(name, {"acknowledged": 0})["lost"] = figures.get("missing_count")
        by_worker[name]["checked"] = figures.get("checked")
    return {"orders_acknowledged": acknowledged,
            "orders_by_worker": by_worker,
            "orders_checked": check["checked"] if check else None,
            "orders_lost": check["missing_count"] if check else None,
            "orders_missing": check["missing"] if check else [],
            "check": check, "carts_lost": carts}


def _verdict(journal: Optional[dict], hypothesis: Dict, faults: List[Dict], rpo: Dict,
             cause: Optional[Dict[str, Any]] = None):
    """passed / deviated / failed / interrupted, with the sentences that explain it."""
    if journal is None:
        return "interrupted", ([f"the run was interrupted: {cause['message']}"] if cause else []) + [
            "no journal.json: the run did not finish writing its journal"]
    status = journal.get("status")
    reasons = []
    if status in ("interrupted", "aborted"):
        reasons.append(f"the run was {status}: {cause['message']}" if cause else
                       f"the run was {status}" + (" (the cause is not in the run directory)"
                                                  if status == "interrupted" else ""))
        return "interrupted", reasons
    for phase in ("before", "after"):
        for probe in hypothesis[phase]["probes"]:
            if probe["tolerance_met"] is False or probe["status"] == "failed":
                reasons.append(f"hypothesis {phase} the method: probe {probe['name']} "
                               + ("failed" if probe["status"] == "failed"
                                  else f"out of tolerance (got {probe['output']})"))
    for fault in faults:
        label = f"{fault['fault']} on {fault['target']}"
        if fault["status"] == "failed":
            reasons.append(f"{label} failed: {fault['error']}")
        elif fault["rto_within_threshold"] is False:
            reasons += _rto_reasons(label, fault)
        reasons += [f"{label}: {c['message']}" for c in
                    (fault.get("impairment_impact") or {}).get("checks") or []
                    if c["outcome"] == "failed"]
    if rpo["orders_lost"]:
        reasons.append(f"{rpo['orders_lost']} acknowledged order(s) lost")
    fault_names = {f.get("activity") for f in faults}
    failed_steps = []
    for step in journal.get("run") or []:
        name = (step.get("activity") or {}).get("name")
        output = step.get("output")
        if step.get("status") == "failed" and name not in fault_names:
            failed_steps.append(name)
            reasons.append(f"method step {name} failed: {step.get('exception', [''])[-1].strip()}"
                           if step.get("exception") else f"method step {name} failed")
        elif isinstance(output, dict) and output.get("met") is False:  # e.g. failover events not seen
            reasons.append(f"method check {name} not met")
    if hypothesis["before"]["met"] is False or status == "failed" or failed_steps or any(
            f["status"] == "failed" for f in faults):
        return "failed", reasons
    if journal.get("deviated") or reasons:
        return "deviated", reasons
    return "passed", reasons


def _rto_reasons(label: str, fault: Dict[str, Any]) -> List[str]:
    """One sentence per service whose RTO exceeded its own threshold."""
    late = [r for r in fault["recovery"].values() if r.get("rto_within_threshold") is False]
    if len(fault["services"]) <= 1 or not late:
        return [f"{label}: RTO {fault['rto_seconds']} s exceeds the "
                f"{fault['rto_threshold_seconds']:g} s threshold"]
    return [f"{label}: {SERVICES[r['service']].label} RTO {r['rto_seconds']} s exceeds "
            f"the {r['rto_threshold_seconds']:g} s threshold" for r in late]


def _load_generation(load_summary: Optional[dict], verdict: str, reasons: List[str]):
    """A load that failed to start, or a worker lost mid-run, fails the run: the faults were
    not judged under the load the experiment asked for."""
    summary = load_summary or {}
    problems = [p for p in summary.get("problems") or [] if p.startswith("load generation:")]
    if summary.get("status") == "failed" and summary.get("error"):
        error = str(summary["error"])
        problems.insert(0, "load generation: " + (error[6:] if error.startswith("load: ") else error))
    if not problems:
        return verdict, reasons
    return ("interrupted" if verdict == "interrupted" else "failed"), reasons + problems


def _target(files: RunFiles, faults: List[Dict]) -> Dict[str, Any]:
    """Lab or AWS, region, account, resource ids: target.json (written by the CLI) wins."""
    journal = files.journal
    given = files.target or {}
    kind = given.get("kind") or jr.config_value(journal, "gameday_target")
    if not kind:
        endpoint = str(jr.config_value(journal, "aws_endpoint_url") or "")
        host = str(((files.load_summary or {}).get("settings") or {}).get("host") or "")
        kind = "lab" if any(h in endpoint or h in host for h in LAB_HOSTS) else "unknown"
    given_ids = given.get("ids") or []
    # `gameday run` writes ids as {"db_instance": ..., "replication_group": ...}
    ids = [i for i in (given_ids.values() if isinstance(given_ids, dict) else given_ids) if i]
    for fault in faults:
        if fault["target"] and fault["target"] not in ids:
            ids.append(fault["target"])
    return {"kind": kind,
            "region": given.get("region") or jr.config_value(journal, "aws_region"),
            "account": given.get("account") or jr.config_value(journal, "aws_account_id"),
            "ids": ids, "endpoints": dict(given.get("endpoints") or {}),
            "not_measured": [f"{e['check']}: {e['why']}" for e in unmeasured.read(files.run_dir)],
            "timing_profile": given.get("timing_profile"),
            "shop_settings": given.get("shop_settings") or {},
            "waivers": list(given.get("waivers") or [])}


def _load_meta(files: RunFiles) -> Dict[str, Any]:
    summary = files.load_summary or {}
    settings = summary.get("settings") or {}
    return {"status": summary.get("status"), "users": settings.get("users"),
            "workers": list(summary.get("workers") or []),
            "users_peak": summary.get("users_peak"),
            "all_users_at": jr.when(summary.get("all_users_at")),
            "started_at": jr.when(summary.get("started_at")),
            "stopped_at": jr.when(summary.get("stopped_at")),
            "problems": list(summary.get("problems") or []),
            "timeline_seconds": len(files.seconds)}


def _events(journal: Optional[dict], faults: List[Dict], safeguards: Dict,
            load_summary: Optional[dict]) -> List[Dict[str, Any]]:
    """One time-ordered list of what happened: run phases, fault milestones, AWS events."""
    events = []

    def add(at, source, message, kind=None):
        stamp = jr.when(at)
        if stamp:
            events.append({"at": stamp, "source": source, "kind": kind, "message": message})

    journal = journal or {}
    add(journal.get("start"), "run", "experiment started", "run-start")
    load_summary = load_summary or {}
    add(load_summary.get("started_at"), "load", "shopper load started", "load-start")
    for phase in ("before", "after"):
        state = (journal.get("steady_states") or {}).get(phase)
        if isinstance(state, dict) and state.get("probes"):
            first, last = state["probes"][0], state["probes"][-1]
            add(first.get("start"), "hypothesis", f"steady-state hypothesis {phase} the method",
                "hypothesis")
            add(last.get("end"), "hypothesis", f"hypothesis {phase}: " + (
                "met" if state.get("steady_state_met") else "NOT met"), "hypothesis-result")
    for entry in journal.get("run") or []:
        add(entry.get("start"), "method", f"{jr.activity_name(entry)} started", "activity")
        if entry.get("status") == "failed":
            add(entry.get("end"), "method", f"{jr.activity_name(entry)} failed", "activity-failed")
    for fault in faults:
        label = f"{fault['fault']} on {fault['target']}"
        add(fault["injected_at"], "fault", f"{label}: injected via {fault['method']}", "injected")
        add(fault["control_plane_completed_at"], "fault",
            f"{label}: control plane completed ({fault['control_plane_seconds']} s)",
            "control-plane-completed")
        add(fault["data_plane_writable_at"], "fault",
            f"{label}: data plane writable again (RTO {fault['rto_seconds']} s)",
            "data-plane-writable")
        for name, action in ((fault.get("fis") or {}).get("actions") or {}).items():
            add(action["started_at"], "fis", f"FIS action {name} ({action['action_id']}) started",
                "fis-action-started")
            add(action["ended_at"], "fis", f"FIS action {name}: {action['state']}", "fis-action-ended")
        for event in fault["events"]:
            tag = f"{event['event_id']} " if event.get("event_id") else ""
            add(event["date"], "aws", f"{tag}{event.get('source') or ''}: {event['message']}",
                event.get("kind"))
    for entry in journal.get("rollbacks") or []:
        add(entry.get("start"), "rollback", f"rollback {jr.activity_name(entry)} started",
            "rollback")
    if safeguards["tripped"]:
        by = f" by {safeguards['tripped_by']}" if safeguards["tripped_by"] else ""
        add(safeguards["at"], "safeguard", f"run interrupted{by}", "safeguard")
    add(load_summary.get("stopped_at"), "load", "shopper load stopped", "load-stop")
    add(journal.get("end"), "run", f"experiment ended: {journal.get('status')}", "run-end")
    return sorted(events, key=lambda e: e["at"])
