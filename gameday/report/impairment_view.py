"""The first screen's answer for impairment faults, as plain as the RTO is for failovers.

Per impairment: one line (where, what, how long, when shoppers were fine again) and one row per
journey step: errors and p95 before and during, how many seconds the step was down, how long it
took to recover, how many shoppers it hurt, and its thresholds met or missed.
"""
from typing import Any, Dict, List

from chaosext.fault_model import SERVICES
from gameday.report.document import Block, num

__all__ = ["impairment_cell", "impairment_blocks"]


def _ratio(value: Any) -> str:
    return "—" if value is None else f"{value * 100:.3g} %"


def _ms(value: Any) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def _what(record: Dict[str, Any]) -> str:
    """The impairment's shape in words: "200 ms delay, 10 % loss in us-east-1a (both)"."""
    parts = []
    if record.get("blackhole") or record.get("partition"):
        parts.append("cut off" + (f" ({record['partition']})" if record.get("partition") else ""))
    if record.get("delay_ms"):
        parts.append(f"{num(record['delay_ms'])} ms delay"
                     + (f" ± {num(record['jitter_ms'])} ms" if record.get("jitter_ms") else ""))
    if record.get("loss_percent"):
        parts.append(f"{num(record['loss_percent'])} % loss")
    if record.get("bandwidth_kbps"):
        parts.append(f"{num(record['bandwidth_kbps'])} kbit/s")
    where = record.get("availability_zone")
    return (", ".join(parts) or "impaired") + (f" in {where}" if where else "") + (
        f" ({record['direction']})" if record.get("direction") else "")


def impairment_cell(fault: Dict[str, Any]) -> str:
    """The fault table's recovery cell for an impairment: how long, and when shoppers were fine."""
    impact = fault.get("impairment_impact")
    if not impact:
        return "impairment: not measured (no load timeline)"
    text = f"impaired {num(impact['duration_seconds'], 1)} s"
    if not impact["ended"]:
        return text + "; it had not ended when the run stopped"
    if impact["recovered"]:
        return text + f"; shoppers fine again {num(impact['time_to_recover_seconds'], 1)} s after"
    late = [s for s, f in impact["steps"].items() if not f["recovered"]]
    return text + f"; NOT recovered within the run: {', '.join(late)}"


def _shoppers(figures: Dict[str, Any]) -> str:
    exact, bound = figures.get("shoppers_affected"), figures.get("shoppers_affected_at_most")
    if exact is not None:
        return "none" if exact == 0 else str(exact)
    return "none" if not bound else f"at most {bound}"


def _recovery(figures: Dict[str, Any], ended: bool) -> str:
    if figures["recovered"]:
        return f"{num(figures['time_to_recover_seconds'], 1)} s"
    if not ended:
        return "impairment never ended"
    return "no baseline" if figures.get("steady_state") is None else "NOT within the run"


def _limits(checks: List[Dict[str, Any]], step: str) -> str:
    mine = [c for c in checks if c["step"] == step]
    if not mine:
        return "no thresholds"
    missed = [c["message"] for c in mine if c["outcome"] == "failed"]
    return "MISSED: " + "; ".join(missed) if missed else f"{len(mine)} met"


def _rows(impact: Dict[str, Any]) -> List[List[str]]:
    rows = []
    for step, f in impact["steps"].items():
        before, during = f["baseline"], f["during"]
        rise = f["p95_increase_ms"]
        rows.append([step, f"{_ratio(before['error_ratio'])} → {_ratio(during['error_ratio'])}",
                     f"{_ms(before['p95_ms'])} → {_ms(during['p95_ms'])}"
                     + ("" if rise is None else f" ({'+' if rise >= 0 else '−'}{_ms(abs(rise))})"),
                     f"{f['unavailable_seconds']} s", _recovery(f, impact["ended"]),
                     _shoppers(f), _limits(impact["checks"], step)])
    named = sorted({c["step"] for c in impact["checks"] if c["step"]} - set(impact["steps"]))
    rows += [[step, "no requests", "—", "—", "—", "—", _limits(impact["checks"], step)]
             for step in named]
    return rows


def _data_plane(fault: Dict[str, Any]) -> str:
    """Each service's time to take writes again after the end (the fault result's figure)."""
    parts = [f"{SERVICES[s].label if s in SERVICES else s} "
             f"{num(r['time_to_recover_seconds'], 1)} s after the end"
             for s, r in (fault.get("recovery") or {}).items()
             if isinstance(r, dict) and r.get("time_to_recover_seconds") is not None]
    return f" Writable again: {', '.join(parts)}." if parts else ""


def impairment_blocks(summary: Dict[str, Any]) -> List[Block]:
    """One heading, one line and one table per measured impairment fault."""
    out: List[Block] = []
    for fault in summary["faults"]:
        impact = fault.get("impairment_impact")
        if not impact:
            continue
        label = f"{fault['fault']} on {fault['target']}"
        out.append(("h3", f"Impairment: {label}"))
        record = fault.get("impairment") or {}
        lost = ("not checked" if impact["orders_lost"] is None else num(impact["orders_lost"]))
        out.append(("p", f"{_what(record)} for {num(impact['duration_seconds'], 1)} s"
                    + (f" ({record['flows']})" if record.get("flows") else "")
                    + f"; {impairment_cell(fault).split('; ', 1)[-1]}. Orders lost: {lost}, "
                    f"carts lost: {num(impact['carts_lost'])} (whole run). Baseline: the "
                    f"{impact['baseline_seconds']} s before the first fault."
                    + _data_plane(fault)))
        out.append(("table", ["journey step", "errors before → during",
                              "p95 before → during", "unavailable", "time to recover",
                              "shoppers affected", "thresholds"], _rows(impact), "glance"))
        orders = [c["message"] for c in impact["checks"] if c["step"] is None]
        if orders:
            out.append(("list", orders))
    return out
