"""Benchmark section `crashes`: unplanned failures healed by the lab, many times in a row.

20 DB primary crashes (kill -9, alternating nodes as the primary moves) under continuous commits,
then 20 cache primary crashes under WAIT-acknowledged writes: how long until writable again and
until redundancy is back (from the lab's ground-truth events), acknowledged writes lost, and
replication healthy after each crash. Called by scripts/bench.py.
"""
import statistics
import time

from woolab import manage
from woolab.events import read_events
from woolab.measure import EndpointWriter


def _healthy(config) -> bool:
    snap = manage.call(config, "/_lab/status")
    db = snap["db_instances"]["shop-db"]
    group = snap["replication_groups"]["shop-cache"]
    return (db["status"] == "available" and all(n["status"] == "available" for n in db["nodes"].values())
            and group["status"] == "available"
            and all(n["status"] == "available" for n in snap["cache_clusters"].values()))


def _wait_healthy(config, since: float, timeout: float = 60.0) -> float:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if _healthy(config):
            return time.time() - since
        time.sleep(0.1)
    raise RuntimeError(f"the lab did not heal within {timeout:.0f} s")


def _writable_after(state_dir, crashed_at: float, timeout: float = 30.0) -> float:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for event in read_events(state_dir / "events.jsonl"):
            if event["time"] >= crashed_at and "endpoint writable" in event["message"]:
                return event["time"] - crashed_at
        time.sleep(0.1)
    raise RuntimeError("no endpoint-writable event after the crash")


def _crash_rounds(config, kind: str, rounds: int, figure) -> None:
    env = manage.env(config.state_dir)
    writer = EndpointWriter(env, kind, wait_replicas=1 if kind == "cache" else 0, table="bench_crash")
    writer.start()
    writable, healed, crashed_nodes = [], [], set()
    for _ in range(rounds):
        _wait_healthy(config, time.time())
        time.sleep(0.3)
        snap = manage.call(config, "/_lab/status")
        primary = (snap["db_instances"]["shop-db"]["primary"] if kind == "db" else
                   next(n for n, v in snap["cache_clusters"].items() if v["role"] == "primary"))
        crashed_nodes.add(primary)
        crashed_at = time.time()
        manage.call(config, f"/_lab/crash?id={primary}", method="POST")
        writable.append(_writable_after(config.state_dir, crashed_at))
        healed.append(_wait_healthy(config, crashed_at))
    time.sleep(0.3)
    writer.finish()
    label = "DB primary" if kind == "db" else "cache primary"
    target_writable = "target <= 5 s" if kind == "db" else "target <= 3 s"
    figure("crashes", f"{label} crashes (kill -9), nodes crashed", f"{rounds} ({len(crashed_nodes)} nodes)")
    figure("crashes", f"{label}: writable again max seconds", max(writable), target_writable)
    figure("crashes", f"{label}: writable again median seconds", statistics.median(writable))
    figure("crashes", f"{label}: redundancy back max seconds", max(healed), "target <= 30 s")
    figure("crashes", f"{label}: acknowledged writes", len(writer.acked))
    figure("crashes", f"{label}: acknowledged writes lost", len(writer.lost()), "target 0")


def bench_crashes(config, args, figure) -> None:
    for kind in ("db", "cache"):
        _crash_rounds(config, kind, args.rounds, figure)
