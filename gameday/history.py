"""`gameday history`: every run in a reports directory, as a table and as reports/index.html.

Scheduled game days and release gates are about change over time; each run's report stands
alone. This reads the summary.json of every run under a directory (as written by `gameday run`,
copied from CI artifacts, or synced from S3), prints one line per run and writes an index.html
beside them with trend charts per experiment, target and timing profile.
"""
import os
import sys
import tempfile
from typing import Optional, TextIO

from chaosext.errors import GamedayError
from gameday.report.figures import find_runs
from gameday.report.history_page import render_history_html, text_table

__all__ = ["history_command", "write_history"]

INDEX = "index.html"


def _reports_dir(given: Optional[str]) -> str:
    if given:
        return given
    from gameday.run import reports_dir
    return str(reports_dir())


def write_history(reports: str) -> dict:
    """Write `reports`/index.html; returns {"runs": [...], "path": ...}.

    Raises GamedayError for a missing directory or one without any run in it.
    """
    if not os.path.isdir(reports):
        raise GamedayError(f"no such reports directory: {reports}")
    runs = find_runs(reports)
    if not runs:
        raise GamedayError(f"no runs in {reports} (no run directory with a summary.json)")
    from gameday.suite.trend import trends_html
    page = render_history_html(runs, reports).replace(
        "\n</body></html>", trends_html(reports) + "\n</body></html>").encode("utf-8")
    path = os.path.join(reports, INDEX)
    fd, tmp = tempfile.mkstemp(dir=reports, prefix=".index-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(page)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; the page is meant to be shared
    os.replace(tmp, path)
    return {"runs": runs, "path": path}


def history_command(reports: Optional[str] = None, out: Optional[TextIO] = None) -> int:
    """Print the history table and write index.html → 0.

    An unreadable summary.json is listed (in the table and one line on stderr) and does not
    fail the command: one damaged artifact must not hide the other runs' history.
    """
    out = out or sys.stdout
    result = write_history(_reports_dir(reports))
    runs = result["runs"]
    out.write(text_table(runs) + "\n")
    for run in runs:
        if run.problem:
            print(f"gameday: warning: {run.path}: {run.problem}", file=sys.stderr)
    from gameday.suite.trend import trend_lines
    for line in trend_lines(_reports_dir(reports)):
        out.write(line + "\n")
    out.write(f"history: {len(runs)} runs, page {os.path.abspath(result['path'])}\n")
    return 0
