"""The report's first screen: the answer before the evidence.

What the reader of a game-day report asks first: did it pass; per fault, how long until the
shop could write again against the target, how many shoppers noticed and for how long, how
many checkouts failed; was anything lost; and is this run worse than the ones before. Then one
chart per fault. Everything else of the report follows below.
"""
from typing import Any, Dict, List

from chaosext.fault_model import SERVICES
from gameday.report.baseline import describe
from gameday.report.document import Block, num
from gameday.report.impairment_view import impairment_blocks, impairment_cell

__all__ = ["glance"]


def _rto(fault: Dict[str, Any]) -> str:
    """The RTO against its target; for a fault of several services, one per service."""
    if len(fault.get("services") or ()) > 1:
        recovery = fault.get("recovery") or {}
        return "; ".join(f"{_service(s)} " + _figure(recovery.get(s) or {})
                         for s in fault["services"])
    return _figure(fault)


def _service(name: str) -> str:
    known = SERVICES.get(name)
    return known.label if known else name


def _figure(fault: Dict[str, Any]) -> str:
    rto, limit = fault.get("rto_seconds"), fault.get("rto_threshold_seconds")
    if rto is None:
        return "not measured" + (f" (target ≤ {num(limit)} s)" if limit is not None else "")
    if limit is None:
        return f"{num(rto, 2)} s (no target set)"
    ok = fault.get("rto_within_threshold")
    return f"{num(rto, 2)} s {'≤' if ok else '>'} {num(limit)} s target: {'met' if ok else 'MISSED'}"


def _shoppers(impact: Dict[str, Any], users: Any) -> str:
    exact, bound = impact.get("shoppers_affected"), impact.get("shoppers_affected_at_most")
    of = f" of {users}" if users else ""
    if exact is not None:
        return "none" if exact == 0 else f"{exact}{of}"
    if bound is None:
        return "—"
    return "none" if bound == 0 else f"at most {bound}{of}"


def _how_long(impact: Dict[str, Any]) -> str:
    seconds, span = impact.get("error_seconds"), impact.get("affected_for_seconds")
    if not seconds:
        return "no errors" if seconds == 0 else "—"
    text = f"{seconds} s with errors"
    if span and span != seconds:
        text += f" within {span} s"
    return text + f", from +{num(impact.get('affected_from_seconds'), 1)} s"


def _against(gate: Dict[str, Any], fault: str) -> str:
    """One cell: what regressed for this fault (or the whole run, fault ""), or that nothing did."""
    if gate.get("error"):
        return "gate could not decide"
    failed = [c for c in gate["checks"] if c["fault"] == fault and c["outcome"] == "failed"]
    if not failed:
        return "within tolerance"
    return "; ".join(f"{c['label']} {_value(c['value'], c['unit'])} vs "
                     f"{_value(c['baseline'], c['unit'])}" for c in failed) + ": REGRESSED"


def _fault_rows(summary: Dict[str, Any]) -> List[List[str]]:
    users, gate = summary["load"].get("users"), summary.get("baseline")
    rows = []
    for f in summary["faults"]:
        impact = f.get("impact") or {}
        recovery = impairment_cell(f) if f.get("kind") == "impairment" else _rto(f)
        row = [f"{f['fault']} on {f['target']}", recovery, _shoppers(impact, users),
               _how_long(impact), num(impact.get("failed_checkouts")),
               ", ".join(impact.get("affected_steps") or []) or "none"]
        rows.append(row + ([_against(gate, f"{f['fault']} on {f['target']}")] if gate else []))
    return rows


def _lost(summary: Dict[str, Any]) -> str:
    rpo = summary["rpo"]
    orders = ("not checked" if rpo["orders_lost"] is None
              else f"{rpo['orders_lost']} of {num(rpo['orders_checked'])} acknowledged")
    return f"Orders lost: {orders}. Carts lost: {num(rpo['carts_lost'])}."


def _gate_line(gate: Dict[str, Any]) -> str:
    if gate.get("error"):
        return f"Against the baseline: the gate could not decide: {gate['error']}"
    runs = describe(gate)
    if not gate["regressed"]:
        return f"Against the baseline ({runs}): no regression."
    return (f"Against the baseline ({runs}): REGRESSED"
            + ("" if _against(gate, "") == "within tolerance" else f" — {_against(gate, '')}")
            + ". Details below the charts.")


def _baseline(summary: Dict[str, Any]) -> List[Block]:
    """The gate's figure-by-figure table (below the charts; the verdict line is on top)."""
    gate = summary.get("baseline")
    if not gate or gate.get("error"):
        return []
    verdict = "REGRESSED" if gate["regressed"] else "no regression"
    rows = [[(c["fault"] + ": " if c["fault"] else "") + c["label"],
             _value(c["value"], c["unit"]), _value(c["baseline"], c["unit"]),
             _value(c["allowed"], c["unit"]),
             {"failed": "REGRESSED", "passed": "ok"}.get(c["outcome"], "no baseline value")]
            for c in gate["checks"]]
    return [("h2", f"Against the baseline: {verdict}"),
            ("p", f"Baseline: {describe(gate)}. A figure regresses "
                  "when it exceeds baseline × (1 + relative tolerance) + slack."),
            ("table", ["figure", "this run", "baseline", "allowed up to", "result"], rows,
             "glance")]


def _when(stamp: Any) -> str:
    return f"{stamp[:10]} {stamp[11:19]} UTC" if isinstance(stamp, str) and len(stamp) >= 19 else "—"


def _value(value: Any, unit: str) -> str:
    return "—" if value is None else f"{num(value, 2)}{' ' + unit if unit else ''}"


def glance(summary: Dict[str, Any]) -> List[Block]:
    """Blocks of the first screen (see the module docstring)."""
    exp = summary["experiment"]
    out: List[Block] = [("h1", f"Game day: {exp['title'] or summary['run_id']}"),
                        ("verdict", summary["verdict"], f"Verdict: {summary['verdict'].upper()}")]
    gate = summary.get("baseline")
    if gate:
        out.append(("badge", "failed" if gate.get("regressed") else
                    "interrupted" if gate.get("error") else "passed",
                    "Against the baseline: " + ("REGRESSED" if gate.get("regressed") else
                                                "NO DECISION" if gate.get("error") else
                                                "NO REGRESSION")))
    target = summary["target"]
    out.append(("p", f"Run {summary['run_id']} on the {target['kind']}"
                + (f" (timing {target['timing_profile']})" if target.get("timing_profile") else "")
                + f", started {_when(summary['start'])}"
                + (f", {summary['load']['users']} shoppers" if summary["load"].get("users") else "")
                + "."))
    if summary["verdict_reasons"]:
        out.append(("list", summary["verdict_reasons"]))
    if summary["faults"]:
        impaired = any(f.get("kind") == "impairment" for f in summary["faults"])
        out.append(("table", ["fault", "RTO against target" + (
                        " (impairment: recovery after its end)" if impaired else ""),
                              "shoppers affected", "for how long",
                              "failed checkouts", "journey steps hit"]
                    + (["against the baseline"] if gate else []), _fault_rows(summary), "glance"))
        out += impairment_blocks(summary)
    else:
        out.append(("p", "No fault was injected."))
    out.append(("p", _lost(summary)))
    if gate:
        out.append(("p", _gate_line(gate)))
    if summary["faults"] and summary["load"]["steps"]:
        out.append(("charts", "fault"))
    return out + _baseline(summary)
