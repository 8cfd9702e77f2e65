"""Benchmark section `capacity`: distributed load (a Locust master with 1 and 2 workers) against
the bare FastHttpUser, the full journey's requests and orders per second, and the largest user
count at which `gameday run gameday --workers 2` still passes, each with what used the CPU.
Figures on a shared machine are noisy: the load average is recorded with them. Called by
scripts/bench.py (`--only capacity`; `--capacity-users 0` runs only the game-day ladder).
"""
import os

from gameday.loadbench import capacity, gameday_capacity, predicted_rps
from woolab import manage


def _load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _cpu_cost(figure, workers: int, row: dict) -> None:
    """CPU milliseconds per request: what each request costs the load generator and the shop.
    Unlike requests/s these hardly change when others share the machine."""
    gen, shop, lab = row["generator_ms"], row["shop_ms"], row["lab_ms"]
    if not gen["bare"] or not gen["journey"]:
        return
    figure("capacity", f"{workers} worker(s): load generator CPU ms/request bare, journey, full",
           f"{gen['bare']:.3f} {gen['journey']:.3f} {gen['full']:.3f}")
    figure("capacity", f"{workers} worker(s): journey / bare by CPU cost",
           round(gen["bare"] / gen["journey"], 3), "target >= 0.70 (bare ms / journey ms)")
    figure("capacity", f"{workers} worker(s): shop CPU ms/request browse, full journey",
           f"{shop['journey']:.3f} {shop['full']:.3f}")
    limit = "shop and lab" if lab["journey"] > gen["journey"] else "load generator"
    figure("capacity", f"{workers} worker(s): predicted idle-machine journey req/s",
           predicted_rps(gen["journey"], lab["journey"], workers),
           f"{os.cpu_count()} cores; costlier per request: {limit}")


def bench_capacity(config, args, figure, figures, cpu_shares) -> None:
    """The capacity figures; `cpu_shares(state_dir, label)` meters who used the CPU in a run."""
    host = manage.env(config.state_dir)["GAMEDAY_SHOP_URL"]
    figure("capacity", "machine load average 1/5/15 min at start",
           _load_average(), f"{os.cpu_count()} cores")
    rows = {}
    if args.capacity_users:
        rows = capacity(host, users=args.capacity_users, seconds=int(args.seconds),
                        rounds=args.capacity_rounds, out_dir=str(args.work / "capacity"),
                        observe=lambda label: cpu_shares(config.state_dir, label))["by_workers"]
    for workers, row in rows.items():
        figure("capacity", f"{workers} worker(s): bare FastHttpUser req/s", row["bare_rps"])
        figure("capacity", f"{workers} worker(s): journey (browse step) req/s", row["journey_rps"])
        figure("capacity", f"{workers} worker(s): journey / bare", row["ratio"], "target >= 0.70")
        figure("capacity", f"{workers} worker(s): full journey req/s", row["full_rps"])
        figure("capacity", f"{workers} worker(s): full journey orders/s",
               row["full_orders_per_second"], row["cpu"]["full"] or "")
        figures["capacity"][f"{workers} worker(s): CPU shares"] = row["cpu"]
        _cpu_cost(figure, workers, row)
    if rows.get(1, {}).get("journey_rps") and 2 in rows:
        figure("capacity", "journey req/s, 2 workers / 1 worker",
               round(rows[2]["journey_rps"] / rows[1]["journey_rps"], 3),
               "target >= 1.6 while the shop is not the bottleneck: " + (rows[2]["cpu"]["journey"] or ""))
    if rows.get(1, {}).get("generator_ms", {}).get("journey") and 2 in rows:
        one, two = (predicted_rps(rows[w]["generator_ms"]["journey"], rows[w]["lab_ms"]["journey"], w)
                    for w in (1, 2))
        figure("capacity", "predicted idle-machine journey req/s, 2 workers / 1 worker",
               round(two / one, 3) if one else 0.0,
               f"{one:.0f} -> {two:.0f} req/s from CPU cost; target >= 1.6 while the shop is not "
               "the bottleneck")
    figure("capacity", "machine load average 1/5/15 min after the Locust runs",
           _load_average())
    ladder = gameday_capacity(str(config.state_dir), ladder=args.capacity_ladder,
                              reports_dir=str(args.work / "capacity-runs"),
                              observe=lambda label: cpu_shares(config.state_dir, label))
    for run in ladder["runs"]:
        figure("capacity", f"game day, 2 workers, {run['users']} users", run["verdict"],
               f"{run['users_peak']} users at most at once, {run['requests_per_second'] or 0:.0f} "
               "req/s before the faults; "
               f"busiest {run['limit']}: {run['cpu']}")
        figures["capacity"][f"game day {run['users']} users: reasons"] = run["reasons"]
    figure("capacity", "largest user count at which the game day passes",
           ladder["largest_passing_users"] or 0,
           f"ladder {list(args.capacity_ladder)}; load average now "
           + _load_average())
