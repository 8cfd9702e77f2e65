"""Inject a fault, wait for the control plane and the data plane, return the fault result.

Every failover action builds a `Fault` (how to inject, how to tell the control plane is done,
how to read its events) and hands it to `run_fault`, so waiting, timing and the result shape
(docs/architecture.md, "Fault results") live in one place.
"""
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Dict, List, Optional, Tuple

from chaoslib.types import Configuration, Secrets

from chaosext import dataplane, faultlog, timing
from chaosext.alerts import faults as fault_log
from chaosext.errors import ActivityError
from groundfloor.timefmt import iso, parse_time

__all__ = ["Fault", "run_fault", "dry_run_result"]

logger = logging.getLogger("chaostoolkit")

# After the control plane is done, how long a data plane that never failed is still watched.
QUIET_SECONDS = 3.0


@dataclass
class Fault:
    fault: str  # "rds-force-failover"
    target: str  # resource id
    method: str  # "RebootDBInstance(ForceFailover=True)"
    before: Dict[str, Any]
    inject: Callable[[], Any]
    poll: Callable[[], Tuple[bool, Dict[str, Any]]]  # (done, state now)
    events: Callable[[float], List[Dict[str, Any]]]  # described events since epoch seconds
    data_plane: Optional[str] = None  # "mysql" | "redis": the endpoint that measures the RTO
    completion_kind: str = "failover-completed"
    extra: Optional[Dict[str, Any]] = None  # merged into the result (inject may set it)
    repair: bool = False  # a rollback that restores redundancy: not a fault in the ledger


def _base(fault: Fault) -> Dict[str, Any]:
    return {
        "fault": fault.fault, "target": fault.target, "method": fault.method,
        "injected_at": None, "control_plane_completed_at": None, "data_plane_writable_at": None,
        "rto_seconds": None, "control_plane_seconds": None,
        "before": fault.before, "after": None, "events": [], **(fault.extra or {}),
    }


def dry_run_result(fault: Fault, would: str) -> Dict[str, Any]:
    """The result of a dry run: what would happen; nothing was called that mutates."""
    logger.info("Dry run: %s", would)
    return {**_base(fault), "dry_run": True, "would": would}


def _watch(fault: Fault, measure: bool, configuration: Configuration, secrets: Secrets):
    if not (measure and fault.data_plane):
        return None
    if dataplane.endpoint(fault.data_plane, configuration, secrets) is None:
        return None
    return dataplane.WriteWatch(fault.data_plane, configuration, secrets)


def run_fault(fault: Fault, wait: bool = True, timeout: Optional[float] = None,
              poll_interval: float = 1.0, measure_data_plane: bool = True,
              configuration: Configuration = None, secrets: Secrets = None) -> Dict[str, Any]:
    """Inject `fault`; with `wait`, return only once the control plane (and data plane) recovered.

    Without a `timeout`, the wait scales with the fault's configured RTO threshold
    (chaosext.timing), or for a repair with `redundancy_timeout_seconds`: the same experiment
    then waits long enough in the fast lab and on AWS.
    """
    timeout = (timing.redundancy_timeout(configuration, timeout) if fault.repair
               else timing.fault_timeout(configuration, fault.fault, fault.target, timeout))
    result = _base(fault)
    watch = _watch(fault, measure_data_plane and wait, configuration, secrets)
    if watch:
        watch.start()
    try:
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
        if not wait:
            return _ended(fault, result)
        deadline = time.monotonic() + float(timeout)
        milestones = _Milestones(fault, result, watch)
        observed, state = _wait_control_plane(fault, deadline, timeout, poll_interval, milestones)
        result["after"] = state
        if watch:
            _wait_data_plane(watch, fault, deadline, timeout)
            milestones.check()
    finally:
        if watch:
            watch.stop()
    events = fault.events(injected - 1.0)
    result["events"] = events
    completed = _completion_time(events, fault.completion_kind, injected) or observed
    result["control_plane_completed_at"] = iso(completed)
    result["control_plane_observed_at"] = iso(observed)
    result["control_plane_seconds"] = round(completed - injected, 3)
    if watch:
        writable = watch.writable_again_at if watch.recovered else injected
        result["data_plane_writable_at"] = iso(writable)
        result["rto_seconds"] = round(writable - injected, 3)
        result["data_plane"] = watch.result()
    if fault.repair:
        logger.info("%s on %s: done after %.1f s", fault.fault, fault.target,
                    result["control_plane_seconds"])
    else:
        logger.info("%s on %s: control plane %.1f s, data plane RTO %s s", fault.fault,
                    fault.target, result["control_plane_seconds"], result["rto_seconds"])
    fault_log.announce("recovered", result)
    return _ended(fault, result)


def _ended(fault: Fault, result: Dict[str, Any]) -> Dict[str, Any]:
    if not fault.repair:
        faultlog.ended(result)
    return result


class _Milestones:
    """Ledger records for a fault in flight: control plane done, data plane writable again
    (each once, as soon as it is seen; a repair is not in the ledger)."""

    def __init__(self, fault: Fault, result: Dict[str, Any], watch) -> None:
        self.fault, self.result, self.watch, self.seen = fault, result, watch, set()

    def reached(self, kind: str, at: float) -> None:
        if kind not in self.seen and not self.fault.repair:
            self.seen.add(kind)
            faultlog.milestone(self.result, kind, at)

    def check(self) -> None:
        if self.watch is not None and self.watch.recovered:
            self.reached("writable", self.watch.writable_again_at)


def _wait_control_plane(fault: Fault, deadline: float, timeout: float, poll_interval: float,
                        milestones: Optional[_Milestones] = None):
    while True:
        done, state = fault.poll()
        if milestones:
            milestones.check()
        if done:
            observed = time.time()
            if milestones:
                milestones.reached("control-plane-done", observed)
            return observed, state
        if time.monotonic() >= deadline:
            raise ActivityError(f"{fault.fault} on {fault.target}: the control plane did not "
                                f"report recovery within {timeout:g} s (last state: {state})")
        time.sleep(max(0.05, float(poll_interval)))


def _wait_data_plane(watch: "dataplane.WriteWatch", fault: Fault, deadline: float,
                     timeout: float) -> None:
    quiet_until = time.monotonic() + QUIET_SECONDS
    while not watch.recovered:
        now = time.monotonic()
        if watch.first_failure_at is None and now >= quiet_until:
            logger.warning("%s stayed writable during %s on %s", watch.endpoint, fault.fault,
                           fault.target)
            return
        if now >= deadline:
            raise ActivityError(f"{fault.fault} on {fault.target}: the control plane recovered "
                                f"but the {watch.endpoint} was not writable again within "
                                f"{timeout:g} s (last error: {watch.last_error})")
        time.sleep(0.02)


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
