"""Benchmark of `gameday history` over a reports directory of synthetic runs.

`synthetic_history(dir, runs)` writes run directories holding only a summary.json, made from
one real summary of the synthetic game day (bench.synthetic_run_dir) with the figures varied
run by run: two experiments, lab and AWS, a slow drift, a few failed runs, a run regressed by
the baseline gate, some old-schema summaries and one damaged file. Run
`python -m gameday.report.history_bench [DIR]`.
"""
import copy
import json
import os
import random
import sys
import tempfile
import time
from typing import Any, Dict, Optional

from groundfloor.timefmt import iso
from gameday.report.bench import START, synthetic_run_dir
from gameday.report.summary import summarize

__all__ = ["synthetic_history", "bench_history"]

DAY = 86400.0


def _variant(base: Dict[str, Any], i: int, rng: random.Random) -> Dict[str, Any]:
    summary = copy.deepcopy(base)
    start = START - (200 - i) * DAY / 2
    summary.update(run_id=f"run-{i:03d}", start=iso(start), end=iso(start + 120))
    aws = i % 4 == 3
    summary["target"].update(kind="aws" if aws else "lab", timing_profile="aws" if aws else "fast",
                             shop_settings={"retry": "false"} if i % 10 == 5 else {})
    if i % 2:
        summary["experiment"]["title"] = "Database and cache failover (nightly)"
    drift = 1 + i / 400  # the failover gets slowly slower
    for fault in summary["faults"]:
        scale = (40 if aws else 1) * drift * rng.uniform(0.9, 1.1)
        fault["rto_seconds"] = round((fault["rto_seconds"] or 2.0) * scale, 3)
        impact = fault.get("impact") or {}
        impact["error_seconds"] = max(0, int(rng.gauss(3 * drift, 1)))
        impact["failed_checkouts"] = max(0, int(rng.gauss(6 * drift, 2)))
    if i % 17 == 0:
        summary["verdict"] = "deviated"
    if i % 23 == 0:
        summary["baseline"] = {"regressed": True, "checks": []}
    if i % 40 == 1:  # an old version's summary: no shopper impact, no profile
        summary["schema"] = "failover-gameday/report-summary/1"
        for fault in summary["faults"]:
            fault.pop("impact", None)
        summary["target"].pop("timing_profile")
    return summary


def synthetic_history(reports: str, runs: int = 200, seed: int = 11) -> str:
    """Write `runs` run directories (summary.json only; one damaged) under `reports`."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="gameday-history-src-") as src:
        base = summarize(synthetic_run_dir(os.path.join(src, "run"), seconds=120, users=20))
    for i in range(runs):
        run_dir = os.path.join(reports, f"run-{i:03d}")
        os.makedirs(run_dir, exist_ok=True)
        text = json.dumps(_variant(base, i, rng))
        if i == runs // 2:
            text = text[: len(text) // 3]  # cut short, as by a failed artifact upload
        with open(os.path.join(run_dir, "summary.json"), "w") as fh:
            fh.write(text)
    return reports


def bench_history(runs: int = 200, reports: Optional[str] = None) -> Dict[str, Any]:
    """Time `write_history` over `runs` synthetic runs: seconds and index.html bytes."""
    from gameday.history import write_history
    work = reports or tempfile.mkdtemp(prefix="gameday-history-bench-")
    synthetic_history(work, runs)
    began, cpu = time.perf_counter(), time.process_time()
    result = write_history(work)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    return {"reports": work, "runs": len(result["runs"]),
            "unreadable": sum(1 for r in result["runs"] if r.problem),
            "history_seconds": round(elapsed, 3), "history_cpu_seconds": round(cpu, 3),
            "page_bytes": os.path.getsize(result["path"])}


if __name__ == "__main__":
    print(json.dumps(bench_history(reports=sys.argv[1] if len(sys.argv) > 1 else None), indent=2))
