"""Inject a fault, wait for the control plane and each service's data plane, return the result.

Every fault action builds a `Fault` (its declaration from chaosext.fault_model, how to inject,
how to tell the control plane is done, how to read its events) and hands it to `run_fault`, so
waiting, timing and the result shape (docs/architecture.md, "Fault results") live in one place.
A fault that touches several services is watched through each service's endpoint at once and
gets one recovery figure per service (`recovery`).
"""
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Dict, List, Optional, Tuple

from chaoslib.types import Configuration, Secrets

from chaosext import dataplane, faultlog, readplane, stopsignals, thresholds
from chaosext.alerts import faults as fault_log
from chaosext.errors import ActivityError
from chaosext.fault_model import KINDS, SERVICES, FaultSpec
from groundfloor.supervisor import Deadline, poll_until
from groundfloor.timefmt import iso, parse_time

__all__ = ["Fault", "run_fault", "dry_run_result"]

logger = logging.getLogger("chaostoolkit")

# After the control plane is done, how long a data plane that never failed is still watched.
QUIET_SECONDS = 3.0
Watches = Dict[str, "dataplane.WriteWatch"]  # service -> the watch on its endpoint


@dataclass
class Fault:
    """One fault about to be injected: what it is (`spec`) and how to drive it."""

    spec: FaultSpec  # name, services, kind, completion event (chaosext.fault_model)
    target: str  # resource id
    method: str  # "RebootDBInstance(ForceFailover=True)"
    before: Dict[str, Any]
    inject: Callable[[], Any]
    poll: Callable[[], Tuple[bool, Dict[str, Any]]]  # (done, state now); an impairment: ended
    events: Callable[[float], List[Dict[str, Any]]]  # described events since epoch seconds
    extra: Optional[Dict[str, Any]] = None  # merged into the result (inject may set it)
    repair: bool = False  # a rollback that restores redundancy: not a fault in the ledger

    @property
    def fault(self) -> str:
        return self.spec.name

    @property
    def services(self) -> Tuple[str, ...]:
        return self.spec.services

    @property
    def kind(self) -> str:
        return self.spec.kind


def _base(fault: Fault) -> Dict[str, Any]:
    return {
        "fault": fault.fault, "target": fault.target, "method": fault.method,
        "services": list(fault.services), "kind": fault.kind,
        "injected_at": None, "control_plane_completed_at": None, "data_plane_writable_at": None,
        "rto_seconds": None, "control_plane_seconds": None, "recovery": {},
        "before": fault.before, "after": None, "events": [], **(fault.extra or {}),
    }


def dry_run_result(fault: Fault, would: str) -> Dict[str, Any]:
    """The result of a dry run: what would happen; nothing was called that mutates."""
    logger.info("Dry run: %s", would)
    return {**_base(fault), "dry_run": True, "would": would}


def _watches(fault: Fault, measure: bool, configuration: Configuration,
             secrets: Secrets) -> Watches:
    """A watch per service of the fault whose endpoint is configured: writes through a writer
    endpoint, reads through a reader endpoint (chaosext.readplane)."""
    if not measure or fault.repair:
        return {}
    found = {}
    for service in fault.services:
        watch = readplane.watch_for(SERVICES[service].data_plane, configuration, secrets)
        if watch is not None:
            found[service] = watch
    return found


def run_fault(fault: Fault, wait: bool = True, timeout: Optional[float] = None,
              poll_interval: float = 1.0, measure_data_plane: bool = True,
              configuration: Configuration = None, secrets: Secrets = None) -> Dict[str, Any]:
    """Inject `fault`; with `wait`, return only once the control plane (and data plane) recovered.

    Without a `timeout`, the wait scales with the configured RTO threshold of the fault's
    services (chaosext.thresholds), or for a repair with `redundancy_timeout_seconds`: the
    same experiment then waits long enough in the fast lab and on AWS.
    """
    timeout = (thresholds.redundancy_timeout(configuration, timeout) if fault.repair
               else thresholds.fault_timeout(configuration, fault.fault, fault.target, timeout,
                                             services=fault.services))
    result = _base(fault)
    watches = _watches(fault, measure_data_plane and wait, configuration, secrets)
    for watch in watches.values():
        watch.start()
    try:
        injected = _inject(fault, result)
        if not wait:
            return _ended(fault, result)
        deadline = Deadline(timeout)
        milestones = _Milestones(fault, result, watches)
        observed, result["after"] = _wait_control_plane(fault, deadline, poll_interval,
                                                        milestones)
        _wait_data_planes(watches, fault, deadline)
        milestones.check()
    finally:
        for watch in watches.values():
            watch.stop()
    _record(fault, result, injected, observed, watches)
    fault_log.announce("recovered", result)
    return _ended(fault, result)


def _inject(fault: Fault, result: Dict[str, Any]) -> float:
    """Inject and record the injection together; returns when (epoch seconds)."""
    stopsignals.check()  # never inject after a stop, even one Python dropped
    with faultlog.signals_deferred():  # injected and recorded, or neither
        injected = time.time()
        fault.inject()
        result.update(method=fault.method, injected_at=iso(injected), **(fault.extra or {}))
        if not fault.repair:
            faultlog.injected(result)
    if fault.repair:  # a rollback restoring redundancy ("none": nothing was missing)
        logger.info("%s on %s: %s", fault.fault, fault.target, fault.method)
    else:
        logger.info("%s injected on %s via %s", fault.fault, fault.target, fault.method)
    fault_log.announce("fault-injected", result)
    return injected


def _record(fault: Fault, result: Dict[str, Any], injected: float, observed: float,
            watches: Watches) -> None:
    """Fill in the control plane's times and events and each service's recovery figure."""
    events = fault.events(injected - 1.0)
    result["events"] = events
    completed = (_completion_time(events, fault.spec.completion_kind, injected)
                 if KINDS[fault.kind].completion_event else None) or observed
    result["control_plane_completed_at"] = iso(completed)
    result["control_plane_observed_at"] = iso(observed)
    result["control_plane_seconds"] = round(completed - injected, 3)
    for service, watch in watches.items():
        result["recovery"][service] = _service_recovery(fault, service, watch, injected, observed)
    if watches:  # the fault is over for clients once the last of its services writes again
        last = max(result["recovery"].values(), key=lambda r: r["rto_seconds"])
        result["data_plane_writable_at"] = last["writable_at"]
        result["rto_seconds"] = last["rto_seconds"]
        if len(watches) == 1:
            result["data_plane"] = last["data_plane"]
    if fault.repair:
        logger.info("%s on %s: done after %.1f s", fault.fault, fault.target,
                    result["control_plane_seconds"])
    else:
        logger.info("%s on %s: control plane %.1f s, data plane RTO %s", fault.fault,
                    fault.target, result["control_plane_seconds"],
                    ", ".join(f"{s} {r['rto_seconds']} s" for s, r in result["recovery"].items())
                    or "not measured")


def _service_recovery(fault: Fault, service: str, watch: "dataplane.WriteWatch",
                      injected: float, ended: float) -> Dict[str, Any]:
    """One service's figure: RTO from the injection; for an impairment also the time to
    recover from its end. An endpoint that never failed was writable all along (RTO 0)."""
    writable = watch.writable_again_at if watch.recovered else injected
    entry = {"service": service, "writable_at": iso(writable),
             "rto_seconds": round(writable - injected, 3), "data_plane": watch.result()}
    if KINDS[fault.kind].figure == "time_to_recover":
        entry["time_to_recover_seconds"] = round(max(0.0, writable - ended), 3)
    return entry


def _ended(fault: Fault, result: Dict[str, Any]) -> Dict[str, Any]:
    if not fault.repair:
        faultlog.ended(result)
    return result


class _Milestones:
    """Ledger records for a fault in flight: control plane done, each service's data plane
    writable again (each once, as soon as it is seen; a repair is not in the ledger)."""

    def __init__(self, fault: Fault, result: Dict[str, Any], watches: Watches) -> None:
        self.fault, self.result, self.watches, self.seen = fault, result, watches, set()

    def reached(self, kind: str, at: float, service: Optional[str] = None) -> None:
        if (kind, service) not in self.seen and not self.fault.repair:
            self.seen.add((kind, service))
            faultlog.milestone(self.result, kind, at, service)

    def check(self) -> None:
        for service, watch in self.watches.items():
            if watch.recovered:
                self.reached("writable", watch.writable_again_at, service)


def _wait_control_plane(fault: Fault, deadline: Deadline, poll_interval: float,
                        milestones: _Milestones) -> Tuple[float, Dict[str, Any]]:
    """Poll the fault until the control plane says it is done; (when seen, last state)."""
    last: Dict[str, Any] = {}

    def done() -> bool:
        stopsignals.check()
        finished, last["state"] = fault.poll()
        milestones.check()
        return finished

    if not poll_until(done, deadline, max(0.05, float(poll_interval))):
        raise ActivityError(f"{fault.fault} on {fault.target}: the control plane did not "
                            f"report recovery within {deadline.seconds:g} s "
                            f"(last state: {last.get('state')})")
    observed = time.time()
    milestones.reached("control-plane-done", observed)
    return observed, last["state"]


def _wait_data_planes(watches: Watches, fault: Fault, deadline: Deadline) -> None:
    """Wait until every watched endpoint that failed takes writes again; one that has not
    failed QUIET_SECONDS after the control plane is done stayed writable."""
    quiet = Deadline(QUIET_SECONDS)

    def settled() -> bool:
        stopsignals.check()
        return all(w.recovered or (w.first_failure_at is None and quiet.expired())
                   for w in watches.values())

    if watches and not poll_until(settled, deadline, 0.02):
        down = [w for w in watches.values() if w.first_failure_at is not None and not w.recovered]
        if down:
            raise ActivityError(
                f"{fault.fault} on {fault.target}: the control plane recovered but "
                + "; ".join(f"the {w.endpoint} was not writable again within "
                            f"{deadline.seconds:g} s (last error: {w.last_error})" for w in down))
    for watch in watches.values():
        if watch.first_failure_at is None:
            logger.warning("%s stayed writable during %s on %s", watch.endpoint, fault.fault,
                           fault.target)


def _completion_time(events: List[Dict[str, Any]], kind: str, injected: float
                     ) -> Optional[float]:
    times = [parse_time(e["date"]).timestamp() for e in events
             if e.get("kind") == kind and e.get("date")]
    after = [t for t in times if t >= injected]
    if after:  # a previous failover's "completed" event must not count for this one
        return min(after)
    skewed = [t for t in times if t >= injected - 1.0]  # AWS clock a little behind ours
    return max(skewed) if skewed else None


def since_window(since: Optional[str], window_seconds: float):
    """The start of an events query: `since` (ISO-8601) or `window_seconds` ago."""
    if since:
        return parse_time(since)
    return parse_time(time.time()) - timedelta(seconds=float(window_seconds))
