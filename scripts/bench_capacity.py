"""Benchmark section `capacity`: distributed load (a Locust master with 1 and 2 workers) against
the bare FastHttpUser, the full journey's requests and orders per second, and the largest user
count at which `gameday run gameday --workers 2` still passes, each with what used the CPU.
Figures on a shared machine are noisy: the load average is recorded with them
(`--only capacity`; `--capacity-users 0` runs only the game-day ladder).
"""
import os

from benchkit.core import Context, Section, load_average
from benchkit.locustruns import GAMEDAY_SECONDS, capacity, gameday_capacity, predicted_rps
from benchkit.machine import CpuShares
from woolab import manage


def _cpu_cost(ctx: Context, workers: int, row: dict) -> None:
    """CPU milliseconds per request: what each request costs the load generator and the shop.
    Unlike requests/s these hardly change when others share the machine."""
    gen, shop, lab = row["generator_ms"], row["shop_ms"], row["lab_ms"]
    if not gen["bare"] or not gen["journey"]:
        return
    ctx.figure(f"{workers} worker(s): load generator CPU ms/request bare, journey, full",
           f"{gen['bare']:.3f} {gen['journey']:.3f} {gen['full']:.3f}")
    ctx.figure(f"{workers} worker(s): journey / bare by CPU cost",
           round(gen["bare"] / gen["journey"], 3), "target >= 0.70 (bare ms / journey ms)")
    ctx.figure(f"{workers} worker(s): shop CPU ms/request browse, full journey",
           f"{shop['journey']:.3f} {shop['full']:.3f}")
    limit = "shop and lab" if lab["journey"] > gen["journey"] else "load generator"
    ctx.figure(f"{workers} worker(s): predicted idle-machine journey req/s",
           predicted_rps(gen["journey"], lab["journey"], workers),
           f"{os.cpu_count()} cores; costlier per request: {limit}")


def _locust_runs(ctx: Context) -> None:
    """Bare, journey and full-journey Locust runs with 1 and 2 workers."""
    config, args = ctx.config, ctx.args
    host = manage.env(config.state_dir)["GAMEDAY_SHOP_URL"]
    ctx.figure("machine load average 1/5/15 min at start",
           load_average(), f"{os.cpu_count()} cores")
    rows = {}
    if args.capacity_users:
        rows = capacity(host, users=args.capacity_users, seconds=int(args.seconds),
                        rounds=args.capacity_rounds, out_dir=str(ctx.work / "locust"),
                        observe=lambda label: CpuShares(config.state_dir, label))["by_workers"]
    for workers, row in rows.items():
        ctx.figure(f"{workers} worker(s): bare FastHttpUser req/s", row["bare_rps"])
        ctx.figure(f"{workers} worker(s): journey (browse step) req/s", row["journey_rps"])
        ctx.figure(f"{workers} worker(s): journey / bare", row["ratio"], "target >= 0.70")
        ctx.figure(f"{workers} worker(s): full journey req/s", row["full_rps"])
        ctx.figure(f"{workers} worker(s): full journey orders/s",
               row["full_orders_per_second"], row["cpu"]["full"] or "")
        ctx.note(f"{workers} worker(s): CPU shares", row["cpu"])
        _cpu_cost(ctx, workers, row)
    if rows.get(1, {}).get("journey_rps") and 2 in rows:
        ctx.figure("journey req/s, 2 workers / 1 worker",
               round(rows[2]["journey_rps"] / rows[1]["journey_rps"], 3),
               "target >= 1.6 while the shop is not the bottleneck: " + (rows[2]["cpu"]["journey"] or ""))
    if rows.get(1, {}).get("generator_ms", {}).get("journey") and 2 in rows:
        one, two = (predicted_rps(rows[w]["generator_ms"]["journey"], rows[w]["lab_ms"]["journey"], w)
                    for w in (1, 2))
        ctx.figure("predicted idle-machine journey req/s, 2 workers / 1 worker",
               round(two / one, 3) if one else 0.0,
               f"{one:.0f} -> {two:.0f} req/s from CPU cost; target >= 1.6 while the shop is not "
               "the bottleneck")
    ctx.figure("machine load average 1/5/15 min after the Locust runs",
           load_average())


def _gameday_ladder(ctx: Context) -> None:
    """`gameday run gameday` with more and more users until a run does not pass."""
    config, args = ctx.config, ctx.args
    ladder = gameday_capacity(str(config.state_dir), ladder=args.capacity_ladder,
                              reports_dir=str(ctx.work / "runs"),
                              observe=lambda label: CpuShares(config.state_dir, label))
    for run in ladder["runs"]:
        ctx.figure(f"game day, 2 workers, {run['users']} users", run["verdict"],
               f"{run['users_peak']} users at most at once, {run['requests_per_second'] or 0:.0f} "
               "req/s before the faults; "
               f"busiest {run['limit']}: {run['cpu']}")
        ctx.note(f"game day {run['users']} users: reasons", run["reasons"])
    ctx.figure("largest user count at which the game day passes",
           ladder["largest_passing_users"] or 0,
           f"ladder {list(args.capacity_ladder)}; load average now "
           + load_average())


def run(ctx: Context) -> None:
    _locust_runs(ctx)
    _gameday_ladder(ctx)


def bound(args) -> float:
    """Six Locust runs per round and worker count, then the whole ladder at its slowest."""
    locust = 2 * 3 * args.capacity_rounds * (args.seconds + 90) if args.capacity_users else 0
    return locust + len(args.capacity_ladder) * (GAMEDAY_SECONDS + 60)


SECTION = Section("capacity", run, bound, needs_lab=True,
                  about="distributed Locust load and the largest game day that passes")
