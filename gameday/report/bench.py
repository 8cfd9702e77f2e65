"""Benchmark of `write_report` on a synthetic 10-minute, 200-user game day.

`synthetic_run_dir` writes a run directory in the exact shapes the pack records (timeline lines
built with the recorder's own `StepSecond`, fault results as `chaosext.recovery` returns them),
with a database failover and a cache failover under load. Run `python -m gameday.report.bench`.
"""
import json
import os
import random
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

from chaosext.load.timeline import StepSecond, totals
from groundfloor.timefmt import iso

__all__ = ["synthetic_run_dir", "bench"]

START = 1795672800  # 2026-11-26T06:00:00Z
STEP_WEIGHTS = {"browse": 10, "product": 8, "add_to_cart": 4, "view_cart": 3, "checkout": 2}
DB_ERROR = "503 woocommerce_rest_database_unavailable"
CACHE_ERROR = "500 redis_connection_error"


def _fault(name, target, method, injected, control_done, writable, before, after, events,
           **extra) -> Dict[str, Any]:
    return {"fault": name, "target": target, "method": method, "injected_at": iso(injected),
            "control_plane_completed_at": iso(control_done),
            "control_plane_observed_at": iso(control_done + 0.4),
            "data_plane_writable_at": iso(writable),
            "rto_seconds": round(writable - injected, 3),
            "control_plane_seconds": round(control_done - injected, 3),
            "before": before, "after": after, "events": events, **extra}


def _event(at, source, message, event_id=None, kind=None, source_type="db-instance"):
    return {"date": iso(at), "source": source, "source_type": source_type, "message": message,
            "event_id": event_id, "kind": kind}


def _faults(start: float, seconds: int) -> List[Dict[str, Any]]:
    db_at, cache_at = start + seconds * 0.3 + 0.25, start + seconds * 0.65 + 0.5
    db = _fault(
        "rds-force-failover", "shop-db", "RebootDBInstance(ForceFailover=True)",
        db_at, db_at + 4.1, db_at + 2.35,
        {"az": "us-east-1a", "secondary_az": "us-east-1b", "status": "available"},
        {"az": "us-east-1b", "secondary_az": "us-east-1a", "status": "available"},
        [_event(db_at + 0.1, "shop-db", "Multi-AZ instance failover started.",
                "RDS-EVENT-0013", "failover-started"),
         _event(db_at + 4.1, "shop-db", "Multi-AZ instance failover completed",
                "RDS-EVENT-0049", "failover-completed")],
        data_plane={"endpoint": "127.0.0.1:15306", "kind": "mysql",
                    "first_failure_at": iso(db_at + 0.2), "outage_seconds": 2.15})
    cache = _fault(
        "elasticache-primary-deletion", "shop-cache", "TestFailover",
        cache_at, cache_at + 3.2, cache_at + 2.6,
        {"node_group": "0001", "node": "shop-cache-001", "az": "us-east-1a",
         "replicas": ["shop-cache-002"]},
        {"node_group": "0001", "node": "shop-cache-002", "az": "us-east-1b",
         "replicas": ["shop-cache-001"], "group_status": "available"},
        [_event(cache_at + 0.1, "shop-cache", "Test Failover API called for node group 0001",
                None, "failover-started", "replication-group"),
         _event(cache_at + 3.2, "shop-cache", "Failover from primary node shop-cache-001 to "
                "replica node shop-cache-002 completed", None, "failover-completed",
                "replication-group")],
        requested_method="DeleteCacheCluster",
        method_reason="DeleteCacheCluster on primary node shop-cache-001 was refused "
                      "(InvalidCacheClusterState) — fell back to TestFailover, the supported "
                      "way to lose a primary")
    return [db, cache]


def _activity(name, module, func, arguments=None, kind="action", **more):
    return {"type": kind, "name": name, "provider": {
        "type": "python", "module": module, "func": func, "arguments": arguments or {}}, **more}


def _probe_run(activity, output, at, met=True, duration=0.05):
    return {"activity": activity, "output": output, "start": iso(at)[:-1],
            "status": "succeeded", "end": iso(at + duration)[:-1], "duration": duration,
            "tolerance_met": met}


def _hypothesis_probes():
    return [
        _activity("shop-answers", "chaosext.load.probes", "requests_in_window",
                  {"window": 10}, kind="probe", tolerance={"type": "range", "range": [1, 1e9]}),
        _activity("checkout-error-ratio", "chaosext.load.probes", "error_ratio",
                  {"step": "checkout", "window": 10}, kind="probe",
                  tolerance={"type": "range", "range": [0, 0.05]}),
        _activity("db-writable", "chaosext.dataplane", "wait_until_writable",
                  {"kind": "mysql", "timeout": 10}, kind="probe",
                  tolerance={"type": "jsonpath", "path": "$.outage_seconds", "expect": 0}),
    ]


def _experiment(users: int, probes: List[Dict[str, Any]], method: List[Dict[str, Any]],
                rollback: Dict[str, Any]) -> Dict[str, Any]:
    """The synthetic run's experiment: the game day's shape, with these activities."""
    return {
        "version": "1.0.0",
        "title": "Database and cache failover under shopper load",
        "description": "Fails the RDS Multi-AZ instance over, then loses the ElastiCache "
                       "primary, while shoppers browse, fill carts and check out.",
        "tags": ["rds", "elasticache", "gameday"],
        "configuration": {
            "aws_region": "us-east-1", "gameday_target": "lab",
            "db_instance_identifier": {"type": "env", "key": "GAMEDAY_DB_INSTANCE",
                                       "default": "shop-db"},
            "rto_threshold_seconds": {"rds": 3, "elasticache": 3},
        },
        "secrets": {"shop": {
            "consumer_key": {"type": "env", "key": "GAMEDAY_SHOP_CONSUMER_KEY"},
            "consumer_secret": {"type": "env", "key": "GAMEDAY_SHOP_CONSUMER_SECRET"}}},
        "controls": [
            {"name": "shopper-load", "provider": {"type": "python",
                                                  "module": "chaosext.load.control",
                                                  "arguments": {"users": users}}},
            {"name": "safeguard", "provider": {
                "type": "python", "module": "chaosaddons.controls.safeguards",
                "arguments": {"probes": [_activity(
                    "checkout-error-budget", "chaosext.load.probes", "error_ratio",
                    {"step": "checkout", "window": 30}, kind="probe",
                    tolerance={"type": "range", "range": [0, 0.5]}, frequency=5)]}}}],
        "steady-state-hypothesis": {"title": "The shop sells and nothing is lost",
                                    "probes": probes},
        "method": method, "rollbacks": [rollback],
    }


def _journal(start: float, seconds: int, faults: List[Dict[str, Any]], orders: int,
             users: int) -> Dict[str, Any]:
    probes = _hypothesis_probes()
    rpo = _activity("no-acknowledged-order-lost", "chaosext.load.probes",
                    "acknowledged_orders_exist", {}, kind="probe",
                    tolerance={"type": "jsonpath", "path": "$.missing_count", "expect": 0})
    method = [
        _activity("force-db-failover", "chaosext.rds.actions", "force_failover",
                  {"db_instance_identifier": "${db_instance_identifier}"}),
        _activity("lose-cache-primary", "chaosext.elasticache.actions", "delete_primary_node",
                  {"replication_group_id": "shop-cache"}),
    ]
    rollback = _activity("restore-cache-replicas", "chaosext.elasticache.actions",
                         "restore_replicas", {"replication_group_id": "shop-cache", "count": 1})
    experiment = _experiment(users, probes, method, rollback)
    before_at, after_at = start + 5, start + seconds - 20
    outputs = [150, 0.0, {"outage_seconds": 0, "writable_again_at": iso(start + 5.2)}]
    before = [_probe_run(p, o, before_at + i * 0.3) for i, (p, o) in
              enumerate(zip(probes, outputs))]
    after = [_probe_run(p, o, after_at + i * 0.3) for i, (p, o) in
             enumerate(zip(probes, outputs))]
    after.append(_probe_run(rpo, {"checked": orders, "found": orders, "missing_count": 0,
                                  "missing": []}, after_at + 1.0, duration=1.2))
    experiment["steady-state-hypothesis"]["probes"].append(rpo)
    run = []
    for activity, fault in zip(method, faults):
        injected = _injected(fault)
        run.append({"activity": activity, "output": fault, "start": iso(injected - 0.2)[:-1],
                    "status": "succeeded", "end": iso(injected + 4.6)[:-1], "duration": 4.8})
    restored = {"fault": "elasticache-restore-replicas", "target": "shop-cache",
                "method": "IncreaseReplicaCount", "replicas_wanted": 1,
                "injected_at": iso(after_at + 3)}
    return {
        "chaoslib-version": "1.44.0", "platform": "Linux", "node": "gameday",
        "experiment": experiment, "start": iso(start)[:-1] + "+00:00", "status": "completed",
        "deviated": False,
        "steady_states": {"before": {"steady_state_met": True, "probes": before},
                          "after": {"steady_state_met": True, "probes": after},
                          "during": []},
        "run": run,
        "rollbacks": [{"activity": rollback, "output": restored, "start": iso(after_at + 3)[:-1],
                       "status": "succeeded", "end": iso(after_at + 9)[:-1], "duration": 6.0}],
        "end": iso(start + seconds)[:-1] + "+00:00", "duration": float(seconds),
    }


def _injected(fault: Dict[str, Any]) -> float:
    from groundfloor.timefmt import parse_time
    return parse_time(fault["injected_at"]).timestamp()


def _outage(t: int, step: str, faults: List[Dict[str, Any]]) -> Optional[str]:
    """Which error a request of `step` at second `t` sees, if it lands in an outage."""
    for fault in faults:
        start, end = _injected(fault), _injected(fault) + fault["rto_seconds"]
        if t + 1 > start and t < end:
            if fault["fault"].startswith("rds") and step == "checkout":
                return DB_ERROR
            if fault["fault"].startswith("elasticache") and step in ("add_to_cart", "view_cart",
                                                                     "checkout"):
                return CACHE_ERROR
    return None


def synthetic_run_dir(run_dir: str, seconds: int = 600, users: int = 200, seed: int = 7,
                      start: float = START) -> str:
    """Write journal.json, timeline.jsonl, orders.jsonl, load-summary.json into `run_dir`."""
    rng = random.Random(seed)
    os.makedirs(run_dir, exist_ok=True)
    faults = _faults(start, seconds)
    per_user = 0.8  # requests per second per shopper (think time 0.5-2 s)
    total_weight = sum(STEP_WEIGHTS.values())
    order_id = 1000
    with open(os.path.join(run_dir, "timeline.jsonl"), "w") as tl, \
            open(os.path.join(run_dir, "orders.jsonl"), "w") as ledger:
        for t in range(int(start), int(start) + seconds):
            for step, weight in sorted(STEP_WEIGHTS.items()):
                cell = StepSecond()
                rate = users * per_user * weight / total_weight
                n = max(0, int(rng.gauss(rate, rate ** 0.5)))
                error = _outage(t, step, faults)
                for _ in range(n):
                    failed = error is not None and rng.random() < 0.85
                    ms = rng.lognormvariate(2.2 if step != "checkout" else 3.0, 0.45)
                    if error is not None:
                        ms *= 3
                    lost = failed and error == CACHE_ERROR and step == "view_cart" \
                        and rng.random() < 0.1
                    cell.add(ms, error if failed else None, lost)
                    if step == "checkout" and not failed:
                        order_id += 1
                        ledger.write(json.dumps({
                            "order_id": order_id, "order_key": f"wc_order_{rng.getrandbits(48):x}",
                            "status": "processing", "t": round(t + rng.random(), 3)}) + "\n")
                if n:
                    tl.write(json.dumps(cell.to_line(t, step)) + "\n")
    orders = order_id - 1000
    timeline = totals(os.path.join(run_dir, "timeline.jsonl"))
    summary = {"status": "stopped", "reason": "after rollbacks", "error": None,
               "started_at": iso(start), "stopped_at": iso(start + seconds),
               "duration_seconds": float(seconds), "stopped_by": "SIGINT", "exit_code": 0,
               "pid": 4242, "requests": timeline["requests"], "failures": timeline["failures"],
               "carts_lost": timeline["carts_lost"], "orders_acknowledged": orders,
               "steps": timeline["steps"], "error_samples": [], "problems": [],
               "settings": {"host": "http://127.0.0.1:15301", "users": users, "spawn_rate": 50}}
    with open(os.path.join(run_dir, "load-summary.json"), "w") as fh:
        json.dump(summary, fh, indent=2)
    with open(os.path.join(run_dir, "journal.json"), "w") as fh:
        json.dump(_journal(start, seconds, faults, orders, users), fh, indent=2)
    return run_dir


def bench(seconds: int = 600, users: int = 200, run_dir: Optional[str] = None) -> Dict[str, Any]:
    """Time write_report on a synthetic run: seconds, HTML bytes, and the run's size."""
    from gameday.report.render import write_report
    work = run_dir or tempfile.mkdtemp(prefix="gameday-report-bench-")
    synthetic_run_dir(work, seconds=seconds, users=users)
    began = time.perf_counter()
    paths = write_report(work)
    elapsed = time.perf_counter() - began
    with open(os.path.join(work, "timeline.jsonl")) as fh:
        lines = sum(1 for _ in fh)
    with open(os.path.join(work, "orders.jsonl")) as fh:
        orders = sum(1 for _ in fh)
    return {"run_dir": work, "seconds": seconds, "users": users, "timeline_lines": lines,
            "orders": orders, "write_report_seconds": round(elapsed, 3),
            "html_bytes": os.path.getsize(paths["report.html"]),
            "md_bytes": os.path.getsize(paths["report.md"]),
            "chart_bytes": sum(os.path.getsize(p) for p in paths["charts"])}


if __name__ == "__main__":
    print(json.dumps(bench(run_dir=sys.argv[1] if len(sys.argv) > 1 else None), indent=2))
