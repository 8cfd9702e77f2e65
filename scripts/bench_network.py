"""Benchmark section `network`: what the lab's relay costs, and Multi-AZ's promise through it.

- Redis PING round trips through the relay and directly (the relay's own latency);
- browse throughput and p95 with the shop reaching Redis and MariaDB through the relay (the
  lab's normal path) and directly (the servers' private addresses), alternating, in one run;
- planned DB and cache failovers under acknowledged writes through the relay: writes lost;
- partition-then-crash trials (tests/network_helpers.py): the primary's AZ cut from the others
  under writes, then the primary crashed: acknowledged writes lost, writes acknowledged during
  the cut, how long the endpoint was unwritable.
Listed in scripts/bench.py's SECTIONS.
"""
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from benchkit.core import Section  # noqa: E402
from woolab import manage  # noqa: E402
from woolab.measure import EndpointWriter  # noqa: E402
from woolab.network.addresses import server_address  # noqa: E402


def _direct_settings(config) -> dict:
    """Shop settings that reach the current primaries' servers, past the relay."""
    snap = manage.call(config, "/_lab/status")
    db = snap["db_instances"]["shop-db"]
    cache = next(n for n in snap["cache_clusters"].values() if n["role"] == "primary")
    return {"db_host": server_address(db["nodes"][db["primary"]]["ip"]), "redis_host": server_address(cache["ip"])}


BELOW_CAPACITY_CONNECTIONS = 4  # browse clients that leave the machine's CPUs partly idle


def _browse(config, args, settings: dict, concurrency: int) -> dict:
    from bench_shop import bench_browse
    manage.shop_settings(config.state_dir, settings)
    url = manage.env(config.state_dir)["GAMEDAY_SHOP_URL"]
    step = bench_browse(url, seconds=args.seconds, concurrency=concurrency)["steps"].get("browse", {})
    return {"rps": float(step.get("rps", 0.0)), "p95": float(step.get("p95_ms", 0.0))}


def _compare(config, args, concurrency: int, rounds: int) -> dict:
    """Browse through the relay and directly, alternating `rounds` times; medians per path."""
    runs = {"relay": [], "direct": []}
    try:
        for _ in range(rounds):
            runs["relay"].append(_browse(config, args, {}, concurrency))
            runs["direct"].append(_browse(config, args, _direct_settings(config), concurrency))
    finally:
        manage.shop_settings(config.state_dir, {})
    return {k: {m: statistics.median(r[m] for r in v) for m in ("rps", "p95")} for k, v in runs.items()}


def relay_cost(config, args, figure, rounds: int = 2) -> None:
    """Throughput at capacity (32 connections: every CPU busy, so the relay's CPU is taken from
    the shop and the servers), and the latency it adds below capacity (4 connections), where a
    p95 is the relay's own delay rather than the queueing of a saturated machine."""
    full = _compare(config, args, 32, rounds)
    figure("network", "browse req/s direct (median, 32 conns)", full["direct"]["rps"])
    figure("network", "browse req/s through the relay (median, 32 conns)", full["relay"]["rps"])
    figure("network", "browse throughput relay / direct", full["relay"]["rps"] / max(full["direct"]["rps"], 1e-9),
           "target >= 0.9")
    figure("network", "browse p95 ms direct / relay at capacity (32 conns)",
           f"{full['direct']['p95']:.2f} / {full['relay']['p95']:.2f}")
    light = _compare(config, args, BELOW_CAPACITY_CONNECTIONS, rounds)
    figure("network", f"browse p95 ms direct / relay below capacity ({BELOW_CAPACITY_CONNECTIONS} conns)",
           f"{light['direct']['p95']:.2f} / {light['relay']['p95']:.2f}")
    figure("network", "browse p95 added by the relay below capacity, ms",
           light["relay"]["p95"] - light["direct"]["p95"], "target <= 1 ms")


def _ping_ms(address: str, port: int, password: str, n: int = 2000) -> list:
    import redis
    client = redis.Redis(host=address, port=port, password=password, socket_timeout=5)
    try:
        client.ping()
        times = []
        for _ in range(n):
            start = time.perf_counter()
            client.ping()
            times.append((time.perf_counter() - start) * 1000)
        return times
    finally:
        client.close()


def ping_cost(config, figure, rounds: int = 3) -> None:
    """One Redis connection's PING round trip through the relay and directly, alternating: the
    relay's own latency, without the shop's noise."""
    password = manage.env(config.state_dir)["GAMEDAY_REDIS_PASSWORD"]
    public = config.cache_node_address(1)
    runs = {"relay": [], "direct": []}
    for _ in range(rounds):
        runs["relay"] += _ping_ms(public, config.cache_primary_port, password)
        runs["direct"] += _ping_ms(server_address(public), config.cache_primary_port, password)
    q = {k: statistics.quantiles(v, n=100) for k, v in runs.items()}
    figure("network", "Redis PING p50 ms direct / relay", f"{q['direct'][49]:.3f} / {q['relay'][49]:.3f}")
    figure("network", "Redis PING p95 ms direct / relay", f"{q['direct'][94]:.3f} / {q['relay'][94]:.3f}")
    figure("network", "Redis PING p95 added by the relay, ms", q["relay"][94] - q["direct"][94], "target <= 1 ms")


def planned_failovers(config, rounds: int, figure) -> None:
    """`rounds` planned failovers of each service under acknowledged writes through the relay."""
    env = manage.env(config.state_dir)
    for kind, route in (("db", "/_lab/db-failover?id=shop-db"), ("cache", "/_lab/cache-failover?id=shop-cache")):
        writer = EndpointWriter(env, kind, wait_replicas=1 if kind == "cache" else 0, table="net_bench_rpo")
        writer.start()
        for _ in range(rounds):
            manage.call(config, route, method="POST", timeout=120)
            manage.call(config, "/_lab/wait-idle?timeout=120", method="POST", timeout=130)
        writer.finish()
        figure("network", f"{kind} planned failovers through the relay", rounds)
        figure("network", f"{kind} acknowledged writes / lost", f"{len(writer.acked)} / {len(writer.lost())}",
               "target 0 lost")


def partition_trials(config, rounds: int, figure) -> None:
    from network_helpers import partition_then_crash
    env = manage.env(config.state_dir)
    for kind in ("db", "cache"):
        trials = [partition_then_crash(config, env, kind) for _ in range(rounds)]
        unwritable = [t["unwritable_seconds"] for t in trials]
        figure("network", f"{kind} partition-then-crash trials", rounds)
        figure("network", f"{kind} acknowledged writes lost (all trials)", sum(len(t["lost"]) for t in trials),
               "target 0")
        figure("network", f"{kind} writes acknowledged during the cut (all trials)",
               sum(t["acknowledged_during_cut"] for t in trials), "target 0")
        figure("network", f"{kind} unwritable seconds min / median / max",
               f"{min(unwritable):.2f} / {statistics.median(unwritable):.2f} / {max(unwritable):.2f}")
        figure("network", f"{kind} unwritable seconds per trial", " ".join(f"{u:.1f}" for u in unwritable))


def bench_network(config, args, figure) -> None:
    began = time.monotonic()
    figure("network", "machine load average (1 min) at the start", os.getloadavg()[0])
    ping_cost(config, figure)
    relay_cost(config, args, figure)
    planned_failovers(config, args.rounds, figure)
    partition_trials(config, args.rounds, figure)
    figure("network", "section seconds", time.monotonic() - began)


def run(ctx) -> None:
    bench_network(ctx.config, ctx.args, lambda _section, name, value, target="": ctx.figure(name, value, target))


def bound(args) -> float:
    """Relay-cost runs (two loads, two rounds, two paths), PINGs, and per round two failovers
    and two partition trials."""
    return 8 * args.seconds + 150 + args.rounds * 4 * 30


SECTION = Section("network", run, bound, needs_lab=True,
                  about="the relay's cost against the direct path, and no acknowledged write lost through it")
