"""Benchmark section `report`: `write_report` on a synthetic 10-minute, 200-user game day
(benchkit/synthetic.py). `python scripts/bench_report.py [DIR]` prints the figures as JSON.
"""
import json
import os
import sys
import tempfile
import time
from typing import Any, Dict, Optional

from benchkit.core import Context, Section
from benchkit.synthetic import synthetic_run_dir

__all__ = ["bench"]


def bench(seconds: int = 600, users: int = 200, run_dir: Optional[str] = None) -> Dict[str, Any]:
    """Time write_report on a synthetic run: seconds, HTML bytes, and the run's size."""
    from gameday.report.render import write_report
    work = run_dir or tempfile.mkdtemp(prefix="gameday-report-bench-")
    synthetic_run_dir(work, seconds=seconds, users=users)
    began = time.perf_counter()
    paths = write_report(work)
    elapsed = time.perf_counter() - began
    with open(os.path.join(work, "timeline.jsonl")) as fh:
        lines = sum(1 for _ in fh)
    with open(os.path.join(work, "orders.jsonl")) as fh:
        orders = sum(1 for _ in fh)
    return {"run_dir": work, "seconds": seconds, "users": users, "timeline_lines": lines,
            "orders": orders, "write_report_seconds": round(elapsed, 3),
            "html_bytes": os.path.getsize(paths["report.html"]),
            "md_bytes": os.path.getsize(paths["report.md"]),
            "chart_bytes": sum(os.path.getsize(p) for p in paths["charts"])}


def run(ctx: Context) -> None:
    seconds, users = (60, 20) if ctx.smoke else (600, 200)
    result = bench(seconds=seconds, users=users, run_dir=str(ctx.work / "run"))
    ctx.figure(f"write_report seconds ({seconds // 60} min, {users} users)",
               float(result["write_report_seconds"]), "target <= 5 s (10 min, 200 users)")
    ctx.figure("report.html bytes", result["html_bytes"], "target < 2 MB")
    ctx.figure("timeline lines / orders in the run", f"{result['timeline_lines']}/{result['orders']}")


SECTION = Section("report", run, lambda _args: 300.0, about="render time and size of a large run's report")

if __name__ == "__main__":
    print(json.dumps(bench(run_dir=sys.argv[1] if len(sys.argv) > 1 else None), indent=2))
