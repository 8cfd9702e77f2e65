"""The matrix comparison: one row per combination of shop settings, one chart per figure.

Figures per run (from its run directory and summary):
- RTO per fault (data plane, seconds), the verdict;
- user-visible error seconds: seconds of the load in which at least one shopper request failed;
- error ratio in the fault window(s); failed checkouts (checkout requests that failed);
- orders lost (acknowledged orders missing afterwards) and carts lost (journey checks);
- errors clients saw, by kind: WordPress 500 pages (any 500), 503s, timeouts (transport
  timeouts and 504s), other; and READONLY replies the shop met (its access log's causes:
  a demoted Redis primary or a read-only MySQL), which clients see as a 500 or a 503.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any, Dict, List, Optional

from gameday.report.document import num, pct
from gameday.report.render import blocks_html, blocks_markdown
from gameday.report.sources import ReportError, read_run
from gameday.report.summary import summarize_files
from gameday.report.journal import epoch

__all__ = ["run_figures", "shop_saw", "matrix_blocks", "write_matrix_report", "FIGURES"]

ERROR_KINDS = ("500 page", "503", "timeout", "other")
# (key, column title, how to show): every figure gets a chart across the combinations
FIGURES = (("error_seconds", "user-visible error seconds", "num"),
           ("fault_error_ratio", "error ratio in fault window", "ratio"),
           ("failed_checkouts", "failed checkouts", "num"),
           ("orders_lost", "orders lost", "num"),
           ("carts_lost", "carts lost", "num"),
           ("500 page", "500 pages", "num"), ("503", "503s", "num"),
           ("readonly", "READONLY (shop saw)", "num"), ("timeout", "timeouts", "num"))


def error_kind(key: str) -> str:
    """A timeline error class (``"503 woocommerce_rest_..."``, ``"ReadTimeout"``) by kind."""
    if key.startswith("500"):
        return "500 page"
    if key.startswith("503"):
        return "503"
    if "timeout" in key.lower() or key.startswith("504"):
        return "timeout"
    return "other"


def shop_saw(access_log: str, run_dir: str) -> Dict[str, int]:
    """READONLY replies the shop met during the run (its access log, the run's time span)."""
    try:
        summary = summarize_files(read_run(run_dir))
    except ReportError:  # no run directory: nothing was served for it
        return {"readonly": 0}
    start, end = epoch(summary.get("start")), epoch(summary.get("end"))
    count = 0
    if start is None or end is None or not os.path.exists(access_log):
        return {"readonly": 0}
    with open(access_log, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            cause = str(rec.get("cause") or "")
            if start <= rec.get("t", 0) <= end and ("ReadOnly" in cause or any(
                    f"errno {n}" in cause for n in (1290, 1792, 1836))):
                count += 1
    return {"readonly": count}


def run_figures(run: Dict[str, Any]) -> Dict[str, Any]:
    """The matrix row of one run (``run``: label, settings, run_dir, shop_saw); a run that left
    no run directory is a row saying so, with no figures."""
    try:
        files = read_run(run["run_dir"])
    except ReportError as exc:
        return {"label": run["label"], "settings": run["settings"], "run_id": None,
                "verdict": f"no report ({exc})", "rto": {}, "readonly": None,
                **{key: None for key, _, _ in FIGURES}, **{k: None for k in ERROR_KINDS}}
    summary = summarize_files(files)
    kinds: Counter = Counter({k: 0 for k in ERROR_KINDS})
    seconds, failed_checkouts = set(), 0
    for (t, step), cell in files.cells.items():
        if cell["failures"]:
            seconds.add(t)
        if step == "checkout":
            failed_checkouts += cell["failures"]
        for key, n in cell["errors"].items():
            kinds[error_kind(key)] += n
    fault_window = summary["load"]["overall"].get("fault") or {}
    return {"label": run["label"], "settings": run["settings"], "run_id": summary["run_id"],
            "verdict": summary["verdict"],
            "rto": {f["fault"]: f["rto_seconds"] for f in summary["faults"]},
            "error_seconds": len(seconds), "fault_error_ratio": fault_window.get("error_ratio"),
            "failed_checkouts": failed_checkouts, "orders_lost": summary["rpo"]["orders_lost"],
            "carts_lost": summary["rpo"]["carts_lost"], **dict(kinds),
            "readonly": (run.get("shop_saw") or {}).get("readonly")}


def _show(value: Any, kind: str) -> str:
    return pct(value) if kind == "ratio" else num(value)


def matrix_blocks(experiment: str, rows: List[Dict[str, Any]]) -> List[tuple]:
    faults = list(dict.fromkeys(f for r in rows for f in r["rto"]))
    headers = ["settings", "verdict"] + [f"RTO {f} (s)" for f in faults] + [t for _, t, _ in FIGURES]
    table = [[r["label"], r["verdict"]] + [num(r["rto"].get(f)) for f in faults]
             + [_show(r[k], kind) for k, _, kind in FIGURES] for r in rows]
    return [("h1", f"Settings matrix: {experiment}"),
            ("p", f"{len(rows)} runs of the same experiment on the lab, one per combination of "
                  "stand-in shop settings. Errors are what the shoppers' requests got; READONLY "
                  "counts the replies the shop itself met from a demoted primary."),
            ("table", headers, table), ("h2", "Figures across combinations"), ("charts",)]


def _charts(rows: List[Dict[str, Any]], out_dir: str) -> List[Dict[str, Any]]:
    from gameday.report.charts import figure_png, plt
    labels = [r["label"] for r in rows]
    series = [(f"rto-{f}", f"RTO {f} (s)", [r["rto"].get(f) for r in rows])
              for f in dict.fromkeys(f for r in rows for f in r["rto"])]
    series += [(key.replace(" ", "-"), title, [r[key] for r in rows]) for key, title, _ in FIGURES]
    charts = []
    os.makedirs(out_dir, exist_ok=True)
    for name, title, values in series:
        fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(rows)), 2.6))
        ax.bar(range(len(rows)), [v if isinstance(v, (int, float)) else 0 for v in values],
               color="#1f77b4")
        ax.set_xticks(range(len(rows)), labels, fontsize=7, rotation=15)
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
        fig.tight_layout()
        png = figure_png(fig)
        path = os.path.join(out_dir, f"{name}.png")
        with open(path, "wb") as fh:
            fh.write(png)
        charts.append({"name": name, "title": title, "png": png, "path": path})
    return charts


def write_matrix_report(matrix_dir: str, runs: List[Dict[str, Any]],
                        experiment: Optional[str] = None) -> Dict[str, str]:
    """matrix.json, matrix.md, matrix.html and charts/ in ``matrix_dir``; returns their paths."""
    rows = [run_figures(r) for r in runs]
    title = experiment or os.path.basename(os.path.normpath(matrix_dir))
    blocks = matrix_blocks(title, rows)
    charts = _charts(rows, os.path.join(matrix_dir, "charts"))
    paths = {name: os.path.join(matrix_dir, name) for name in ("matrix.json", "matrix.md", "matrix.html")}
    with open(paths["matrix.json"], "w", encoding="utf-8") as fh:
        json.dump({"runs": runs, "rows": rows}, fh, indent=2)
    with open(paths["matrix.md"], "w", encoding="utf-8") as fh:
        fh.write(blocks_markdown(blocks, charts))
    with open(paths["matrix.html"], "w", encoding="utf-8") as fh:
        fh.write(blocks_html(blocks, charts, f"Settings matrix: {title}"))
    return paths
