"""Safeguard over the shopper load that knows which fault is in flight and how long it may last.

A plain error-ratio safeguard cannot tell a planned outage from a runaway: an RDS Multi-AZ
failover keeps checkout failing for 60-120 s on AWS, so "checkout errors <= 50 % over 20 s"
aborts every real game day a few seconds into the failover. This probe judges each journey step
against the faults of the run, read from the fault ledger (``RUN_DIR/faults.jsonl``, written by
every fault action the moment it injects and again when it recovers):

1. **Unaffected steps stay healthy.** Errors of a step in a second that no fault affecting that
   step covers (from injection until recovery + ``settle_seconds``) count against
   ``max_error_ratio`` over the last ``window`` seconds. Browsing during a database failover is
   served from the object cache, so browse errors then abort the run.
2. **No outage beyond its RTO threshold.** A fault still in flight longer than its threshold
   aborts the run when its affected steps still fail (above ``max_error_ratio``, after the
   threshold), or when the write watch measuring its RTO (chaosext.watch_registry) still cannot write
   through the endpoint: the second holds however little shopper load there is.
3. **The error budget is bounded by the threshold.** Seconds in which an affected step failed
   (above ``max_error_ratio`` in that second), counted from the first fault affecting it, may
   add up to at most the sum of the thresholds of the faults that affect it.

Which steps a fault affects comes from configuration ``fault_affected_steps`` (same lookup as
``rto_threshold_seconds``: by fault name, target or declared service; a list of steps or "*"),
default: database faults affect ``checkout`` and ``order_received``, cache faults (and faults
that declare no service) every step; a fault that touches several services affects the union of
their steps. Its threshold is the largest of its services' ``rto_threshold_seconds``
(chaosext.thresholds); a fault without one is allowed the default fault timeout (300 s). The
services come from the ledger record (chaosext.fault_model), never from the fault's name. A fault
started without waiting (``wait: false``) has no recovery time in the ledger: it stays in flight,
so rule 2 judges it once its threshold has passed.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple

from chaoslib.types import Configuration, Secrets

from chaosext import fault_model, faultlog, thresholds, watch_registry
from chaosext.fault_model import CATALOGUE, SERVICES
from chaosext.errors import ActivityError
from chaosext.load.config import run_dir_of
from chaosext.load.timeline import read_recent
from groundfloor.timefmt import parse_time
from groundfloor import run_files

__all__ = ["outage_within_budget", "safeguard_reasons"]

logger = logging.getLogger("chaostoolkit")

ALL_STEPS = "*"
# database faults: the steps that read or write the database past the object cache (a product
# page or a cart add reads the product from the database when the cache has no entry, and the
# stock shop answers a 500 page then; the reader endpoint serves the catalogue on a cluster)
DEFAULT_AFFECTED = {"rds": ["product", "add_to_cart", "checkout", "order_received"],
                    "rds-reader": ["browse", "product", "add_to_cart", "checkout", "order_received"],
                    "elasticache": ALL_STEPS}
VERDICT_FILE = run_files.SAFEGUARD

Cells = Dict[Tuple[int, str], Tuple[int, int]]  # (second, step) -> (requests, failures)


@dataclass(frozen=True)
class Policy:
    window: float = 20.0
    max_error_ratio: float = 0.2
    min_requests: int = 5
    settle: float = 10.0


@dataclass
class FaultSpan:
    """One injected fault as the safeguard sees it: when, until when, for how long it may last."""

    fault: str
    target: str
    injected: float
    ended: Optional[float]  # None while in flight
    threshold: float
    affects: Optional[FrozenSet[str]] = None  # None: every step
    services: Tuple[str, ...] = ()  # as declared; empty: the catalogue's, by fault name

    def __post_init__(self) -> None:
        if not self.services and self.fault in CATALOGUE:
            self.services = CATALOGUE[self.fault].services

    @property
    def data_planes(self) -> FrozenSet[str]:
        """The endpoint kinds whose outage is this fault's (empty: any)."""
        return frozenset(SERVICES[s].data_plane for s in self.services if s in SERVICES)

    def affects_step(self, step: str) -> bool:
        return self.affects is None or step in self.affects

    def covers(self, t: float, now: float, settle: float) -> bool:
        end = self.ended if self.ended is not None else now
        return self.injected - 1.0 <= t <= end + settle

    def label(self) -> str:
        return f"{self.fault} on {self.target}"


@dataclass
class Verdict:
    ok: bool = True
    reasons: List[str] = field(default_factory=list)
    budget: Dict[str, Dict[str, float]] = field(default_factory=dict)

    def trip(self, reason: str) -> None:
        self.ok = False
        self.reasons.append(reason)


# -- the judgement (pure: synthetic timelines in the tests) ------------------------------------
def judge(cells: Cells, spans: List[FaultSpan], now: float, policy: Policy = Policy(),
          down: Iterable[Dict[str, Any]] = ()) -> Verdict:
    """Apply the three rules of the module docstring to `cells` as of epoch second `now`;
    `down` lists the endpoints a write watch sees down (chaosext.watch_registry.live_outages)."""
    verdict = Verdict()
    steps = sorted({step for _, step in cells})
    _unaffected(cells, spans, now, policy, steps, verdict)
    _runaways(cells, spans, now, policy, verdict)
    _unwritable(spans, now, list(down), verdict)
    _budgets(cells, spans, now, policy, steps, verdict)
    return verdict


def _ratio(cells: Cells, step: str, seconds: Iterable[int]) -> Tuple[int, int]:
    requests = failures = 0
    for t in seconds:
        r, f = cells.get((t, step), (0, 0))
        requests, failures = requests + r, failures + f
    return requests, failures


def _too_many(requests: int, failures: int, policy: Policy) -> bool:
    return requests >= policy.min_requests and failures / requests > policy.max_error_ratio


def _pct(requests: int, failures: int) -> str:
    return f"{100.0 * failures / requests:.0f} % of {requests} requests"


def _unaffected(cells, spans, now, policy, steps, verdict) -> None:
    window = range(int(now - policy.window) + 1, int(now) + 1)
    for step in steps:
        free = [t for t in window if not any(s.affects_step(step) and s.covers(t, now, policy.settle)
                                             for s in spans)]
        requests, failures = _ratio(cells, step, free)
        if _too_many(requests, failures, policy):
            faults = [s for s in spans if s.covers(now, now, policy.settle)]
            during = "; no fault in flight" if not faults else "; in flight: " + ", ".join(
                f"{s.label()} (affects {_steps(s)})" for s in faults)
            verdict.trip(f"{step}: {_pct(requests, failures)} failed in the last "
                         f"{policy.window:g} s outside any fault that affects it{during}")


def _runaways(cells, spans, now, policy, verdict) -> None:
    for span in spans:
        if span.ended is not None or now - span.injected <= span.threshold:
            continue
        late = range(int(max(span.injected + span.threshold, now - policy.window)) + 1,
                     int(now) + 1)
        for step in sorted({s for _, s in cells if span.affects_step(s)}):
            requests, failures = _ratio(cells, step, late)
            if _too_many(requests, failures, policy):
                verdict.trip(f"{step} still failing ({_pct(requests, failures)}) "
                             f"{now - span.injected:.0f} s after {span.label()} was injected: "
                             f"beyond its {span.threshold:g} s RTO threshold")


def _unwritable(spans, now, down, verdict) -> None:
    for span in spans:
        if span.ended is not None or now - span.injected <= span.threshold:
            continue
        for outage in down:
            if (not span.data_planes or outage["kind"] in span.data_planes) \
                    and outage["down_since"] is not None \
                    and outage["down_since"] <= span.injected + span.threshold:
                verdict.trip(f"the {outage['endpoint']} has taken no write for "
                             f"{now - outage['down_since']:.0f} s since {span.label()} was "
                             f"injected: beyond its {span.threshold:g} s RTO threshold")


def _budgets(cells, spans, now, policy, steps, verdict) -> None:
    for step in steps:
        mine = [s for s in spans if s.affects_step(step)]
        if not mine:
            continue
        start = int(min(s.injected for s in mine)) - 1
        bad = 0
        for t in range(start, int(now) + 1):
            requests, failures = cells.get((t, step), (0, 0))
            if requests and failures / requests > policy.max_error_ratio:
                bad += 1
        allowed = sum(s.threshold for s in mine)
        verdict.budget[step] = {"bad_seconds": bad, "allowed_seconds": allowed}
        if bad > allowed:
            verdict.trip(f"{step}: error budget spent: failing in {bad} s since "
                         f"{mine[0].label()} was injected, more than the {allowed:g} s its "
                         "RTO threshold allows")


def _steps(span: FaultSpan) -> str:
    return "every step" if span.affects is None else ", ".join(sorted(span.affects))


# -- reading the run ---------------------------------------------------------------------------
def read_cells(path: str, since: float, ignore_errors: Iterable[str] = ()) -> Cells:
    """(second, step) -> (requests, failures not listed in `ignore_errors`) from the timeline."""
    ignored = set(ignore_errors or ())
    cells: Cells = {}
    for line in read_recent(path, since):
        key = (int(line["t"]), str(line["step"]))
        failures = int(line.get("failures", 0)) - sum(
            int(n) for k, n in (line.get("errors") or {}).items() if k in ignored)
        r, f = cells.get(key, (0, 0))
        cells[key] = (r + int(line.get("requests", 0)), f + max(0, failures))
    return cells


def _epoch(value: Any) -> Optional[float]:
    try:
        return parse_time(value).timestamp() if value else None
    except (TypeError, ValueError):
        return None


def _affects(configuration: Mapping[str, Any], fault: str, target: str,
             services: Tuple[str, ...], override: Any = None) -> Optional[FrozenSet[str]]:
    """The steps a fault affects: the union over its services (None: every step)."""
    given = override if override is not None else (configuration or {}).get("fault_affected_steps")
    steps: set = set()
    for service in services or (None,):
        value = thresholds.per_fault(given, fault, target, service)
        if value is None:
            value = thresholds.per_fault(DEFAULT_AFFECTED, fault, target, service)
        if value in (None, ALL_STEPS) or (isinstance(value, list) and ALL_STEPS in value):
            return None
        steps.update([value] if isinstance(value, str) else value)
    return frozenset(steps)


def _services(record: Dict[str, Any]) -> Tuple[str, ...]:
    """The services a ledger record declares, else those the catalogue declares for its name."""
    declared, _ = fault_model.declared(record.get("services") or ())
    if declared:
        return declared
    known = CATALOGUE.get(str(record.get("fault")))
    return known.services if known else ()


def spans_from_ledger(records: List[Dict[str, Any]], configuration: Configuration = None,
                      affected_steps: Any = None) -> List[FaultSpan]:
    """One span per injected fault; an `ended` record (the full result) closes it."""
    spans: Dict[tuple, FaultSpan] = {}
    for record in records:
        injected = _epoch(record.get("injected_at"))
        if injected is None:
            continue
        fault, target = str(record.get("fault")), str(record.get("target"))
        key = (fault, target, record.get("injected_at"))
        if key not in spans:
            services = _services(record)
            threshold = thresholds.fault_threshold(configuration, fault, target, services)
            spans[key] = FaultSpan(fault, target, injected, None,
                                   threshold if threshold is not None
                                   else thresholds.DEFAULT_FAULT_TIMEOUT,
                                   _affects(configuration, fault, target, services,
                                            affected_steps), services)
        if record.get("record") == "ended":  # a fault started without waiting ends unrecovered:
            ends = [_epoch(record.get(k)) for k in ("data_plane_writable_at",  # still in flight
                                                    "control_plane_observed_at",
                                                    "control_plane_completed_at")]
            spans[key].ended = max([e for e in ends if e is not None], default=None)
    return sorted(spans.values(), key=lambda s: s.injected)


# -- the probe ---------------------------------------------------------------------------------
def outage_within_budget(window: float = 20, max_error_ratio: float = 0.2, min_requests: int = 5,
                         settle_seconds: float = 10, ignore_errors: Optional[List[str]] = None,
                         affected_steps: Any = None, run_dir: Optional[str] = None,
                         configuration: Configuration = None, secrets: Secrets = None
                         ) -> Dict[str, Any]:
    """Judge the shopper load against the faults in flight and their RTO thresholds.

    Returns ``{"ok": bool, "reasons": [...], "faults": [...], "budget": {step: ...}}``; use it
    as a chaostoolkit-addons safeguard with the tolerance
    ``{"type": "jsonpath", "path": "$.ok", "expect": true}``. A planned outage within its
    threshold keeps ``ok``; errors on unaffected steps, an outage beyond the threshold or an
    error budget beyond it do not (module docstring). ``affected_steps`` overrides
    configuration ``fault_affected_steps``.
    """
    if not window or float(window) <= 0:
        raise ActivityError(f"safeguard: window must be > 0 seconds (got {window!r})")
    policy = Policy(float(window), float(max_error_ratio), int(min_requests), float(settle_seconds))
    try:
        rd = run_dir_of(configuration, run_dir)
    except ActivityError:  # before the run directory exists there is nothing to judge yet
        return {"ok": True, "reasons": [], "budget": {}, "faults": []}
    now = float(math.floor(time.time()))
    spans = spans_from_ledger(faultlog.read(rd), configuration, affected_steps)
    since = min([s.injected for s in spans] + [now - policy.window]) - 1
    cells = read_cells(os.path.join(rd, run_files.TIMELINE), since, ignore_errors or ())
    verdict = judge(cells, spans, now, policy, watch_registry.live_outages())
    result = {"ok": verdict.ok, "reasons": verdict.reasons, "budget": verdict.budget,
              "faults": [{"fault": s.fault, "target": s.target, "in_flight": s.ended is None,
                          "age_seconds": round(now - s.injected, 3),
                          "rto_threshold_seconds": s.threshold} for s in spans]}
    if not verdict.ok:
        _record(rd, result)
    return result


def _record(run_dir: str, result: Dict[str, Any]) -> None:
    """Log why the safeguard trips and keep the first trip (the one that stopped the run) in
    the run directory for the report; the probe goes on running until the run has stopped."""
    path = os.path.join(run_dir, VERDICT_FILE)
    if os.path.exists(path):
        return
    for reason in result["reasons"]:
        logger.error("safeguard: %s", reason)
    try:
        with open(path, "x", encoding="utf-8") as fh:
            json.dump({**result, "at": time.time()}, fh, indent=1)
    except OSError as exc:
        logger.warning("safeguard verdict not written to %s: %s", run_dir, exc)


def safeguard_reasons(run_dir: str) -> List[str]:
    """Why the safeguard stopped the run in `run_dir` (its first trip), or [] if it did not."""
    try:
        with open(os.path.join(run_dir, VERDICT_FILE), encoding="utf-8") as fh:
            reasons = json.load(fh).get("reasons")
    except (OSError, ValueError, AttributeError):
        return []
    return [str(r) for r in reasons] if isinstance(reasons, list) else []
