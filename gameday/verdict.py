"""The verdict of a run: the report is written, its summary (from memory) becomes the verdict
table and the exit code (docs/exit-codes.md): 0 passed, 1 failed, 3 interrupted by the run
itself or refused by a guardrail during the run."""
import json
from pathlib import Path
from typing import Optional, Tuple

from .interrupt import EXIT_INTERRUPTED as EXIT_REFUSED, verdict_exit_code
from groundfloor import run_files

__all__ = ["journal_verdict", "finish", "guardrail_refusal", "verdict_table", "impairment_lines"]


def journal_verdict(run_dir: Path) -> Tuple[bool, str]:
    """(passed, why) from the journal alone: completed, not deviated."""
    try:
        journal = json.loads((run_dir / run_files.JOURNAL).read_text())
    except (OSError, ValueError):
        return False, "no journal was written"
    status, deviated = journal.get("status"), journal.get("deviated")
    if status == "completed" and not deviated:
        return True, "steady state held before and after the faults"
    return False, f"experiment {status}" + (" and deviated from its steady state" if deviated else "")


def finish(run_dir: Path, baseline: Optional[str] = None, tolerance: Optional[str] = None) -> int:
    """Write the report and print the verdict table; 0 only when the run passed, nothing was lost
    and (with `baseline`) no figure regressed."""
    from .report import write_report
    from .report.command import baseline_exit, baseline_lines
    passed, why = journal_verdict(run_dir)
    paths = write_report(str(run_dir), baseline=baseline, tolerance=tolerance)
    summary = paths["summary"]  # the summary the report was built from, not re-read from disk
    print("\n".join([verdict_table(summary)] + baseline_lines(summary)), flush=True)
    verdict = summary["verdict"] if passed or summary["verdict"] != "passed" else "failed"
    if summary["verdict_reasons"]:
        why = "; ".join(summary["verdict_reasons"])
    label = {"passed": "PASSED", "interrupted": "INTERRUPTED"}.get(verdict, "FAILED")
    print(f"gameday: {label}: {why}\nreport: {paths['report.html']}", flush=True)
    regressed = baseline_exit(summary)  # raises when the gate cannot decide
    refusal = guardrail_refusal(run_dir)
    if refusal:
        print(f"gameday: REFUSED by a guardrail during the run: {refusal}", flush=True)
        return EXIT_REFUSED
    return verdict_exit_code("failed" if verdict == "passed" and regressed else verdict)


def guardrail_refusal(run_dir: Path) -> Optional[str]:
    """The message of the first activity a guardrail refused during the run (None: none was)."""
    try:
        journal = json.loads((run_dir / run_files.JOURNAL).read_text())
    except (OSError, ValueError):
        return None
    entries = list(journal.get("run") or []) + list(journal.get("rollbacks") or [])
    for entry in entries:
        text = "".join(entry.get("exception") or []) if isinstance(entry, dict) else ""
        marker = "chaosext.errors.GuardrailRefused: "
        if marker in text:
            return text.split(marker, 1)[1].strip().splitlines()[0]
    return None


def impairment_lines(summary: dict) -> list:
    """Per impairment fault and journey step: errors and p95 before → during, seconds down,
    time to recover after the impairment's end (docs/reports.md, "Impairments")."""
    def ms(value):
        return "-" if value is None else f"{value:,.0f} ms"

    def ratio(value):
        return "-" if value is None else f"{value * 100:.1f} %"

    lines = []
    for fault in summary["faults"]:
        impact = fault.get("impairment_impact") or {}
        for step, f in (impact.get("steps") or {}).items():
            recovered = (f"recovered after {f['time_to_recover_seconds']:g} s" if f["recovered"]
                         else "NOT recovered within the run")
            lines.append(f"  {fault['fault']} on {fault['target']}: {step}: errors "
                         f"{ratio(f['baseline']['error_ratio'])} -> {ratio(f['during']['error_ratio'])}, "
                         f"p95 {ms(f['baseline']['p95_ms'])} -> {ms(f['during']['p95_ms'])}, "
                         f"down {f['unavailable_seconds']} s, {recovered}")
    return lines


def verdict_table(summary: dict) -> str:
    """Per fault: data-plane RTO, control plane, error ratio in the fault window, orders and carts lost."""
    def num(value, unit="", scale=1.0, digits=2):
        return "-" if value is None else f"{value * scale:.{digits}f}{unit}"

    rpo = summary["rpo"]
    rows = [("FAULT", "TARGET", "METHOD", "RTO", "CONTROL PLANE", "ERRORS IN WINDOW", "ORDERS LOST", "CARTS LOST")]
    for fault in summary["faults"]:
        rows.append((fault["fault"], fault["target"], fault["method"] or "-", num(fault["rto_seconds"], " s"),
                     num(fault["control_plane_seconds"], " s"),
                     num((fault.get("load") or {}).get("error_ratio"), " %", 100, 1),
                     num(rpo["orders_lost"], digits=0), num(rpo["carts_lost"], digits=0)))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines += impairment_lines(summary)
    lines += [f"  {f['fault']} on {f['target']}: {f['error']}" + (f" ({f['changed']})" if f.get("changed") else "")
              for f in summary["faults"] if f.get("status") == "failed" and f.get("error")]
    return f"verdict: {summary['verdict'].upper()}\n" + "\n".join(lines)
