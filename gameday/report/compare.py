"""`compare(run_a, run_b, ...)`: the figures of any number of runs side by side (Markdown table).

For retry vs no-retry, or this release vs the last: faults are paired by position and name,
and every number gets a difference column against the first run (B − A, C − A, ...) so
regressions stand out.
"""
import json
import os
from typing import Any, Dict, List, Optional, Tuple

from gameday.report.document import num, pct
from gameday.report.sources import ReportError
from gameday.report.summary import summarize

__all__ = ["compare", "load_summary", "comparison_rows"]

Row = Tuple[str, List[Any], str]  # label, one value per run, kind ("num" | "ratio" | "text")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def load_summary(run: str) -> Dict[str, Any]:
    """A run's summary: recomputed from its run dir, or read from a summary.json."""
    if os.path.isfile(run):
        try:
            with open(run, encoding="utf-8") as fh:
                return json.load(fh)
        except (OSError, ValueError) as exc:
            raise ReportError(f"cannot read {run}: {exc}") from None
    return summarize(run)


def _fault_rows(runs: List[Dict]) -> List[Row]:
    rows: List[Row] = []
    count = max(len(r["faults"]) for r in runs)
    for i in range(count):
        fs = [r["faults"][i] if i < len(r["faults"]) else {} for r in runs]
        names = list(dict.fromkeys(f.get("fault") for f in fs if f.get("fault")))
        label = f"fault {i + 1} ({' / '.join(names)})"
        loads = [f.get("load") or {} for f in fs]
        rows += [
            (f"{label}: method", [f.get("method") for f in fs], "text"),
            (f"{label}: RTO s", [f.get("rto_seconds") for f in fs], "num"),
            (f"{label}: control plane s", [f.get("control_plane_seconds") for f in fs], "num"),
            (f"{label}: control-vs-data-plane lag s",
             [f.get("control_vs_data_plane_lag_seconds") for f in fs], "num"),
            (f"{label}: error ratio in window", [x.get("error_ratio") for x in loads], "ratio"),
            (f"{label}: p95 ms in window", [x.get("p95_ms") for x in loads], "num"),
        ]
    return rows


def comparison_rows(*runs: Dict[str, Any]) -> List[Row]:
    """One row per figure, one value per run summary (in the order given)."""
    def each(get, label: str, kind: str) -> Row:
        return (label, [get(r) for r in runs], kind)

    rows: List[Row] = [
        each(lambda r: r["experiment"]["title"], "experiment", "text"),
        each(lambda r: r["target"]["kind"], "target", "text"),
        each(lambda r: r["start"], "start", "text"),
        each(lambda r: r["verdict"], "verdict", "text"),
        each(lambda r: r["hypothesis"]["before"]["met"], "hypothesis before", "text"),
        each(lambda r: r["hypothesis"]["after"]["met"], "hypothesis after", "text"),
    ]
    rows += _fault_rows(list(runs))
    for window in ("baseline", "fault", "recovery"):
        for key, name, kind in (("requests_per_second", "requests/s", "num"),
                                ("error_ratio", "error ratio", "ratio"), ("p95_ms", "p95 ms", "num")):
            rows.append(each(lambda r, w=window, k=key: r["load"]["overall"][w][k],
                             f"load {window}: {name}", kind))
    steps = sorted(set().union(*(r["load"]["steps"] for r in runs)))
    for step in steps:
        rows.append(each(lambda r, s=step: r["load"]["per_step"].get(s, {}).get("fault", {})
                         .get("error_ratio"), f"{step} in fault window: error ratio", "ratio"))
    rows += [
        each(lambda r: r["rpo"]["orders_acknowledged"], "orders acknowledged", "num"),
        each(lambda r: r["rpo"]["orders_lost"], "acknowledged orders lost", "num"),
        each(lambda r: r["rpo"]["carts_lost"], "carts lost", "num"),
        each(lambda r: r["safeguards"]["tripped"], "safeguard tripped", "text"),
    ]
    return rows


def _show(value: Any, kind: str) -> str:
    if kind == "ratio":
        return pct(value)
    if kind == "text" and isinstance(value, bool):
        return "yes" if value else "no"
    return num(value) if kind == "num" or value is None else str(value)


def _delta(a: Any, b: Any, kind: str) -> str:
    if kind == "text" or not isinstance(a, (int, float)) or not isinstance(b, (int, float)) \
            or isinstance(a, bool) or isinstance(b, bool):
        return ""
    d = b - a
    if kind == "ratio":
        return f"{d * 100:+.2f} pp"
    return f"{d:+.3f}".rstrip("0").rstrip(".") if isinstance(d, float) else f"{d:+d}"


def compare(*runs: str, labels: Optional[List[str]] = None) -> str:
    """A Markdown table: figure | one column per run | differences against the first run.

    Runs are run dirs or summary.json files; at least two.
    """
    if len(runs) < 2:
        raise ReportError("compare needs at least two runs")
    if len(runs) > len(LETTERS):
        raise ReportError(f"compare takes at most {len(LETTERS)} runs")
    summaries = [load_summary(r) for r in runs]
    names = list(labels or [s["run_id"] for s in summaries])
    if len(set(names)) < len(names):
        names = [f"{LETTERS[i]}: {n}" for i, n in enumerate(names)]
    deltas = [f"{LETTERS[i]} − A" for i in range(1, len(runs))]
    lines = ["| figure | " + " | ".join(names + deltas) + " |", "|---|" + "---|" * (len(names) + len(deltas))]
    for label, values, kind in comparison_rows(*summaries):
        cells = [label] + [_show(v, kind) for v in values] + [_delta(values[0], v, kind) for v in values[1:]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
