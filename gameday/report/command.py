"""What `gameday report` runs: write the report of a run, or compare runs side by side."""
import json
import os
import sys
from typing import Any, Optional, Sequence, TextIO, Union

from gameday.report.compare import compare
from gameday.report.render import write_report

__all__ = ["report_command"]


def report_command(run_dir: str, compare_with: Union[None, str, Sequence[str]] = None, gate: bool = False,
                   rto_threshold: Any = None, out: Optional[TextIO] = None) -> int:
    """Write the report of `run_dir` (or, with `compare_with`, print run_dir vs those runs) → exit code.

    Prints where the report is and the verdict. Returns 0, or 1 with `gate` when the verdict is
    not "passed" (CI gate). A path that is not a run directory raises ReportError (a
    GamedayError: print its message on one line).
    """
    out = out or sys.stdout
    if compare_with:
        others = [compare_with] if isinstance(compare_with, str) else list(compare_with)
        out.write(compare(run_dir, *others))
        return 0
    paths = write_report(run_dir, rto_threshold=rto_threshold)
    with open(paths["summary.json"], encoding="utf-8") as fh:
        summary = json.load(fh)
    out.write(f"verdict: {summary['verdict']}"
              + (f" ({'; '.join(summary['verdict_reasons'])})" if summary["verdict_reasons"]
                 else "") + "\n")
    for fault in summary["faults"]:
        load = fault.get("load") or {}
        ratio = load.get("error_ratio")
        out.write(f"  {fault['fault']} on {fault['target']}: RTO {fault['rto_seconds']} s, "
                  f"control plane {fault['control_plane_seconds']} s, error ratio in window "
                  f"{'—' if ratio is None else f'{ratio * 100:.1f} %'}\n")
    rpo = summary["rpo"]
    lost = "not checked" if rpo["orders_lost"] is None else rpo["orders_lost"]
    carts = "not recorded" if rpo["carts_lost"] is None else rpo["carts_lost"]
    out.write(f"  orders lost: {lost}, carts lost: {carts}\n")
    out.write(f"report: {os.path.abspath(paths['report.html'])}\n")
    return 1 if gate and summary["verdict"] != "passed" else 0
