"""The report's content as a renderer-neutral list of blocks, built from the summary dict.

HTML and Markdown render the same blocks, so both formats always say the same thing.
Blocks: ("h1"|"h2"|"h3"|"p", text), ("list", [text]), ("table", headers, rows[, style]),
("charts"[, "fault"|"run"]), ("verdict"|"badge", verdict, text). The first screen (verdict, per-fault
answers, baseline, fault charts) comes from glance.py; the evidence follows.
"""
from typing import Any, Dict, List, Optional

from chaosext.fault_model import SERVICES

__all__ = ["build", "num", "pct", "clock"]

Block = tuple


def num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") if value == value else "—"
    return str(value)


def pct(value: Optional[float]) -> str:
    return "—" if value is None else f"{value * 100:.2f} %"


def clock(stamp: Optional[str]) -> str:
    """The time of day of an ISO stamp (the date is in the overview)."""
    return stamp.split("T", 1)[1] if stamp and "T" in stamp else (stamp or "—")


def _met(value: Optional[bool]) -> str:
    return {True: "met", False: "NOT met", None: "not run"}[value]


def build(summary: Dict[str, Any]) -> List[Block]:
    from gameday.report.glance import glance  # glance uses this module's formatting helpers
    blocks: List[Block] = glance(summary)
    from gameday.report.replica_lag import lag_blocks
    for part in (_overview, _hypothesis, _faults, _pauses, _charts, lag_blocks, _load, _rpo,
                 _safeguards, _rollbacks, _notes, _timeline):
        blocks += part(summary)
    return blocks


def _overview(s: Dict) -> List[Block]:
    exp, target = s["experiment"], s["target"]
    where = target["kind"] + "".join(f", {k} {target[k]}" for k in ("region", "account")
                                     if target.get(k))
    out: List[Block] = [("h2", "Run")]
    if exp.get("description"):
        out.append(("p", exp["description"]))
    settings = " ".join(f"{k}={v}" for k, v in sorted((target.get("shop_settings") or {}).items()))
    out.append(("table", ["", ""], [
        ["run", s["run_id"]],
        ["target", where],
        ["resources", ", ".join(target["ids"]) or "—"],
        ["start", s["start"] or "—"], ["end", s["end"] or "—"],
        ["duration", f"{num(s['duration_seconds'], 1)} s"],
        ["Chaos Toolkit status", f"{s['status'] or '—'} (deviated: {num(s['deviated'])})"],
        ["timing profile", target.get("timing_profile") or "—"],
        ["shop settings", settings or "—"],
    ] + [[f"endpoint: {name}", where] for name, where in target.get("endpoints", {}).items()]))
    if target.get("waivers"):
        out += [("h3", "Waived guardrails"), ("list", target["waivers"])]
    if target.get("not_measured"):
        out += [("h3", "Not measured"), ("list", target["not_measured"])]
    return out


def _hypothesis(s: Dict) -> List[Block]:
    h = s["hypothesis"]
    rows = []
    for phase in ("before", "after"):
        for p in h[phase]["probes"]:
            rows.append([phase, p["name"], p["status"] or "—", num(p["tolerance_met"]),
                         p["tolerance"] or "—", p["error"] or p["output"]])
    out = [("h2", "Steady-state hypothesis" + (f": {h['title']}" if h.get("title") else "")),
           ("p", f"Before the method: {_met(h['before']['met'])}. "
                 f"After the method: {_met(h['after']['met'])}.")]
    if rows:
        out.append(("table", ["phase", "probe", "status", "within tolerance", "tolerance",
                              "output"], rows))
    return out


def _method(f: Dict) -> str:
    method = f["method"] or "—"
    if f.get("requested_method") and f["requested_method"] != f["method"]:
        method = f"{f['requested_method']} → {method}"
    return method + (" (dry run)" if f.get("dry_run") else "")


def _faults(s: Dict) -> List[Block]:
    out: List[Block] = [("h2", "Faults")]
    if not s["faults"]:
        return out + [("p", "No fault was injected.")]
    rows = []
    for f in s["faults"]:
        load = f.get("load") or {}
        threshold = _threshold_cell(f)
        rows.append([f["fault"] or "—", f["target"] or "—", _method(f), f["status"] or "—",
                     clock(f["injected_at"]), clock(f["control_plane_completed_at"]),
                     clock(f["data_plane_writable_at"]), num(f["rto_seconds"]),
                     num(f["control_plane_seconds"]), num(f["control_vs_data_plane_lag_seconds"]),
                     threshold, pct(load.get("error_ratio")), num(load.get("p95_ms"), 1)])
    out.append(("table", ["fault", "target", "method", "status", "injected", "control plane done",
                          "data plane writable", "RTO s", "control plane s", "lag s",
                          "RTO threshold", "error ratio in window", "p95 ms in window"], rows))
    out.append(("p", "RTO: injection until the data plane took writes again, as a client "
                     "sees it (a fresh connection through the endpoint name: name resolution, "
                     "connect, first acknowledged write), not the control plane's status. Lag: "
                     "data plane writable minus control plane done (negative: writable before "
                     "AWS reported completion)."))
    for f in s["faults"]:
        details = []
        if f.get("error"):
            details.append(f"error: {f['error']}")
        if f.get("changed"):
            details.append(f"changed: {f['changed']}")
        if f.get("method_reason"):
            details.append(f"method: {f['method_reason']}")
        if f.get("before") or f.get("after"):
            details.append(f"before: {_flat(f.get('before'))}; after: {_flat(f.get('after'))}")
        details += recovery_lines(f)
        details += _fis_lines(f.get("fis"))
        if f.get("rto_source") not in (None, "fault"):
            details.append(f"data plane measured by {f['rto_source']}")
        details += [f"{clock(e['date'])} {e['event_id'] or ''} {e['message']}".replace("  ", " ")
                    for e in f["events"]]
        if details:
            out += [("h3", f"{f['fault']} on {f['target']}"), ("list", details)]
    return out


def _threshold_cell(f: Dict) -> str:
    """"≤ 3 s: yes", or for a fault of several services one such figure per service."""
    if len(f.get("services") or ()) > 1:
        judged = [r for r in (f.get("recovery") or {}).values()
                  if r.get("rto_threshold_seconds") is not None]
        return "; ".join(f"{_label(r['service'])} ≤ {num(r['rto_threshold_seconds'])} s: "
                         f"{num(r['rto_within_threshold'])}" for r in judged) or "—"
    if f["rto_threshold_seconds"] is None:
        return "—"
    return f"≤ {num(f['rto_threshold_seconds'])} s: {num(f['rto_within_threshold'])}"


def _label(service: Optional[str]) -> str:
    known = SERVICES.get(service or "")
    return known.label if known else str(service)


def recovery_lines(f: Dict) -> List[str]:
    """For a fault of several services, or of a kind other than failover: each service's
    recovery, against its own threshold."""
    recovery = f.get("recovery") or {}
    if len(f.get("services") or ()) <= 1 and f.get("kind") in (None, "failover"):
        return []
    lines = [f"kind: {f.get('kind') or 'failover'}; services: "
             f"{', '.join(_label(s) for s in f.get('services') or []) or 'not declared'}"]
    for service in f.get("services") or list(recovery):
        r = recovery.get(service)
        if r is None or r.get("rto_seconds") is None:
            lines.append(f"{_label(service)}: RTO not measured")
            continue
        limit = r.get("rto_threshold_seconds")
        judged = "" if limit is None else (
            f" (threshold {num(limit)} s: {'met' if r.get('rto_within_threshold') else 'MISSED'})")
        recover = "" if r.get("time_to_recover_seconds") is None else \
            f", {num(r['time_to_recover_seconds'])} s after the impairment ended"
        again = SERVICES[service].recovered if service in SERVICES else "writable"
        lines.append(f"{_label(service)}: {again} again {clock(r.get('writable_at'))}, RTO "
                     f"{num(r['rto_seconds'])} s{recover}{judged}"
                     + (f", measured by {r['source']}" if r.get("source") not in (None, "fault")
                        else ""))
    return lines


def _fis_lines(fis: Optional[Dict]) -> List[str]:
    """The FIS experiment of a fault: template, end state, targets, each action's state."""
    if not fis:
        return []
    code = f" [{fis['error_code']}]" if fis.get("error_code") else ""
    lines = [f"FIS experiment {fis['experiment_id']} (template {fis['template_id']}): "
             f"{fis['state']}{code}" + (f" — {fis['reason']}" if fis.get("reason") else "")]
    lines += [f"FIS target {name}: {_flat(target)}" for name, target in fis["targets"].items()]
    lines += [f"FIS action {name} ({a['action_id']}): {a['state']}"
              + (f" — {a['reason']}" if a.get("reason") else "")
              + (f", {clock(a['started_at'])}–{clock(a['ended_at'])}" if a.get("started_at") else "")
              for name, a in fis["actions"].items()]
    return lines


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_flat(v)}" for k, v in value.items() if v not in (None, [], {}))
    if isinstance(value, list):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    return num(value)


def _load(s: Dict) -> List[Block]:
    load = s["load"]
    out: List[Block] = [("h2", "Shopper load")]
    if not load["steps"]:
        return out + [("p", "No load timeline was recorded.")]
    w = load["windows"]
    out.append(("p", "Windows: baseline before the first injection "
                     f"({w['baseline']['seconds']} s), fault from injection to data-plane "
                     f"recovery ({w['fault']['seconds']} s), recovery afterwards "
                     f"({w['recovery']['seconds']} s)."
                + (f" {load['users']} users" + _ramp(load) + "." if load.get("users") else "")))
    rows = []
    for step in load["steps"] + ["all steps"]:
        figs = load["overall"] if step == "all steps" else load["per_step"][step]
        for window in ("baseline", "fault", "recovery"):
            f = figs[window]
            rows.append([step, window, num(f["requests"]), num(f["requests_per_second"], 1),
                         num(f["failures"]), pct(f["error_ratio"]), num(f["p95_ms"], 1)])
    out.append(("table", ["step", "window", "requests", "req/s", "failures", "error ratio",
                          "p95 ms"], rows))
    out += _workers(load.get("workers") or [])
    if load.get("problems"):
        out.append(("list", load["problems"]))
    return out


def _ramp(load: Dict) -> str:
    """When a distributed load had every user running (or how many it reached)."""
    if load.get("all_users_at"):
        return f", all running from {clock(load['all_users_at'])}"
    if load.get("users_peak") is not None:
        return f", at most {load['users_peak']} running at once"
    return ""


def _workers(workers: List[Dict]) -> List[Block]:
    """Distributed load: what each Locust worker did, and when one was lost."""
    if not workers:
        return []
    rows = [[w["name"], num(w.get("users")), num(w.get("requests")), num(w.get("failures")),
             num(w.get("orders")), num(w.get("carts_lost")),
             "LOST " + clock(w.get("lost_at")) if w.get("lost_at") or w.get(
                 "exited_before_stop") else "ran to the end"] for w in workers]
    return [("h3", "Load generators"),
            ("table", ["worker", "users", "requests", "failures", "orders", "carts lost",
                       "outcome"], rows)]


def _charts(s: Dict) -> List[Block]:
    return [("h2", "Timeline"), ("charts", "run")] if s["load"]["steps"] else []


def _rpo(s: Dict) -> List[Block]:
    r = s["rpo"]
    out = [("h2", "Data loss (RPO)"), ("table", ["figure", "value"], [
        ["acknowledged orders", num(r["orders_acknowledged"])],
        ["orders checked", num(r["orders_checked"])],
        ["acknowledged orders lost", num(r["orders_lost"]) if r["check"] else "not checked"],
        ["carts lost", num(r["carts_lost"])]])]
    for name, figures in sorted((r.get("orders_by_worker") or {}).items()):
        out[1][2].append([f"acknowledged orders from worker {name}",
                          num(figures.get("acknowledged")) + (
                              f" ({num(figures['lost'])} lost)"
                              if figures.get("lost") is not None else "")])
    if r["orders_missing"]:
        out.append(("p", "Missing order ids: " + ", ".join(map(str, r["orders_missing"]))))
    return out


def _safeguards(s: Dict) -> List[Block]:
    g = s["safeguards"]
    text = ("Declared: " + (", ".join(map(str, g["declared"])) or "none") + ". "
            + ("Tripped" + (f" by {g['tripped_by']}" if g["tripped_by"] else "")
               + (f" at {g['at']}" if g["at"] else "") + (f": {g['message']}" if g["message"]
                                                          else "") + "."
               if g["tripped"] else "No safeguard tripped."))
    return [("h2", "Safeguards"), ("p", text)]


def _pauses(s: Dict) -> List[Block]:
    """Step-by-step runs (`gameday run --pause-between-faults`): when the method waited."""
    if not s.get("pauses"):
        return []
    return [("h2", "Pauses between faults"),
            ("p", "The method waited here for the team; load and measurements kept running."),
            ("table", ["paused before", "from", "to", "seconds", "went on by"],
             [[p["before"] or "—", clock(p["started_at"]), clock(p["ended_at"]),
               num(p["seconds"], 1), p["how"] or "—"] for p in s["pauses"]])]


def _rollbacks(s: Dict) -> List[Block]:
    out: List[Block] = [("h2", "Rollbacks")]
    if not s["rollbacks"]:
        return out + [("p", "No rollback ran.")]
    return out + [("table", ["rollback", "status", "method", "started", "ended", "output"],
                   [[r["name"], r["status"] or "—", r["method"] or "—", clock(r["start"]),
                     clock(r["end"]), r["error"] or r["output"]] for r in s["rollbacks"]])]


def _notes(s: Dict) -> List[Block]:
    """The facilitator's notes (RUN_DIR/notes.md), placed relative to the run and its faults."""
    out: List[Block] = [("h2", "Facilitator's notes")]
    notes = s.get("notes") or []
    if not notes:
        return out + [("p", "No notes were recorded. During a run: gameday note RUN_DIR \"what you "
                            "saw\" (or write RUN_DIR/notes.md).")]
    return out + [("table", ["time (UTC)", "since start", "relative to the faults", "note"],
                   [[clock(n["at"]), "—" if n["since_start_seconds"] is None
                     else f"{n['since_start_seconds']:.1f} s", n["relative_to_faults"], n["text"]]
                    for n in notes])]


def _timeline(s: Dict) -> List[Block]:
    if not s["events"]:
        return []
    return [("h2", "Event timeline"),
            ("table", ["time (UTC)", "source", "what"],
             [[clock(e["at"]), e["source"], e["message"]] for e in s["events"]])]
