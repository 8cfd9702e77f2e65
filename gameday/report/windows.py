"""Load figures per journey step in the baseline, fault and recovery windows.

A timeline second `t` covers [t, t+1). It belongs to the fault window when it overlaps any
fault's injection→recovery interval (recovery: data plane writable, else control plane done),
to the baseline when it ends before the first injection, and to recovery otherwise.
"""
from typing import Dict, Iterable, List, Optional, Tuple

from chaosext.load.timeline import percentile

__all__ = ["WINDOWS", "Interval", "window_of", "figures", "load_figures", "interval_figures"]

WINDOWS = ("baseline", "fault", "recovery")
Interval = Tuple[float, float]


def window_of(t: int, intervals: List[Interval]) -> str:
    if any(t + 1 > start and t < end for start, end in intervals):
        return "fault"
    if not intervals or t + 1 <= intervals[0][0]:
        return "baseline"
    return "recovery"


def figures(cells: Iterable[dict]) -> Dict[str, object]:
    """Requests, failures, error ratio and p95 (ms) of a set of per-second cells.

    The p95 comes from the merged latency histograms when the timeline has them; otherwise it
    is the request-weighted 95th percentile of the per-second p95 values (an approximation).
    """
    requests = failures = 0
    hist: Dict[float, int] = {}
    fallback: List[Tuple[float, int]] = []
    for cell in cells:
        requests += cell["requests"]
        failures += cell["failures"]
        for value, count in cell["hist"]:
            hist[value] = hist.get(value, 0) + count
        if not cell["hist"] and cell["requests"]:
            fallback.append((cell["p95"], cell["requests"]))
    p95 = percentile(list(hist.items()) + fallback, 95) if requests else None
    return {"requests": requests, "failures": failures,
            "error_ratio": round(failures / requests, 6) if requests else None,
            "p95_ms": p95}


def load_figures(cells: Dict[Tuple[int, str], dict], intervals: List[Interval]) -> Dict:
    """Per step and overall figures for each window, plus the windows' extent in seconds."""
    intervals = sorted(intervals)
    grouped: Dict[Tuple[str, str], List[dict]] = {}
    seconds: Dict[str, set] = {w: set() for w in WINDOWS}
    for (t, step), cell in cells.items():
        window = window_of(t, intervals)
        grouped.setdefault((window, step), []).append(cell)
        grouped.setdefault((window, "*"), []).append(cell)
        seconds[window].add(t)
    steps = sorted({step for _, step in cells})
    per_step = {step: {w: figures(grouped.get((w, step), [])) for w in WINDOWS} for step in steps}
    overall = {w: figures(grouped.get((w, "*"), [])) for w in WINDOWS}
    extent = {}
    for w in WINDOWS:
        ts = seconds[w]
        extent[w] = {"first_second": min(ts) if ts else None,
                     "last_second": max(ts) if ts else None, "seconds": len(ts)}
        for figs in [overall[w]] + [per_step[s][w] for s in steps]:
            figs["requests_per_second"] = round(figs["requests"] / len(ts), 3) if ts else None
    return {"steps": steps, "windows": extent, "per_step": per_step, "overall": overall}


def interval_figures(cells: Dict[Tuple[int, str], dict], start: float,
                     end: Optional[float]) -> Dict[str, object]:
    """Figures over one fault's own window (all steps together)."""
    if end is None:
        end = start
    return figures(c for (t, _), c in cells.items() if t + 1 > start and t < max(end, start + 1))
