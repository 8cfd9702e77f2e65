"""Benchmark section `crashes`: unplanned failures healed by the lab, many times in a row.

DB primary crashes (kill -9, alternating nodes as the primary moves) under continuous commits,
then cache primary crashes under WAIT-acknowledged writes: how long until writable again and
until redundancy is back (from the lab's ground-truth events), acknowledged writes lost, and
replication healthy after each crash.
"""
import statistics
import time

from benchkit.core import Context, Section
from groundfloor.supervisor import poll_until
from woolab import manage
from woolab.events import read_events
from woolab.measure import EndpointWriter

HEAL_SECONDS = 60.0
WRITABLE_SECONDS = 30.0
ROUND_SECONDS = HEAL_SECONDS * 2 + WRITABLE_SECONDS


def _healthy(config) -> bool:
    snap = manage.call(config, "/_lab/status")
    db = snap["db_instances"]["shop-db"]
    group = snap["replication_groups"]["shop-cache"]
    return (db["status"] == "available" and all(n["status"] == "available" for n in db["nodes"].values())
            and group["status"] == "available"
            and all(n["status"] == "available" for n in snap["cache_clusters"].values()))


def _wait_healthy(config, since: float) -> float:
    """Seconds from `since` until every instance and node is available again."""
    if not poll_until(lambda: _healthy(config), HEAL_SECONDS, interval=0.1):
        raise RuntimeError(f"the lab did not heal within {HEAL_SECONDS:.0f} s")
    return time.time() - since


def _writable_after(state_dir, crashed_at: float) -> float:
    """Seconds from the crash to the lab's next "endpoint writable" event."""
    def found():
        return next((e["time"] for e in read_events(state_dir / "events.jsonl")
                     if e["time"] >= crashed_at and "endpoint writable" in e["message"]), None)
    at = poll_until(found, WRITABLE_SECONDS, interval=0.1)
    if at is None:
        raise RuntimeError("no endpoint-writable event after the crash")
    return at - crashed_at


def _crash_round(ctx: Context, kind: str, crashed_nodes: set) -> tuple:
    config = ctx.config
    _wait_healthy(config, time.time())
    time.sleep(0.3)  # some writes before the crash
    snap = manage.call(config, "/_lab/status")
    primary = (snap["db_instances"]["shop-db"]["primary"] if kind == "db" else
               next(n for n, v in snap["cache_clusters"].items() if v["role"] == "primary"))
    crashed_nodes.add(primary)
    crashed_at = time.time()
    manage.call(config, f"/_lab/crash?id={primary}", method="POST")
    return _writable_after(config.state_dir, crashed_at), _wait_healthy(config, crashed_at)


def _crash_rounds(ctx: Context, kind: str, rounds: int) -> None:
    env = manage.env(ctx.config.state_dir)
    writer = EndpointWriter(env, kind, wait_replicas=1 if kind == "cache" else 0, table="bench_crash")
    writer.start()
    crashed_nodes = set()
    label = "DB primary" if kind == "db" else "cache primary"
    try:
        outcome = ctx.rounds(rounds, ROUND_SECONDS, lambda _i: _crash_round(ctx, kind, crashed_nodes))
        time.sleep(0.3)
    finally:
        writer.finish()
    outcome.report(ctx, f"{label} crashes:")
    if not outcome.results:
        return
    writable, healed = [r[0] for r in outcome.results], [r[1] for r in outcome.results]
    target_writable = "target <= 5 s" if kind == "db" else "target <= 3 s"
    ctx.figure(f"{label} crashes (kill -9), nodes crashed", f"{rounds} ({len(crashed_nodes)} nodes)")
    ctx.figure(f"{label}: writable again max seconds", max(writable), target_writable)
    ctx.figure(f"{label}: writable again median seconds", statistics.median(writable))
    ctx.figure(f"{label}: redundancy back max seconds", max(healed), "target <= 30 s")
    ctx.figure(f"{label}: acknowledged writes", len(writer.acked))
    ctx.figure(f"{label}: acknowledged writes lost", len(writer.lost()), "target 0")


def run(ctx: Context) -> None:
    for kind in ("db", "cache"):
        _crash_rounds(ctx, kind, ctx.args.rounds)


def bound(args) -> float:
    return ROUND_SECONDS * 2 * args.rounds + 60


SECTION = Section("crashes", run, bound, needs_lab=True,
                  about="kill -9 of the DB and cache primaries: writable again, redundancy back, loss")
