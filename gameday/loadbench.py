"""Load benchmarks: the shopper journey file against a bare FastHttpUser, in one process or as a
Locust master with workers, and the largest game day the lab still passes.

- :func:`run_side_by_side` — overhead: the journey file restricted to its ``browse`` step (no
  think time, so the difference is the journey's own work plus the recorder) against
  ``loadtests/bare.py`` hitting the same endpoint, alternating (target: journey ≥ 0.7 × bare).
- :func:`capacity` — the same pair plus the full journey (every step, checkout included) at each
  worker count: how far distributed mode scales on this machine (target: 2 workers ≥ 1.6 × 1
  worker while the shop is not the bottleneck).
- :func:`gameday_capacity` — ``gameday run gameday --workers N --users U`` for growing ``U``
  until a run no longer passes.

Every function takes ``observe(label)``, a context manager factory that watches who used the CPU
during that run (``scripts/bench.py`` passes its CPU-share meter), so each figure says what
limited it. Figures measured on a busy machine are noisy: the caller records the load average.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from chaosext.load.settings import DEFAULT_LOCUSTFILE, check_host, free_port
from chaosext.load.timeline import read_orders
from groundfloor.supervisor import spawn, stop_pid

__all__ = ["run_side_by_side", "run_locust_file", "capacity", "gameday_capacity",
           "predicted_rps", "BARE_LOCUSTFILE"]

BARE_LOCUSTFILE = str(Path(DEFAULT_LOCUSTFILE).with_name("bare.py"))
BROWSE_PATH = "/wp-json/wc/store/v1/products?per_page=20&page=1"
NO_THINK = {"SHOPPER_THINK_MIN": "0", "SHOPPER_THINK_MAX": "0"}
BROWSE_ONLY = {"SHOPPER_BROWSE_WEIGHT": "1", "SHOPPER_PRODUCT_WEIGHT": "0",
               "SHOPPER_ADD_TO_CART_WEIGHT": "0", "SHOPPER_VIEW_CART_WEIGHT": "0",
               "SHOPPER_CHECKOUT_WEIGHT": "0", **NO_THINK}
Observe = Callable[[str], Any]


def _no_observer(_label: str):
    return contextlib.nullcontext()


def run_locust_file(locustfile: str, host: str, users: int, seconds: int, out_dir: str,
                    env: Optional[Dict[str, str]] = None, workers: int = 0) -> Dict[str, Any]:
    """Run one headless Locust file (alone, or as a master with ``workers`` local workers);
    returns requests, failures, requests/s, p50/p95 (ms) and acknowledged orders/s."""
    os.makedirs(out_dir, exist_ok=True)
    prefix = os.path.join(out_dir, "locust")
    cmd = [sys.executable, "-m", "locust", "-f", locustfile, "--headless", "-u", str(users),
           "-r", str(users), "--run-time", f"{int(seconds)}s", "--host", host,
           "--only-summary", "--csv", prefix, "--exit-code-on-error", "0"]
    full_env = {**os.environ, "GAMEDAY_RUN_DIR": out_dir, **(env or {})}
    started = []
    if workers:
        port = str(free_port())
        cmd += ["--master", "--expect-workers", str(workers), "--master-bind-host", "127.0.0.1",
                "--master-bind-port", port]
        worker_cmd = [sys.executable, "-m", "locust", "-f", locustfile, "--worker",
                      "--master-host", "127.0.0.1", "--master-port", port]
        started = [spawn(worker_cmd, Path(out_dir, f"locust-w{n}.log"),
                         {**full_env, "GAMEDAY_WORKER_ID": f"w{n}"})
                   for n in range(1, workers + 1)]
    try:
        with open(os.path.join(out_dir, "locust.log"), "wb") as log:
            subprocess.run(cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT, check=True,
                           timeout=seconds + 90, start_new_session=True)
    finally:
        for worker in started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(10)
            stop_pid(worker.pid)
            worker.wait()
    with open(prefix + "_stats.csv", newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    orders = len(read_orders(os.path.join(out_dir, "orders.jsonl")))
    return {"requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
            "rps": round(float(row["Requests/s"]), 1), "p50_ms": float(row["50%"]),
            "p95_ms": float(row["95%"]), "orders_per_second": round(orders / seconds, 1),
            "workers": workers}


def _mean(runs: List[Dict[str, Any]], key: str) -> float:
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(sum(values) / len(values), 3) if values else 0.0


def _note_cpu(run: Dict[str, Any], seen: Any) -> None:
    """What the observer saw, and CPU milliseconds per request of the load generator and of the
    lab's components: unlike requests/s, these hardly move when other work shares the machine."""
    run["cpu"] = getattr(seen, "text", None)
    seconds = getattr(seen, "cpu_seconds", None) or {}
    if run["requests"] and seconds:
        run["cpu_ms_per_request"] = {group: round(1000.0 * s / run["requests"], 3)
                                     for group, s in seconds.items()}
        run["generator_ms"] = run["cpu_ms_per_request"].get("load generator")
        run["shop_ms"] = run["cpu_ms_per_request"].get("shop")
        run["lab_ms"] = round(sum(ms for group, ms in run["cpu_ms_per_request"].items()
                                  if group != "load generator"), 3)


def run_side_by_side(host: str, users: int = 32, seconds: int = 10, rounds: int = 2,
                     path: str = BROWSE_PATH, out_dir: Optional[str] = None, workers: int = 0,
                     observe: Observe = _no_observer) -> Dict[str, Any]:
    """Alternate bare and journey runs against ``host``; return both rates and their ratio."""
    check_host(host, allow_remote=False)
    out_dir = out_dir or tempfile.mkdtemp(prefix="gameday-bench-")
    runs: Dict[str, List[Dict[str, Any]]] = {"bare": [], "journey": []}
    for i in range(rounds):
        for kind, locustfile, env in (("bare", BARE_LOCUSTFILE, {"BARE_PATH": path}),
                                      ("journey", DEFAULT_LOCUSTFILE, BROWSE_ONLY)):
            with observe(f"{kind} {workers} workers") as seen:
                run = run_locust_file(locustfile, host, users, seconds,
                                      os.path.join(out_dir, f"{kind}-w{workers}-{i}"), env, workers)
            _note_cpu(run, seen)
            runs[kind].append(run)
    bare, journey = _mean(runs["bare"], "rps"), _mean(runs["journey"], "rps")
    return {"bare_rps": bare, "journey_rps": journey,
            "ratio": round(journey / bare, 3) if bare else 0.0, "users": users, "workers": workers,
            "seconds": seconds, "rounds": rounds, "runs": runs, "out_dir": out_dir}


def capacity(host: str, users: int = 64, seconds: int = 10, rounds: int = 1,
             worker_counts: Sequence[int] = (1, 2), out_dir: Optional[str] = None,
             observe: Observe = _no_observer) -> Dict[str, Any]:
    """Bare, browse-only journey and full journey at each worker count, as much as they can."""
    out_dir = out_dir or tempfile.mkdtemp(prefix="gameday-capacity-")
    rows = {}
    for workers in worker_counts:
        pair = run_side_by_side(host, users, seconds, rounds, out_dir=out_dir, workers=workers,
                                observe=observe)
        full = []
        for i in range(rounds):
            with observe(f"full journey {workers} workers") as seen:
                run = run_locust_file(DEFAULT_LOCUSTFILE, host, users, seconds,
                                      os.path.join(out_dir, f"full-w{workers}-{i}"), NO_THINK,
                                      workers)
            _note_cpu(run, seen)
            full.append(run)
        rows[workers] = {"bare_rps": pair["bare_rps"], "journey_rps": pair["journey_rps"],
                         "ratio": pair["ratio"], "full_rps": _mean(full, "rps"),
                         "full_orders_per_second": _mean(full, "orders_per_second"),
                         "generator_ms": {"bare": _mean(pair["runs"]["bare"], "generator_ms"),
                                          "journey": _mean(pair["runs"]["journey"], "generator_ms"),
                                          "full": _mean(full, "generator_ms")},
                         "shop_ms": {"journey": _mean(pair["runs"]["journey"], "shop_ms"),
                                     "full": _mean(full, "shop_ms")},
                         "lab_ms": {"journey": _mean(pair["runs"]["journey"], "lab_ms"),
                                    "full": _mean(full, "lab_ms")},
                         "cpu": {"bare": pair["runs"]["bare"][-1]["cpu"],
                                 "journey": pair["runs"]["journey"][-1]["cpu"],
                                 "full": full[-1]["cpu"]}}
    return {"users": users, "seconds": seconds, "rounds": rounds, "by_workers": rows,
            "out_dir": out_dir}


def predicted_rps(generator_ms: float, lab_ms: float, workers: int,
                  cores: int = os.cpu_count() or 1) -> float:
    """Requests/s an otherwise idle machine of ``cores`` could sustain, from CPU cost per request:
    each Locust process uses at most one core, and the load generator and the lab share all."""
    if not generator_ms or not lab_ms:
        return 0.0
    return round(min(max(1, workers) * 1000.0 / generator_ms,
                     cores * 1000.0 / (generator_ms + lab_ms)), 1)


def gameday_capacity(state_dir: str, ladder: Sequence[int] = (60, 120, 240, 480),
                     workers: int = 2, reports_dir: Optional[str] = None,
                     observe: Observe = _no_observer, spawn_seconds: float = 4.0) -> Dict[str, Any]:
    """``gameday run gameday --workers N --users U`` up the ladder until a run does not pass.

    Every user is started within ``spawn_seconds`` (``--spawn-rate U / spawn_seconds``), inside
    the experiment's warm-up: with its own spawn rate (10/s) a large run would still be ramping
    up when the faults come, and judge the ramp instead of the load."""
    reports_dir = reports_dir or tempfile.mkdtemp(prefix="gameday-capacity-runs-")
    os.makedirs(reports_dir, exist_ok=True)
    gameday = str(Path(sys.executable).with_name("gameday"))
    env = {**os.environ, "GAMEDAY_REPORTS_DIR": reports_dir}
    runs = []
    for users in ladder:
        run_id = f"capacity-{workers}w-{users}u"
        with observe(f"game day {users} users") as seen, \
                open(os.path.join(reports_dir, run_id + ".log"), "wb") as log:
            code = subprocess.run([gameday, "run", "gameday", "--workers", str(workers),
                                   "--users", str(users), "--state-dir", str(state_dir),
                                   "--spawn-rate", f"{users / spawn_seconds:g}",
                                   "--keep-lab", "--run-id", run_id], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, timeout=1800).returncode
        summary_path = os.path.join(reports_dir, run_id, "summary.json")
        summary = json.loads(Path(summary_path).read_text()) if os.path.exists(summary_path) \
            else {"verdict": "no report", "verdict_reasons": [], "load": {}}
        load = json.loads(Path(reports_dir, run_id, "load-summary.json").read_text()) \
            if os.path.exists(os.path.join(reports_dir, run_id, "load-summary.json")) else {}
        runs.append({"users": users, "exit_code": code, "verdict": summary["verdict"],
                     "users_peak": load.get("users_peak"), "all_users_at": load.get("all_users_at"),
                     "reasons": summary["verdict_reasons"][:3],
                     "requests_per_second": (summary["load"].get("overall") or {}).get(
                         "baseline", {}).get("requests_per_second"),
                     "cpu": getattr(seen, "text", None), "limit": getattr(seen, "limit", None)})
        if code != 0:
            break
    passed = [r["users"] for r in runs if r["exit_code"] == 0]
    return {"workers": workers, "largest_passing_users": max(passed, default=None),
            "runs": runs, "reports_dir": reports_dir}


if __name__ == "__main__":  # python -m gameday.loadbench http://127.0.0.1:15301
    print(json.dumps(run_side_by_side(sys.argv[1]), indent=2))
