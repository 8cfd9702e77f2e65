"""Reports of a game-day run: summary.json, report.html/.md, junit.xml, comparisons.

Entry points: `summarize(run_dir)` (the figures), `write_report(run_dir)` (all files),
`compare(run_a, run_b)` (side-by-side table), `report_command(...)` (the `gameday report` CLI),
`redact(obj)` (mask secrets in anything copied out of a journal).
"""
from gameday.report.command import report_command
from gameday.report.compare import compare
from gameday.report.redact import redact
from gameday.report.render import write_report
from gameday.report.sources import ReportError
from gameday.report.summary import summarize

__all__ = ["summarize", "write_report", "compare", "report_command", "redact", "ReportError"]
