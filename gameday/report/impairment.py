"""What shoppers felt during and after a network impairment, per journey step.

A failover is measured by its RTO; an impairment (a slow, lossy or cut-off AZ: the fault kind
"impairment", chaosext/fault_model.py) has no such moment. It is measured from the load
timeline, per journey step, against the same step in the baseline (the seconds before the
first fault):

- **impact**: error ratio and p50/p95/p99 in the impairment window [started, ended], and the p95
  increase over the baseline;
- **unavailable seconds**: seconds of the window in which the step had requests and none
  succeeded (an isolation shows "checkout down for the whole cut");
- **time to recover**: from the impairment's end until the step is back in its steady state:
  the first of `RECOVERY_STREAK` consecutive seconds with requests whose error ratio and p95
  are both within the steady-state limits (`steady_limits`); seconds without requests neither
  count nor break the streak (a hung step completes nothing, which proves nothing). Searched up
  to the next fault's injection or the end of the timeline: `null` with `recovered` false means
  it did not recover within the run;
- **shoppers affected**: per step, as `gameday/report/impact.py` counts them for the whole fault
  (exact when the timeline carries `failed_shoppers`, else an upper bound);
- **orders and carts lost**: the run's RPO figures (`rpo` of the summary), not recomputed.

Failures are counted as in impact.py: business refusals (out of stock) are answers, not errors.
"""
from typing import Any, Dict, Iterable, List, Optional, Tuple

from chaosext.load.timeline import percentile
from gameday.report.impact import outage_failures
from gameday.report.journal import epoch, when

__all__ = ["RECOVERY_STREAK", "ERROR_TOLERANCE", "P95_TOLERANCE", "P95_SLACK_MS",
           "steady_limits", "impairment_impact"]

Cells = Dict[Tuple[int, str], dict]
# Three seconds in a row: one good second between failures is common while clients reconnect
# and retry, three are not; on the lab's load every step has requests most seconds.
RECOVERY_STREAK = 3
ERROR_TOLERANCE = 0.05  # absolute share of requests above the baseline's error ratio
P95_TOLERANCE = 0.5  # relative: p95 up to 1.5 x the baseline's ...
P95_SLACK_MS = 50.0  # ... or 50 ms above it, whichever is larger (docs/reports.md: lab jitter)


def _stats(cells: Iterable[dict]) -> Dict[str, Any]:
    """Requests, outage failures, error ratio and p50/p95/p99 (ms) of a set of seconds."""
    requests = failures = 0
    hist: List[Tuple[float, int]] = []
    fallback: List[Tuple[float, int]] = []
    for cell in cells:
        requests += cell["requests"]
        failures += outage_failures(cell)
        hist.extend((v, c) for v, c in cell.get("hist") or [])
        if not cell.get("hist") and cell["requests"]:
            fallback.append((cell["p95"], cell["requests"]))
    out: Dict[str, Any] = {"requests": requests, "failures": failures,
                           "error_ratio": round(failures / requests, 6) if requests else None}
    for pct in (50, 95, 99):
        value = None
        if hist:
            value = percentile(hist + fallback, pct)
        elif pct == 95 and fallback:  # without histograms only the per-second p95 is known
            value = percentile(fallback, 95)
        out[f"p{pct}_ms"] = value
    return out


def steady_limits(baseline: List[dict]) -> Optional[Dict[str, float]]:
    """The steady state of one step from its baseline seconds: the error ratio and per-second
    p95 a second may show and still count as recovered (None: no baseline requests).

    p95 limit: the larger of the baseline p95 plus `P95_TOLERANCE` of it (at least
    `P95_SLACK_MS`) and the baseline's own spread (the 95th percentile of its per-second p95s),
    so a second as slow as the steady state sometimes was is not called degraded.
    """
    stats = _stats(baseline)
    if not stats["requests"]:
        return None
    p95 = stats["p95_ms"] or 0.0
    spread = percentile([(c["p95"], 1) for c in baseline if c["requests"]], 95)
    return {"error_ratio": round(stats["error_ratio"] + ERROR_TOLERANCE, 6),
            "p95_ms": round(max(p95 + max(p95 * P95_TOLERANCE, P95_SLACK_MS), spread), 3)}


def _healthy(cell: dict, limits: Dict[str, float]) -> bool:
    return (outage_failures(cell) / cell["requests"] <= limits["error_ratio"]
            and cell["p95"] <= limits["p95_ms"])


def _recovered_at(seconds: Dict[int, dict], end: float, stop: float,
                  limits: Dict[str, float]) -> Optional[float]:
    """When a step was back in its steady state after `end` (None: not before `stop`)."""
    streak_start, streak = None, 0
    for t in range(int(end), int(stop)):
        cell = seconds.get(t)
        if not cell or not cell["requests"]:
            continue
        if not _healthy(cell, limits):
            streak_start, streak = None, 0
            continue
        streak_start = t if streak == 0 else streak_start
        streak += 1
        if streak >= RECOVERY_STREAK:
            return max(end, float(streak_start))
    return None


def _in(t: int, start: float, end: float) -> bool:
    """Second t ([t, t+1)) overlaps [start, end)."""
    return t + 1 > start and t < max(end, start + 1)


def _shoppers(cells: List[dict], users: Optional[int]) -> Dict[str, Any]:
    """Shoppers with a failed request, as impact.py counts them for a whole fault."""
    ids, failed, exact = set(), 0, True
    for cell in cells:
        n = outage_failures(cell)
        if not n:
            continue
        failed += n
        if "failed_shoppers" in cell:
            ids.update(cell["failed_shoppers"])
        else:
            exact = False
    bound = failed if users is None else min(users, failed)
    return {"failed_requests": failed, "shoppers_affected": len(ids) if exact else None,
            "shoppers_affected_at_most": len(ids) if exact else bound}


def _step(seconds: Dict[int, dict], window: Dict[str, Any], baseline_end: float,
          users: Optional[int]) -> Dict[str, Any]:
    """One journey step's figures for one impairment (see the module docstring)."""
    start, end, stop = window["start"], window["end"], window["charge_end"]
    base = [c for t, c in seconds.items() if t + 1 <= baseline_end]
    during = [c for t, c in seconds.items() if _in(t, start, end)]
    before, now = _stats(base), _stats(during)
    limits = steady_limits(base)
    recovered_at = None
    if limits is not None and window["ended"]:
        recovered_at = _recovered_at(seconds, end, stop, limits)
    increase = (round(now["p95_ms"] - before["p95_ms"], 3)
                if now["p95_ms"] is not None and before["p95_ms"] is not None else None)
    unavailable = sum(1 for c in during if c["requests"] and outage_failures(c) >= c["requests"])
    charged = [c for t, c in seconds.items() if start < t + 1 <= stop]  # impact.py's charge
    return {"baseline": before, "during": now, "p95_increase_ms": increase,
            "unavailable_seconds": unavailable, "steady_state": limits,
            "recovered": recovered_at is not None,
            "recovered_at": when(recovered_at) if recovered_at is not None else None,
            "time_to_recover_seconds": (round(recovered_at - end, 1)
                                        if recovered_at is not None else None),
            **_shoppers(charged, users)}


def _window(fault: Dict[str, Any], last_second: int, next_injection: Optional[float]
            ) -> Optional[Dict[str, Any]]:
    """The impairment's [start, end] from its record (else injection / control plane done);
    one that never ended lasts to the end of the timeline."""
    record = fault.get("impairment") or {}
    start = epoch(record.get("started_at")) or epoch(fault.get("injected_at"))
    if start is None:
        return None
    end = epoch(record.get("ended_at")) or epoch(fault.get("control_plane_completed_at"))
    charge_end = min(next_injection, last_second + 1) if next_injection else last_second + 1
    return {"start": start, "end": end if end is not None else float(charge_end),
            "ended": end is not None, "charge_end": max(charge_end, start)}


def impairment_impact(fault: Dict[str, Any], cells: Cells, baseline_end: float,
                      next_injection: Optional[float], users: Optional[int],
                      rpo: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The figures of one impairment fault (`faults[].impairment_impact`, docs/reports.md), or
    None without a timeline or a start time."""
    if not cells:
        return None
    window = _window(fault, max(t for t, _ in cells), next_injection)
    if window is None:
        return None
    by_step: Dict[str, Dict[int, dict]] = {}
    for (t, step), cell in cells.items():
        by_step.setdefault(step, {})[t] = cell
    steps = {step: _step(seconds, window, baseline_end, users)
             for step, seconds in sorted(by_step.items())}
    slowest = [s["time_to_recover_seconds"] for s in steps.values()]
    recovered = bool(steps) and all(s["recovered"] for s in steps.values())
    return {"started_at": when(window["start"]),
            "ended_at": when(window["end"]) if window["ended"] else None,
            "ended": window["ended"],
            "duration_seconds": round(window["end"] - window["start"], 3),
            "baseline_seconds": len({t for t, _ in cells if t + 1 <= baseline_end}),
            "steps": steps, "recovered": recovered,
            "time_to_recover_seconds": max(slowest) if recovered else None,
            "orders_lost": rpo.get("orders_lost"), "carts_lost": rpo.get("carts_lost"),
            "definition": {"recovery_streak_seconds": RECOVERY_STREAK,
                           "error_tolerance": ERROR_TOLERANCE, "p95_tolerance": P95_TOLERANCE,
                           "p95_slack_ms": P95_SLACK_MS},
            "checks": []}
