"""Impairment figures against the experiment's `impairment_thresholds`, and the summary's part.

Each configured limit becomes one check {"fault", "step", "figure", "value", "limit", "unit",
"outcome" ("passed"/"failed"), "message"}: the verdict lists the messages of the failed ones,
JUnit has one test case per check, the first screen shows them. A limit whose figure was not
measured (no requests for that step, no baseline, no RPO check) fails: a threshold nobody could
check is not met.
"""
from typing import Any, Dict, List, Optional

from chaosext.thresholds import impairment_thresholds, step_limits
from gameday.report import journal as jr
from gameday.report.impairment import impairment_impact

__all__ = ["judge", "attach_impairments"]

DURING = "during the impairment"
# limit key -> (figure key, unit, how the message words the value)
STEP_FIGURES = {
    "max_error_ratio": ("error_ratio", "", "failed {v} of requests " + DURING),
    "max_p95_ms": ("p95_ms", "ms", "p95 was {v} " + DURING),
    "max_p95_increase_ms": ("p95_increase_ms", "ms", "p95 rose by {v} " + DURING),
    "max_unavailable_seconds": ("unavailable_seconds", "s", "was unavailable for {v} of the "
                                                            "impairment"),
    "time_to_recover_seconds": ("time_to_recover_seconds", "s",
                                "took {v} after the impairment ended to recover"),
}


def _fmt(value: float, unit: str) -> str:
    if unit == "":
        return f"{value * 100:.3g} %"
    if unit == "ms":
        return f"{value:,.0f} ms"
    return f"{value:,.3g} s" if value < 100 else f"{value:,.0f} s"


def _value(figures: Dict[str, Any], figure: str) -> Optional[float]:
    if figure in ("error_ratio", "p95_ms"):
        return (figures.get("during") or {}).get(figure)
    return figures.get(figure)


def _check(label: str, step: str, key: str, limit: float,
           figures: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    figure, unit, wording = STEP_FIGURES[key]
    value = _value(figures, figure) if figures else None
    allowed = f"the {_fmt(limit, unit)} allowed"
    if value is None:
        if figure == "time_to_recover_seconds" and figures and figures.get("steady_state"):
            why = "did not recover within the run"  # requests during the impairment or not
        elif not figures or not (figures.get("during") or {}).get("requests"):
            why = "no requests during the impairment"
        else:
            why = "no baseline to compare with"
        outcome, message = "failed", f"{step} {why} ({allowed})"
    else:
        outcome = "passed" if value <= limit else "failed"
        message = (f"{step} {wording.format(v=_fmt(value, unit))}, "
                   + (f"within {allowed}" if outcome == "passed" else f"over {allowed}"))
    return {"fault": label, "step": step, "figure": figure, "value": value, "limit": limit,
            "unit": unit, "outcome": outcome, "message": message}


def judge(label: str, impact: Dict[str, Any], thresholds: Dict[str, Any]
          ) -> List[Dict[str, Any]]:
    """The checks of one impairment's figures against the parsed thresholds."""
    steps = impact.get("steps") or {}
    named = [s for s in (thresholds.get("steps") or {}) if s != "*" and s not in steps]
    checks = []
    for step in sorted(steps) + sorted(named):
        for key, limit in step_limits(thresholds, step).items():
            checks.append(_check(label, step, key, limit, steps.get(step)))
    limit = thresholds.get("orders_lost")
    if limit is not None:
        lost = impact.get("orders_lost")
        outcome = "failed" if lost is None or lost > limit else "passed"
        message = ("acknowledged orders lost not measured: no acknowledged-orders check ran"
                   if lost is None else f"{lost:g} acknowledged order(s) lost, "
                   + ("within" if outcome == "passed" else "over") + f" the {limit:g} allowed")
        checks.append({"fault": label, "step": None, "figure": "orders_lost", "value": lost,
                       "limit": limit, "unit": "", "outcome": outcome, "message": message})
    return checks


def attach_impairments(faults: List[Dict[str, Any]], cells: Dict, users: Optional[int],
                       rpo: Dict[str, Any], threshold_value: Any) -> None:
    """Give every impairment fault its `impairment_impact`, with its checks (the verdict names
    the failed ones, gameday/report/summary.py). Other faults are left as they are."""
    impaired = [f for f in faults if f.get("kind") == "impairment" and not f.get("dry_run")]
    if not impaired:
        return
    thresholds = impairment_thresholds(threshold_value)
    starts = sorted(s for s in (jr.epoch(f.get("injected_at")) for f in faults) if s is not None)
    for fault in impaired:
        start = jr.epoch(fault.get("injected_at"))
        later = [s for s in starts if start is not None and s > start]
        impact = impairment_impact(fault, cells, starts[0] if starts else 0.0,
                                   later[0] if later else None, users, rpo)
        fault["impairment_impact"] = impact
        if impact is not None:
            impact["checks"] = judge(f"{fault['fault']} on {fault['target']}", impact,
                                     thresholds)
