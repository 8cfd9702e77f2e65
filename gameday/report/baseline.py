"""The baseline gate: did this run get worse than the runs before it?

An absolute RTO threshold catches a broken failover; it does not catch a release that made the
failover three times slower but still under the threshold. The gate compares each figure of
this run (per fault: RTO, seconds with shopper errors, failed checkouts; per run: orders and
carts lost) with a baseline and fails when

    value > baseline × (1 + relative tolerance) + slack

The baseline is either one run directory, or `last:N`: per figure, the median of the last N
passing runs of the same experiment, target and timing profile found beside this run (a run
the gate itself flagged as regressed does not count as passing, so a regression never becomes
the new normal). Default tolerances come from the measured run-to-run noise of unchanged lab
reruns (docs/reports.md, "Baseline gate").
"""
import os
import re
import statistics
from typing import Any, Dict, List, Optional, Tuple

from gameday.report.figures import (FAULT_FIGURES, GATE_FIGURES, RUN_FIGURES, RunFigures,
                                    find_runs, from_summary, read_run_figures)
from gameday.report.sources import ReportError
from groundfloor import run_files

__all__ = ["DEFAULT_TOLERANCE", "parse_tolerance", "parse_baseline", "compare_with_baseline",
           "describe"]

# figure -> (relative, slack); see docs/reports.md for the noise these were derived from
DEFAULT_TOLERANCE: Dict[str, Tuple[float, float]] = {
    "rto": (0.25, 1.5), "error_seconds": (0.5, 3.0), "failed_checkouts": (1.0, 8.0),
    "orders_lost": (0.0, 0.0), "carts_lost": (0.5, 2.0)}
_ITEM = re.compile(r"^(?:(?P<figure>[a-z_]+)=)?(?P<value>\+?\d+(?:\.\d+)?)(?P<unit>%|s)?$")


def parse_tolerance(spec: Optional[str]) -> Dict[str, Tuple[float, float]]:
    """`50%`, `rto=25%`, `rto=+2s`, `failed_checkouts=+10`, comma-separated → per figure.

    `N%` sets the relative tolerance, `+N` the slack (in the figure's unit); an item without
    `FIGURE=` applies to every figure. Figures not named keep their defaults.
    """
    tolerance = dict(DEFAULT_TOLERANCE)
    for item in [i.strip() for i in (spec or "").split(",") if i.strip()]:
        match = _ITEM.match(item.replace(" ", ""))
        figure = match and match.group("figure")
        if not match or (figure and figure not in GATE_FIGURES) or \
                (match.group("unit") == "%") == match.group("value").startswith("+"):
            raise ReportError(f"tolerance {item!r} is not N% or +N (optionally FIGURE=…; "
                              f"figures: {', '.join(GATE_FIGURES)})")
        value = float(match.group("value").lstrip("+"))
        for name in [figure] if figure else list(GATE_FIGURES):
            rel, slack = tolerance[name]
            tolerance[name] = (value / 100, slack) if match.group("unit") == "%" else (rel, value)
    return tolerance


def parse_baseline(spec: str) -> Tuple[Optional[int], Optional[str]]:
    """`last:N` → (N, None); anything else is a run directory or summary.json → (None, path)."""
    if spec.startswith("last:"):
        count = spec[5:]
        if not count.isdigit() or int(count) < 1:
            raise ReportError(f"baseline {spec!r}: N in last:N must be a whole number ≥ 1")
        return int(count), None
    if not os.path.exists(spec):
        raise ReportError(f"baseline run {spec!r} not found (give last:N or a run directory)")
    return None, spec


def _baseline_runs(run: RunFigures, spec: str, reports_dir: str) -> Tuple[List[RunFigures], str]:
    count, path = parse_baseline(spec)
    if path is not None:
        summary = path if os.path.isfile(path) else os.path.join(path, run_files.SUMMARY)
        base = read_run_figures(summary)
        if base.problem:
            raise ReportError(f"baseline run {path}: {base.problem}")
        return [base], f"run {base.run_id}"
    earlier = [r for r in find_runs(reports_dir) if r.passing and r.group == run.group
               and r.run_id != run.run_id and (r.start or "") < (run.start or "~")]
    chosen = earlier[-count:]
    if not chosen:
        raise ReportError(
            f"no earlier passing run of {run.experiment!r} on the {run.target} "
            f"(timing profile {run.profile or 'unrecorded'}) in {reports_dir}: the gate cannot "
            "decide without a baseline")
    shortfall = f" (only {len(chosen)} found)" if len(chosen) < count else ""
    return chosen, f"median of the last {count} passing runs{shortfall}"


def _check(name: str, value: Optional[float], base: List[float], tolerance, fault: str) -> Dict:
    label, unit = GATE_FIGURES[name]
    rel, slack = tolerance[name]
    unit_text = f" {unit}" if unit else ""
    check = {"figure": name, "label": label, "unit": unit, "fault": fault, "value": value,
             "baseline": None, "allowed": None, "outcome": "skipped", "message": ""}
    if not base:
        check["message"] = "no baseline value"
        return check
    median = statistics.median(base)
    allowed = round(median * (1 + rel) + slack, 3)
    check.update(baseline=round(median, 3), allowed=allowed)
    u = unit_text
    if value is None:
        check.update(outcome="failed", message=f"{label} not measured in this run "
                                                f"(baseline {median:g}{u})")
    elif value > allowed:
        check.update(outcome="failed", message=f"{label} {value:g}{u} regressed: baseline "
                     f"{median:g}{u}, allowed up to {allowed:g}{u} (+{rel:.0%} + {slack:g}{u})")
    else:
        check.update(outcome="passed", message=f"{label} {value:g}{u} (baseline {median:g}{u}, "
                                                f"allowed up to {allowed:g}{u})")
    return check


def describe(gate: Dict[str, Any]) -> str:
    """What the baseline was, for people: "run X", or "median of the last 5 passing runs: …"."""
    if gate.get("spec", "").startswith("last:"):
        return f"{gate['described']}: {', '.join(gate['runs'])}"
    return gate["described"]


def compare_with_baseline(summary: Dict[str, Any], spec: str, tolerance: Any = None,
                          reports_dir: Optional[str] = None) -> Dict[str, Any]:
    """The gate's result for a summary: {"baseline", "runs", "checks", "regressed", ...}.

    `reports_dir` is where `last:N` looks for earlier runs (default: beside this run).
    Raises ReportError when the gate cannot decide (no baseline, unknown run, last:0).
    """
    tolerance = tolerance if isinstance(tolerance, dict) else parse_tolerance(tolerance)
    run = from_summary(summary)
    runs, described = _baseline_runs(run, spec, reports_dir or ".")
    checks = []
    for fault in run.faults:
        for name in FAULT_FIGURES:
            base = [v for v in (r.value(name, fault.key) for r in runs) if v is not None]
            checks.append(_check(name, getattr(fault, name), base, tolerance, fault.key))
    for key in {f.key for r in runs for f in r.faults} - {f.key for f in run.faults}:
        checks.append({**_check("rto", None, [0.0], tolerance, key),
                       "message": f"{key} was in the baseline but not in this run"})
    for name in RUN_FIGURES:
        base = [v for v in (r.value(name) for r in runs) if v is not None]
        checks.append(_check(name, run.value(name), base, tolerance, ""))
    return {"spec": spec, "described": described, "runs": [r.run_id for r in runs],
            "tolerance": {k: list(v) for k, v in tolerance.items()}, "checks": checks,
            "regressed": any(c["outcome"] == "failed" for c in checks)}
