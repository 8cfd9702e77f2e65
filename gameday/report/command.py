"""What `gameday report` runs: write the report of a run, or compare runs side by side."""
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, TextIO, Union

from gameday.report.baseline import describe
from gameday.report.compare import compare
from gameday.report.render import write_report
from gameday.report.sources import ReportError
from groundfloor import run_files

__all__ = ["report_command", "baseline_lines", "baseline_exit"]


def baseline_lines(summary: Dict[str, Any]) -> List[str]:
    """What the baseline gate found, for the terminal: the verdict line, then regressions."""
    gate = summary.get("baseline")
    if not gate or gate.get("error"):
        return []
    failed = [c for c in gate["checks"] if c["outcome"] == "failed"]
    head = (f"baseline ({describe(gate)}): "
            + (f"REGRESSED in {len(failed)} figure(s)" if failed else "no regression"))
    return [head] + [f"  {c['fault'] + ': ' if c['fault'] else ''}{c['message']}" for c in failed]


def baseline_exit(summary: Dict[str, Any]) -> int:
    """1 when the gate found a regression; raises ReportError when it could not decide."""
    gate = summary.get("baseline")
    if gate and gate.get("error"):
        raise ReportError(gate["error"])
    return 1 if gate and gate["regressed"] else 0


def report_command(run_dir: str, compare_with: Union[None, str, Sequence[str]] = None, gate: bool = False,
                   rto_threshold: Any = None, out: Optional[TextIO] = None,
                   baseline: Optional[str] = None, tolerance: Optional[str] = None) -> int:
    """Write the report of `run_dir` (or, with `compare_with`, print run_dir vs those runs) → exit code.

    Prints where the report is and the verdict. Returns 0, or 1 with `gate` when the verdict is
    not "passed" (CI gate), or 1 with `baseline` when a figure regressed beyond `tolerance`
    (see baseline.py). A path that is not a run directory, or a baseline the gate cannot
    decide on, raises ReportError (a GamedayError: print its message on one line) — the
    report is still written in the second case.
    """
    out = out or sys.stdout
    if compare_with:
        others = [compare_with] if isinstance(compare_with, str) else list(compare_with)
        out.write(compare(run_dir, *others))
        return 0
    paths = write_report(run_dir, rto_threshold=rto_threshold, baseline=baseline,
                         tolerance=tolerance)
    with open(paths[run_files.SUMMARY], encoding="utf-8") as fh:
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
    for line in baseline_lines(summary):
        out.write(line + "\n")
    out.write(f"report: {os.path.abspath(paths['report.html'])}\n")
    regressed = baseline_exit(summary)
    return 1 if (gate and summary["verdict"] != "passed") or regressed else 0
