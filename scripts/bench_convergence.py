"""Benchmark section `convergence`: the lab never stays broken on a busy machine.

Both cores are kept busy by two CPU-bound loops, shoppers browse, fill carts and check out, and
acknowledged writes go to the DB and the cache endpoints the whole time, while `gameday lab
failover db` and `gameday lab failover cache` run back to back (30 each by default). Measured:
failovers that completed, acknowledged writes lost, how long the lab took to be whole again after
each failover, and whether it ended fully redundant.
"""
import contextlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from groundfloor.supervisor import spawn, stop_pid
from woolab import manage
from woolab.measure import EndpointWriter

ROOT = Path(__file__).resolve().parent.parent
CONVERGENCE_BOUND = 120.0  # seconds a failover may take to leave the lab whole again
BURN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"


@contextlib.contextmanager
def busy_machine(seconds: float, out_dir: Path, host: str, users: int = 16):
    """Two CPU-bound loops and a headless Locust shopper load, all bounded by `seconds` and
    stopped when the block ends."""
    out_dir.mkdir(parents=True, exist_ok=True)
    burners = [spawn([sys.executable, "-c", BURN.format(seconds=seconds)], out_dir / f"burn-{n}.log")
               for n in range(2)]
    locust = spawn([sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "shopper.py"), "--headless",
                    "-u", str(users), "-r", str(users), "--run-time", f"{int(seconds)}s", "--host", host,
                    "--only-summary", "--exit-code-on-error", "0"], out_dir / "locust.log",
                   {**os.environ, "GAMEDAY_RUN_DIR": str(out_dir)})
    try:
        yield
    finally:
        for proc in [locust, *burners]:
            stop_pid(proc.pid)
            proc.wait()


def _failover(state_dir: Path, kind: str) -> tuple:
    """One `gameday lab failover KIND` (it waits for the failover); (exit code, seconds, last line)."""
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "gameday.cli", "lab", "failover", kind, "--state-dir",
                           str(state_dir)], capture_output=True, text=True, timeout=CONVERGENCE_BOUND + 60)
    last = (done.stdout + done.stderr).strip().splitlines()[-1:] or [""]
    return done.returncode, time.monotonic() - began, last[0]


def _rounds(config, kind: str, rounds: int, figure) -> bool:
    """`rounds` failovers of one kind; returns whether the lab was whole after every one."""
    env = manage.env(config.state_dir)
    writer = EndpointWriter(env, kind, wait_replicas=1 if kind == "cache" else 0, table="bench_converge")
    writer.start()
    completed, whole_after, problems = 0, [], []
    for _ in range(rounds):
        code, _seconds, last = _failover(config.state_dir, kind)
        completed += code == 0
        if code != 0:
            problems.append(last)
        began = time.monotonic()
        result = manage.converged(config.state_dir, CONVERGENCE_BOUND)
        whole_after.append(time.monotonic() - began)
        if not result["converged"]:
            problems.append("; ".join(result["problems"]))
            manage.repair(config.state_dir)
    time.sleep(0.3)
    writer.finish()
    label = "DB" if kind == "db" else "cache"
    figure("convergence", f"{label} failovers completed (busy machine)", f"{completed}/{rounds}",
           f"target {rounds}/{rounds}")
    figure("convergence", f"{label} acknowledged writes", len(writer.acked))
    figure("convergence", f"{label} acknowledged writes lost", len(writer.lost()), "target 0")
    figure("convergence", f"{label} whole again after failover, max seconds", max(whole_after),
           f"bound {CONVERGENCE_BOUND:.0f} s")
    figure("convergence", f"{label} whole again after failover, median seconds", statistics.median(whole_after))
    for problem in problems[:3]:
        print(f"    {label}: {problem[:160]}")
    return not problems


def bench_convergence(config, args, figure) -> None:
    rounds = args.stress_failovers
    host = manage.env(config.state_dir)["GAMEDAY_SHOP_URL"]
    load_before = os.getloadavg()[0]
    with busy_machine(rounds * 2 * 20 + 60, args.work / "convergence", host):
        ok = all([_rounds(config, kind, rounds, figure) for kind in ("db", "cache")])
        load_during = os.getloadavg()[0]
    final = manage.converged(config.state_dir, CONVERGENCE_BOUND)
    figure("convergence", "load average before / during", f"{load_before:.1f} / {load_during:.1f}")
    figure("convergence", "lab fully redundant at the end", "yes" if final["converged"] and ok else
           "no: " + "; ".join(final["problems"]), "target yes")
