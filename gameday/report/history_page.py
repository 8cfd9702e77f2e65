"""The run history as rows (for the terminal and the page) and as a self-contained index.html.

One row per run, newest first: experiment, target, timing profile, shop settings, verdict, RTO
per fault, seconds with shopper errors, failed checkouts, orders and carts lost, and a link to
its report. A run whose summary.json cannot be read is listed with the reason; the rest of the
page is still built.
"""
import base64
import html
import os
from typing import List, Sequence

from gameday.report.document import num
from gameday.report.figures import RunFigures
from gameday.report.render import CSS, VERDICT_COLOURS
from gameday.report.trends import trend_charts
from groundfloor import run_files

__all__ = ["HEADERS", "history_rows", "text_table", "render_history_html"]

HEADERS = ["start (UTC)", "run", "experiment", "target", "timing", "shop settings", "verdict",
           "RTO per fault (s)", "error s", "failed checkouts", "orders lost", "carts lost"]
PAGE_CSS = CSS + """
td{white-space:nowrap}td.long{white-space:normal;min-width:14em}
td.v{color:#fff;font-weight:bold}tr.bad td{background:#fff5f5}
.note{color:#57606a;font-size:.9em}
"""


def _fault_cells(run: RunFigures) -> str:
    if not run.faults:
        return "no fault"
    return "; ".join(f"{f.fault} {num(f.rto, 2)}" for f in run.faults)


def history_rows(runs: Sequence[RunFigures]) -> List[List[str]]:
    """Text cells per run (newest first); missing figures are "—", unreadable runs say why."""
    rows = []
    for run in reversed(runs):
        if run.problem:
            rows.append(["—", run.path or run.run_id, run.problem] + ["—"] * 3
                        + ["unreadable"] + ["—"] * 5)
            continue
        settings = " ".join(f"{k}={v}" for k, v in sorted(run.shop_settings.items())) or "—"
        verdict = (run.verdict or "—") + (" (regressed)" if run.regressed else "") + (
            " (dry run)" if run.dry_run else "")
        rows.append([(run.start or "—").replace("T", " ")[:19], run.path or run.run_id,
                     run.experiment or "—", run.target or "—", run.profile or "—", settings,
                     verdict, _fault_cells(run), num(run.total("error_seconds")),
                     num(run.total("failed_checkouts")), num(run.orders_lost),
                     num(run.carts_lost)])
    return rows


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def text_table(runs: Sequence[RunFigures], experiment_width: int = 28) -> str:
    """The history as an aligned plain-text table (long experiment titles clipped)."""
    rows = [HEADERS] + [[_clip(c, experiment_width) if i == 2 else c for i, c in enumerate(r)]
                        for r in history_rows(runs)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _row_html(run: RunFigures, cells: List[str], reports_dir: str) -> str:
    link = os.path.join(reports_dir, run.path, run_files.REPORT_HTML) if run.path else ""
    out = []
    for i, cell in enumerate(cells):
        text = html.escape(cell)
        if i == 1 and link and os.path.isfile(link):
            text = f'<a href="{html.escape(run.path)}/report.html">{text}</a>'
        if i == 6 and run.verdict in VERDICT_COLOURS and not run.problem:
            colour = "#cf222e" if run.regressed else VERDICT_COLOURS[run.verdict]
            out.append(f'<td class="v" style="background:{colour}">{text}</td>')
        else:
            out.append(f'<td class="long">{text}</td>' if i in (2, 7) else f"<td>{text}</td>")
    bad = run.problem or run.verdict != "passed" or run.regressed
    return f'<tr{" class=bad" if bad else ""}>' + "".join(out) + "</tr>"


def render_history_html(runs: Sequence[RunFigures], reports_dir: str) -> str:
    """index.html for `reports_dir`: trend charts per experiment/target/profile, then the table."""
    readable = [r for r in runs if r.problem is None]
    passed = sum(r.verdict == "passed" and not r.regressed for r in readable)
    parts = [f"<h1>Game-day history: {len(runs)} runs</h1>",
             f"<p>{passed} passed, {len(readable) - passed} did not pass or regressed, "
             f"{len(runs) - len(readable)} unreadable. Red crosses in the charts are runs that "
             "did not pass; dotted lines are RTO thresholds (left out when far above the measured "
             "RTOs).</p>", "<h2>Trends</h2>"]
    for chart in trend_charts(runs):
        data = base64.b64encode(chart["png"]).decode("ascii")
        parts.append(f'<img alt="{html.escape(chart["title"])}" src="data:image/png;base64,{data}">')
    parts.append("<h2>Runs (newest first)</h2>")
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS) + "</tr>"
    body = "".join(_row_html(run, cells, reports_dir)
                   for run, cells in zip(reversed(runs), history_rows(runs)))
    parts.append(f'<div class="scroll"><table>{head}{body}</table></div>')
    parts.append('<p class="note">error s: seconds in which shoppers saw errors, all faults '
                 "together; — : not recorded by the version of the pack that wrote the run.</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Game-day history</title><style>{PAGE_CSS}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")
