"""`write_report(run_dir)`: report.html, report.md, junit.xml, summary.json and chart PNGs.

The HTML embeds its charts (base64) and its CSS, so it opens offline from an archived
artifact; the Markdown links the PNGs beside it for pull requests and wikis.
"""
import base64
import html
import json
import os
import tempfile
from typing import Any, Dict, List, Optional

from gameday.report.baseline import compare_with_baseline
from gameday.report.charts import render_charts
from gameday.report.document import build
from gameday.report.junit import junit_xml
from gameday.report.redact import known_secret_values, redact
from gameday.report.replica_lag import CHART_NAME as LAG_CHART, lag_chart
from gameday.report.sources import ReportError, read_run
from gameday.report.summary import summarize_files
from groundfloor import run_files

__all__ = ["write_report", "render_html", "render_markdown", "redact_journal_file", "blocks_html",
           "blocks_markdown"]

CHART_DIR = "charts"
LONG_CELL = 24  # characters
VERDICT_COLOURS = {"passed": "#1a7f37", "deviated": "#b35900", "failed": "#cf222e",
                   "interrupted": "#6e40c9"}
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1200px;color:#1f2328;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.86em}
th,td{border:1px solid #d0d7de;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f6f8fa}td{max-width:32em}td.long{overflow-wrap:anywhere}
.scroll{overflow-x:auto}
.verdict{display:inline-block;color:#fff;font-weight:bold;padding:.3em .8em;border-radius:.3em}
img{max-width:100%;display:block;margin:.5em 0}
table.glance{font-size:1.02em}table.glance td:first-child{font-weight:600}
"""


def _atomic_write(path: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".report-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _html_cell(text: str) -> str:
    """Long cells (outputs, method names) may wrap anywhere; short ones never break."""
    cls = ' class="long"' if len(text) > LONG_CELL else ""
    return f"<td{cls}>{html.escape(text)}</td>"


def _html_table(headers: List[str], rows: List[List[str]], style: str = "") -> str:
    head = "" if not any(headers) else "<tr>" + "".join(
        f"<th>{html.escape(h)}</th>" for h in headers) + "</tr>"
    body = "".join("<tr>" + "".join(_html_cell(str(c)) for c in row) + "</tr>" for row in rows)
    cls = f' class="{style}"' if style else ""
    return f'<div class="scroll"><table{cls}>{head}{body}</table></div>'


def _which(charts: List[Dict[str, Any]], block: tuple) -> List[Dict[str, Any]]:
    """The charts a ("charts", kind) block shows: the per-fault close-ups ("fault"), the
    readers' lag ("replica-lag"), the whole-run charts ("run"), or every chart (no kind, e.g.
    the matrix report)."""
    if len(block) < 2:
        return list(charts)

    def kind(chart: Dict[str, Any]) -> str:
        name = chart["name"]
        return "fault" if name.startswith("fault-") else name if name == LAG_CHART else "run"
    return [c for c in charts if kind(c) == block[1]]


def render_html(summary: Dict[str, Any], charts: List[Dict[str, Any]]) -> str:
    title = summary["experiment"]["title"] or summary["run_id"]
    return blocks_html(build(summary), charts, f"Game day: {title}")


def blocks_html(blocks: List[tuple], charts: List[Dict[str, Any]], title: str) -> str:
    """Document blocks (see gameday.report.document) as one self-contained HTML page."""
    parts = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3", "p"):
            parts.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind in ("verdict", "badge"):
            colour = VERDICT_COLOURS.get(block[1], "#57606a")
            badge = (f'<span class="verdict" id="{kind}" style="background:{colour}">'
                     f"{html.escape(block[2])}</span>")
            if kind == "badge" and parts and parts[-1].endswith("</span></p>"):
                parts[-1] = parts[-1][:-4] + " " + badge + "</p>"  # beside the verdict
            else:
                parts.append(f"<p>{badge}</p>")
        elif kind == "list":
            parts.append("<ul>" + "".join(f"<li>{html.escape(str(i))}</li>" for i in block[1])
                         + "</ul>")
        elif kind == "table":
            parts.append(_html_table(*block[1:]))
        elif kind == "charts":
            for chart in _which(charts, block):
                data = base64.b64encode(chart["png"]).decode("ascii")
                parts.append(f'<img alt="{html.escape(chart["title"])}" '
                             f'src="data:image/png;base64,{data}">')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(summary: Dict[str, Any], charts: List[Dict[str, Any]]) -> str:
    return blocks_markdown(build(summary), charts)


def blocks_markdown(blocks: List[tuple], charts: List[Dict[str, Any]]) -> str:
    """Document blocks as Markdown; charts are linked from the charts/ directory beside it."""
    lines = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + block[1], ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind in ("verdict", "badge"):
            lines += [f"**{block[2]}**", ""]
        elif kind == "list":
            lines += [f"- {_md_cell(i)}" for i in block[1]] + [""]
        elif kind == "table":
            headers = [h or " " for h in block[1]]
            lines.append("| " + " | ".join(map(_md_cell, headers)) + " |")
            lines.append("|" + "---|" * len(headers))
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in block[2]]
            lines.append("")
        elif kind == "charts":
            lines += [f"![{c['title']}]({CHART_DIR}/{c['name']}.png)"
                      for c in _which(charts, block)] + [""]
    return "\n".join(lines)


def redact_journal_file(path: str, values=None) -> bool:
    """Rewrite a journal with its secrets masked; True when something had to be masked."""
    with open(path, encoding="utf-8") as fh:
        journal = json.load(fh)
    clean = redact(journal, values if values is not None else known_secret_values(journal))
    if clean == journal:
        return False
    _atomic_write(path, json.dumps(clean, indent=2).encode("utf-8"))
    return True


def _gate(summary: Dict[str, Any], run_dir: str, baseline: str, tolerance: Any,
          reports_dir: Optional[str]) -> Dict[str, Any]:
    """The baseline comparison, or why the gate cannot decide (the report is written anyway)."""
    where = reports_dir or os.path.dirname(os.path.abspath(run_dir))
    try:
        return compare_with_baseline(summary, baseline, tolerance, where)
    except ReportError as exc:
        return {"spec": baseline, "described": None, "runs": [], "checks": [],
                "regressed": None, "error": str(exc)}


def write_report(run_dir: str, rto_threshold: Any = None, redact_journal: bool = True,
                 baseline: Optional[str] = None, tolerance: Any = None,
                 reports_dir: Optional[str] = None) -> Dict[str, Any]:
    """Write the report files into `run_dir`; returns their paths by file name (+ "charts"), and
    under "summary" the summary they were written from.

    With `redact_journal` the run's journal.json is rewritten with secrets masked (only when
    it holds any), so the whole run directory can be archived. With `baseline` (`last:N` or a
    run directory) the summary gets a "baseline" entry: the gate's checks (see baseline.py);
    `last:N` looks for earlier runs in `reports_dir` (default: the run directory's parent).
    """
    files = read_run(run_dir)
    summary = summarize_files(files, rto_threshold)
    if baseline:
        summary["baseline"] = _gate(summary, run_dir, baseline, tolerance, reports_dir)
    charts = render_charts(summary, files.cells, os.path.join(run_dir, CHART_DIR))
    charts += lag_chart(summary, run_dir, min((t for t, _ in files.cells), default=None),
                        os.path.join(run_dir, CHART_DIR))
    paths = {name: os.path.join(run_dir, name)
             for name in (run_files.REPORT_HTML, run_files.REPORT_MD, run_files.JUNIT, run_files.SUMMARY)}
    _atomic_write(paths[run_files.SUMMARY], json.dumps(summary, indent=2).encode("utf-8"))
    _atomic_write(paths[run_files.JUNIT], junit_xml(summary))
    _atomic_write(paths[run_files.REPORT_MD], render_markdown(summary, charts).encode("utf-8"))
    _atomic_write(paths[run_files.REPORT_HTML], render_html(summary, charts).encode("utf-8"))
    journal_path = os.path.join(run_dir, run_files.JOURNAL)
    if files.journal is not None and redact_journal:
        redact_journal_file(journal_path, known_secret_values(files.journal))
    return {**paths, "charts": [c["path"] for c in charts], "summary": summary}
