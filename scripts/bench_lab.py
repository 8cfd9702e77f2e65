"""Benchmark section `lab`: planned failovers under continuous writes through the endpoints.

DB failovers while a writer commits through the instance endpoint (write outage, acknowledged
commits lost, replication healthy afterwards), then cache failovers while a writer writes
through the primary endpoint, with `WAIT 1` (no acknowledged write may be lost) and without.
"""
import statistics
import time
from pathlib import Path

from benchkit.core import Context, Section
from benchkit.labs import control
from woolab import manage
from woolab.measure import EndpointWriter

ROUND_SECONDS = 60.0  # one fast-profile failover and the lab settling afterwards


def _replication_healthy(config, state_dir: Path) -> bool:
    """Both replication threads of the DB standby run."""
    import pymysql
    snap = manage.call(config, "/_lab/status")
    standby = snap["db_instances"]["shop-db"]["standby"]
    conn = pymysql.connect(ssl_disabled=True, unix_socket=str(state_dir / "run" / f"{standby}.sock"), user="root", password="",
                           connect_timeout=5, read_timeout=10)
    try:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute("SHOW SLAVE STATUS")
            status = cur.fetchone()
    finally:
        conn.close()
    return status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes"


def _failover(ctx: Context, route: str) -> None:
    time.sleep(0.2)  # a few writes before each failover
    control(ctx.config, route)
    control(ctx.config, "/_lab/wait-idle")


def _db_round(ctx: Context) -> bool:
    """One DB failover; whether replication is healthy after it."""
    _failover(ctx, "/_lab/db-failover?id=shop-db")
    return _replication_healthy(ctx.config, ctx.config.state_dir)


def _db_failovers(ctx: Context, env: dict, rounds: int) -> None:
    writer = EndpointWriter(env, "db", table="bench_rpo")
    writer.start()
    try:
        outcome = ctx.rounds(rounds, ROUND_SECONDS, lambda _i: _db_round(ctx))
        time.sleep(0.2)
    finally:
        writer.finish()
    outcome.report(ctx, "DB failovers under continuous commits:")
    outages = writer.outages()
    healthy = sum(outcome.results)
    ctx.figure("DB failovers under continuous commits", rounds)
    ctx.figure("DB write outage max seconds", max(outages, default=0.0), "target <= 3 s")
    ctx.figure("DB write outage median seconds", statistics.median(outages) if outages else 0.0)
    ctx.figure("DB acknowledged commits", len(writer.acked))
    ctx.figure("DB acknowledged commits lost", len(writer.lost()), "target 0")
    ctx.figure("DB replication healthy after failover", f"{healthy}/{rounds}", f"target {rounds}/{rounds}")


def _cache_failovers(ctx: Context, env: dict, rounds: int, wait: int) -> None:
    """`rounds` cache failovers while a writer writes (and WAITs for `wait` replicas) through the
    endpoint. WAIT 1 with a single replica also waits for the old primary to resync after each
    promotion, so its acknowledged-write outage is longer than the endpoint's."""
    label = "with WAIT 1" if wait else "without WAIT"
    writer = EndpointWriter(env, "cache", wait_replicas=wait)
    writer.start()
    try:
        outcome = ctx.rounds(rounds, ROUND_SECONDS,
                             lambda _i: _failover(ctx, "/_lab/cache-failover?id=shop-cache"))
        time.sleep(0.2)
    finally:
        writer.finish()
    outcome.report(ctx, f"cache failovers ({label}):")
    outages = writer.outages()
    ctx.figure(f"cache failovers ({label})", rounds)
    ctx.figure(f"cache write outage max seconds ({label})", max(outages, default=0.0), "target <= 3 s")
    ctx.figure(f"cache write outage median seconds ({label})", statistics.median(outages) if outages else 0.0)
    ctx.figure(f"cache acknowledged writes ({label})", len(writer.acked))
    ctx.figure(f"cache acknowledged writes lost ({label})", len(writer.lost()),
               "target 0" if wait else "(async replication: loss possible)")


def run(ctx: Context) -> None:
    env = manage.env(ctx.config.state_dir)
    rounds = ctx.args.rounds
    _db_failovers(ctx, env, rounds)
    _cache_failovers(ctx, env, rounds, wait=1)
    _cache_failovers(ctx, env, rounds if ctx.smoke else max(3, rounds // 4), wait=0)


def bound(args) -> float:
    return ROUND_SECONDS * (2 * args.rounds + max(3, args.rounds // 4)) + 60


SECTION = Section("lab", run, bound, needs_lab=True,
                  about="failovers under continuous writes: outage, loss, replication")
