"""Run directories with a network impairment, built second by second for the report tests.

The shape of the fault result follows the impairment contract (docs/reports.md, "Impairments"):
kind "impairment", `impairment` {availability_zone, direction, delay_ms, …, started_at,
ended_at}. Every second of every step is given explicitly, so a test knows each figure exactly.
"""
import json
from pathlib import Path
from typing import Callable, Dict, List, Optional

from groundfloor.timefmt import iso

T0 = 1_800_000_000  # the first second of the timeline
STEPS = ("add-to-cart", "browse", "checkout")
IMPAIRED_FROM, IMPAIRED_TO = 20, 30  # seconds after T0: the impairment window [20, 30)
SECONDS = 50

# A second: (requests, failures, latency ms of every request); None: no requests that second.
Second = Optional[tuple]


def healthy(step: str, t: int) -> Second:
    """The steady state: 10 requests, none failing, 10 ms (12 ms for one of them)."""
    return (10, 0, [10.0] * 9 + [12.0])


def cell(t: int, step: str, second: Second, shoppers: bool) -> Optional[dict]:
    if second is None:
        return None
    requests, failures, latencies = second
    hist: Dict[float, int] = {}
    for ms in latencies:
        hist[ms] = hist.get(ms, 0) + 1
    ordered = sorted(latencies)
    line = {"t": T0 + t, "step": step, "worker": "local", "requests": requests,
            "failures": failures, "errors": {"503": failures} if failures else {},
            "carts_lost": 0, "p50": ordered[len(ordered) // 2], "p95": ordered[-1],
            "p99": ordered[-1], "hist": sorted([v, c] for v, c in hist.items())}
    if shoppers:
        line["failed_shoppers"] = [f"s{(t * 7 + i) % 13}" for i in range(failures)]
    return line


def fault_result(ended: bool = True, name: str = "az-network-slowdown",
                 delay_ms: int = 200) -> dict:
    start, end = T0 + IMPAIRED_FROM, T0 + IMPAIRED_TO
    record = {"availability_zone": "us-east-1a", "direction": "both", "delay_ms": delay_ms,
              "jitter_ms": 0, "loss_percent": 0, "bandwidth_kbps": None, "blackhole": False,
              "partition": None, "flows": "every flow into us-east-1a (shop-db-a, shop-cache-001)",
              "duration_seconds": IMPAIRED_TO - IMPAIRED_FROM, "started_at": iso(start),
              "ended_at": iso(end) if ended else None}
    writable = {s: {"service": s, "writable_at": iso(start), "rto_seconds": 0.0,
                    "time_to_recover_seconds": 0.0} for s in ("rds", "elasticache")}
    return {"fault": name, "target": "us-east-1a", "method": "lab network impairment",
            "services": ["rds", "elasticache"], "kind": "impairment", "injected_at": iso(start),
            "control_plane_completed_at": iso(end) if ended else None,
            "data_plane_writable_at": iso(start) if ended else None,
            "rto_seconds": 0.0 if ended else None,
            "control_plane_seconds": float(IMPAIRED_TO - IMPAIRED_FROM) if ended else None,
            "recovery": writable if ended else {}, "before": {}, "after": None, "events": [],
            "impairment": record}


def journal(result: dict, configuration: dict, lost: Optional[int] = 0) -> dict:
    """A completed Chaos Toolkit journal: hypothesis met, the impairment action, an RPO check."""
    probe = {"activity": {"name": "acknowledged-orders-exist", "type": "probe",
                          "provider": {"type": "python", "module": "chaosext.load.probes",
                                       "func": "acknowledged_orders_exist"}},
             "status": "succeeded", "output": {"checked": 40, "missing_count": lost,
                                               "missing": list(range(lost or 0))},
             "start": iso(T0 + SECONDS - 1), "end": iso(T0 + SECONDS)}
    action = {"activity": {"name": "impair-az", "type": "action",
                           "provider": {"type": "python", "module": "chaosext.network.actions",
                                        "func": "impair_az", "arguments": {}}},
              "status": "succeeded", "output": result,
              "start": iso(T0 + IMPAIRED_FROM - 0.1), "end": iso(T0 + IMPAIRED_TO + 1)}
    state = {"steady_state_met": True, "probes": []}
    return {"status": "completed", "deviated": False, "start": iso(T0), "end": iso(T0 + SECONDS),
            "duration": float(SECONDS),
            "experiment": {"title": "AZ network slowdown", "configuration": configuration,
                           "method": [action["activity"]]},
            "steady_states": {"before": state, "after": {**state, "probes": [probe]}},
            "run": [action] + ([probe] if lost is not None else []), "rollbacks": []}


def write_run(run_dir: Path, shape: Callable[[str, int], Second] = healthy,
              result: Optional[dict] = None, configuration: Optional[dict] = None,
              lost: Optional[int] = 0, shoppers: bool = True) -> Path:
    """A run directory: journal, timeline (`shape(step, t)` per second), load summary, ledger."""
    run_dir.mkdir(parents=True, exist_ok=True)
    result = result if result is not None else fault_result()
    lines: List[dict] = [c for t in range(SECONDS) for s in STEPS
                         if (c := cell(t, s, shape(s, t), shoppers)) is not None]
    (run_dir / "timeline.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (run_dir / "journal.json").write_text(json.dumps(journal(result, configuration or {}, lost)))
    (run_dir / "load-summary.json").write_text(json.dumps({
        "settings": {"users": 13}, "status": "stopped", "orders_acknowledged": 40,
        "carts_lost": 0}))
    (run_dir / "faults.jsonl").write_text(json.dumps({"record": "ended", **result}) + "\n")
    return run_dir
