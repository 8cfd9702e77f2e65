"""The resilience score of a suite, and the Gremlin- and Litmus-style scores of the same runs.

Pure functions of the suite's entries (weight, category, impact budget) and each run's
summary.json, so anyone can recompute the figures from the files alone (docs/resilience-score.md
defines them; a test recomputes a reported score).

Keys read from a run's summary.json: `verdict`; `hypothesis.before|after.met` and their
`probes[].tolerance_met|status`; `rpo.orders_lost`, `rpo.carts_lost`; per fault `fault`,
`target`, `status`, `kind`, `rto_seconds`, `rto_threshold_seconds`, `impact.error_seconds|
failed_checkouts|affected_for_seconds`, `time_to_recover_seconds`, `impact_budget` and, when a
fault has one recovery figure per service, `recovery` (either {service: entry} or a list of
entries), each entry with `service`, `rto_seconds`, `rto_threshold_seconds`,
`time_to_recover_seconds`.
"""
from typing import Any, Dict, Iterable, List, Optional, Tuple

__all__ = ["PASS_FLOOR", "GREMLIN_POINTS", "headroom", "components", "experiment_score",
           "suite_scores"]

PASS_FLOOR = 50.0  # a figure exactly at its limit still passes and earns this much
GREMLIN_POINTS = {"passed": 100.0, "failed": 50.0, "not_run": 0.0}  # Gremlin's "expired" has no use here


def _num(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def headroom(value: Optional[float], limit: Optional[float]) -> Optional[float]:
    """100 at zero, 50 at the limit, falling linearly; 0 beyond the limit; None if unmeasured."""
    if value is None or limit is None:
        return None
    if limit <= 0:
        return 100.0 if value <= 0 else 0.0
    ratio = value / limit
    return 0.0 if ratio > 1 else round(100.0 - (100.0 - PASS_FLOOR) * ratio, 2)


def _component(name: str, label: str, value, limit, unit: str, score) -> Dict[str, Any]:
    return {"input": name, "label": label, "value": value, "limit": limit, "unit": unit,
            "score": score}


def _recoveries(fault: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Per-service recovery entries whether the summary keeps a dict, a list or one RTO."""
    raw = fault.get("recovery")
    rows = list(raw.values()) if isinstance(raw, dict) else raw if isinstance(raw, list) else []
    rows = [r for r in rows if isinstance(r, dict)]
    if rows:
        return rows
    return [{"service": None, "rto_seconds": fault.get("rto_seconds"),
             "rto_threshold_seconds": fault.get("rto_threshold_seconds"),
             "time_to_recover_seconds": fault.get("time_to_recover_seconds")}]


def _rto_components(fault: Dict[str, Any]) -> List[Dict[str, Any]]:
    label = f"{fault.get('fault') or '?'} on {fault.get('target') or '?'}"
    if fault.get("status") == "failed":
        return [_component("fault", f"{label}: the fault action failed", None, None, "", 0.0)]
    out = []
    recoveries = _recoveries(fault)
    for rec in recoveries:
        rto, limit = _num(rec.get("rto_seconds")), _num(rec.get("rto_threshold_seconds"))
        if limit is None and rto is None:
            continue
        service = f" ({rec['service']})" if rec.get("service") and len(recoveries) > 1 else ""
        out.append(_component("rto", f"{label}: RTO{service}", rto, limit, "s",
                              headroom(rto, limit)))
    return out


def _time_to_recover(fault: Dict[str, Any]) -> Optional[float]:
    values = [_num(r.get("time_to_recover_seconds")) for r in _recoveries(fault)]
    values = [v for v in values if v is not None]
    return max(values) if values else _num(fault.get("time_to_recover_seconds"))


def _budget_components(fault: Dict[str, Any], budget: Dict[str, float]) -> List[Dict[str, Any]]:
    """Impact against its budget: the suite entry's budget wins over one in the summary."""
    merged = {**(fault.get("impact_budget") if isinstance(fault.get("impact_budget"), dict) else {}),
              **(budget or {})}
    impact = fault.get("impact") if isinstance(fault.get("impact"), dict) else {}
    label = f"{fault.get('fault') or '?'} on {fault.get('target') or '?'}"
    out = []
    for key, limit in sorted(merged.items()):
        value = _time_to_recover(fault) if key == "time_to_recover_seconds" else _num(impact.get(key))
        unit = "" if key == "failed_checkouts" else "s"
        out.append(_component(key, f"{label}: {key.replace('_', ' ')}", value, _num(limit), unit,
                              headroom(value, _num(limit))))
    return out


def _loss_components(summary: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Acknowledged orders and carts: any loss scores 0, none scores 100."""
    rpo = summary.get("rpo") if isinstance(summary.get("rpo"), dict) else {}
    out = []
    for key, label in (("orders_lost", "acknowledged orders lost"), ("carts_lost", "carts lost")):
        value = _num(rpo.get(key))
        out.append(_component(key, label, value, 0.0, "",
                              None if value is None else (100.0 if value <= 0 else 0.0)))
    return out


def _steady_component(summary: Dict[str, Any]) -> Dict[str, Any]:
    hyp = summary.get("hypothesis") if isinstance(summary.get("hypothesis"), dict) else {}
    met = [(hyp.get(p) or {}).get("met") for p in ("before", "after")]
    score = 0.0 if False in met else (100.0 if met == [True, True] else None)
    return _component("steady_state", "steady state before and after the faults",
                      {"before": met[0], "after": met[1]}, None, "", score)


def components(summary: Dict[str, Any], budget: Optional[Dict[str, float]] = None) -> List[Dict]:
    """Every scored input of one run, each with its value, limit and 0–100 score (None: not
    measured, listed but not scored)."""
    faults = [f for f in summary.get("faults") or [] if isinstance(f, dict)]
    out = [_steady_component(summary)]
    for fault in faults:
        out += _rto_components(fault) + _budget_components(fault, budget or {})
    return out + _loss_components(summary)


def experiment_score(summary: Optional[Dict[str, Any]], budget: Optional[Dict[str, float]] = None
                     ) -> Tuple[float, Optional[Dict[str, Any]], List[Dict[str, Any]]]:
    """(score, binding component, components): 0 unless the run passed, else its weakest
    measured input, the one closest to breaking its limit."""
    if not isinstance(summary, dict):
        return 0.0, None, []
    comps = components(summary, budget)
    measured = [c for c in comps if c["score"] is not None]
    binding = min(measured, key=lambda c: c["score"]) if measured else None
    if summary.get("verdict") != "passed":
        return 0.0, binding, comps
    return (binding["score"] if binding else 100.0), binding, comps


def _probe_success(summary: Optional[Dict[str, Any]]) -> float:
    """Litmus's probe success percentage: steady-state probes met, before and after."""
    hyp = (summary or {}).get("hypothesis") if isinstance((summary or {}).get("hypothesis"), dict) else {}
    probes = [p for phase in ("before", "after") for p in (hyp.get(phase) or {}).get("probes") or []
              if isinstance(p, dict)]
    if not probes:
        return 0.0
    ok = sum(1 for p in probes if p.get("tolerance_met") is True
             or (p.get("tolerance_met") is None and p.get("status") == "succeeded"))
    return round(100.0 * ok / len(probes), 2)


def _weighted(pairs: Iterable[Tuple[float, float]]) -> Optional[float]:
    pairs = list(pairs)
    total = sum(w for w, _ in pairs)
    return round(sum(w * s for w, s in pairs) / total, 1) if total else None


def _gremlin(rows: List[Dict[str, Any]]) -> Optional[float]:
    by_category: Dict[str, List[float]] = {}
    for row in rows:
        outcome = row["verdict"] if row["status"] == "ran" else "not_run"
        points = GREMLIN_POINTS.get(outcome, GREMLIN_POINTS["failed"])
        by_category.setdefault(row["category"], []).append(points)
    means = [sum(v) / len(v) for v in by_category.values()]
    return round(sum(means) / len(means), 1) if means else None


def suite_scores(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    """All three scores from rows of {name, weight, category, status (ran|skipped|not_run),
    verdict, summary, impact_budget}; fills each row's `score`, `binding` and `components`.
    Skipped entries (not for this target) count in none of them."""
    counted = [r for r in rows if r["status"] != "skipped"]
    for row in rows:
        summary = row.get("summary") if row["status"] == "ran" else None
        row["score"], row["binding"], row["components"] = experiment_score(
            summary, row.get("impact_budget"))
        row["probe_success"] = _probe_success(summary)
    worst = min((r for r in counted if r["binding"] is not None),
                key=lambda r: (r["binding"]["score"], -r["weight"]), default=None)
    return {"resilience": _weighted((r["weight"], r["score"]) for r in counted),
            "gremlin_style": _gremlin(counted),
            "litmus_style": _weighted((r["weight"], r["probe_success"]) for r in counted),
            "worst": None if worst is None else {"experiment": worst["name"], **worst["binding"]}}
