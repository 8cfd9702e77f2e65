"""Overhead benchmark: the shopper journey file (with its recorder) against a bare FastHttpUser.

Both hit the same endpoint: the journey runs with only its ``browse`` step and no think time, so
the difference is the journey's own work (session headers, JSON checks) plus the recorder. The two
files run one after the other, alternating for ``rounds`` rounds, against the same running shop;
the result is each one's mean requests/s and the ratio (target: journey >= 0.7 x bare).
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from chaosext.load.process import DEFAULT_LOCUSTFILE, check_host

__all__ = ["run_side_by_side", "run_locust_file", "BARE_LOCUSTFILE"]

BARE_LOCUSTFILE = str(Path(DEFAULT_LOCUSTFILE).with_name("bare.py"))
BROWSE_PATH = "/wp-json/wc/store/v1/products?per_page=20&page=1"


def run_locust_file(locustfile: str, host: str, users: int, seconds: int, out_dir: str,
                    env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Run one headless Locust file; returns requests, failures, requests/s and p50/p95 (ms)."""
    os.makedirs(out_dir, exist_ok=True)
    prefix = os.path.join(out_dir, "locust")
    cmd = [sys.executable, "-m", "locust", "-f", locustfile, "--headless", "-u", str(users),
           "-r", str(users), "--run-time", f"{int(seconds)}s", "--host", host,
           "--only-summary", "--csv", prefix, "--exit-code-on-error", "0"]
    full_env = {**os.environ, "GAMEDAY_RUN_DIR": out_dir, **(env or {})}
    with open(os.path.join(out_dir, "locust.log"), "wb") as log:
        subprocess.run(cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT, check=True,
                       timeout=seconds + 60, start_new_session=True)
    with open(prefix + "_stats.csv", newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    return {"requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
            "rps": round(float(row["Requests/s"]), 1), "p50_ms": float(row["50%"]),
            "p95_ms": float(row["95%"])}


def run_side_by_side(host: str, users: int = 32, seconds: int = 10, rounds: int = 2,
                     path: str = BROWSE_PATH, out_dir: Optional[str] = None) -> Dict[str, Any]:
    """Alternate bare and journey runs against ``host``; return both rates and their ratio."""
    check_host(host, allow_remote=False)
    out_dir = out_dir or tempfile.mkdtemp(prefix="gameday-bench-")
    journey_env = {"SHOPPER_BROWSE_WEIGHT": "1", "SHOPPER_PRODUCT_WEIGHT": "0",
                   "SHOPPER_ADD_TO_CART_WEIGHT": "0", "SHOPPER_VIEW_CART_WEIGHT": "0",
                   "SHOPPER_CHECKOUT_WEIGHT": "0", "SHOPPER_THINK_MIN": "0",
                   "SHOPPER_THINK_MAX": "0"}
    runs: Dict[str, List[Dict[str, Any]]] = {"bare": [], "journey": []}
    for i in range(rounds):
        runs["bare"].append(run_locust_file(BARE_LOCUSTFILE, host, users, seconds,
                                            os.path.join(out_dir, f"bare-{i}"),
                                            {"BARE_PATH": path}))
        runs["journey"].append(run_locust_file(DEFAULT_LOCUSTFILE, host, users, seconds,
                                               os.path.join(out_dir, f"journey-{i}"), journey_env))
    bare = sum(r["rps"] for r in runs["bare"]) / rounds
    journey = sum(r["rps"] for r in runs["journey"]) / rounds
    return {"bare_rps": round(bare, 1), "journey_rps": round(journey, 1),
            "ratio": round(journey / bare, 3) if bare else 0.0, "users": users,
            "seconds": seconds, "rounds": rounds, "runs": runs, "out_dir": out_dir}


if __name__ == "__main__":  # python -m gameday.loadbench http://127.0.0.1:15301
    import json
    print(json.dumps(run_side_by_side(sys.argv[1]), indent=2))
