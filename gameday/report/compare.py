"""`compare(run_a, run_b)`: the figures of two runs side by side (Markdown table).

For retry vs no-retry, or this release vs the last: faults are paired by position and name,
and every number gets a B − A column so regressions stand out.
"""
import json
import os
from typing import Any, Dict, List, Optional, Tuple

from gameday.report.document import num, pct
from gameday.report.sources import ReportError
from gameday.report.summary import summarize

__all__ = ["compare", "load_summary", "comparison_rows"]

Row = Tuple[str, Any, Any, str]  # label, A, B, kind ("num" | "ratio" | "text")


def load_summary(run: str) -> Dict[str, Any]:
    """A run's summary: recomputed from its run dir, or read from a summary.json."""
    if os.path.isfile(run):
        try:
            with open(run, encoding="utf-8") as fh:
                return json.load(fh)
        except (OSError, ValueError) as exc:
            raise ReportError(f"cannot read {run}: {exc}") from None
    return summarize(run)


def _fault_rows(a: Dict, b: Dict) -> List[Row]:
    rows: List[Row] = []
    count = max(len(a["faults"]), len(b["faults"]))
    for i in range(count):
        fa = a["faults"][i] if i < len(a["faults"]) else {}
        fb = b["faults"][i] if i < len(b["faults"]) else {}
        name = fa.get("fault") or fb.get("fault")
        if fa and fb and fa.get("fault") != fb.get("fault"):
            name = f"{fa.get('fault')} / {fb.get('fault')}"
        label = f"fault {i + 1} ({name})"
        la, lb = fa.get("load") or {}, fb.get("load") or {}
        rows += [
            (f"{label}: method", fa.get("method"), fb.get("method"), "text"),
            (f"{label}: RTO s", fa.get("rto_seconds"), fb.get("rto_seconds"), "num"),
            (f"{label}: control plane s", fa.get("control_plane_seconds"),
             fb.get("control_plane_seconds"), "num"),
            (f"{label}: control-vs-data-plane lag s", fa.get("control_vs_data_plane_lag_seconds"),
             fb.get("control_vs_data_plane_lag_seconds"), "num"),
            (f"{label}: error ratio in window", la.get("error_ratio"), lb.get("error_ratio"),
             "ratio"),
            (f"{label}: p95 ms in window", la.get("p95_ms"), lb.get("p95_ms"), "num"),
        ]
    return rows


def comparison_rows(a: Dict[str, Any], b: Dict[str, Any]) -> List[Row]:
    rows: List[Row] = [
        ("experiment", a["experiment"]["title"], b["experiment"]["title"], "text"),
        ("target", a["target"]["kind"], b["target"]["kind"], "text"),
        ("start", a["start"], b["start"], "text"),
        ("verdict", a["verdict"], b["verdict"], "text"),
        ("hypothesis before", a["hypothesis"]["before"]["met"],
         b["hypothesis"]["before"]["met"], "text"),
        ("hypothesis after", a["hypothesis"]["after"]["met"], b["hypothesis"]["after"]["met"],
         "text"),
    ]
    rows += _fault_rows(a, b)
    for window in ("baseline", "fault", "recovery"):
        oa, ob = a["load"]["overall"][window], b["load"]["overall"][window]
        rows += [(f"load {window}: requests/s", oa["requests_per_second"],
                  ob["requests_per_second"], "num"),
                 (f"load {window}: error ratio", oa["error_ratio"], ob["error_ratio"], "ratio"),
                 (f"load {window}: p95 ms", oa["p95_ms"], ob["p95_ms"], "num")]
    steps = sorted(set(a["load"]["steps"]) | set(b["load"]["steps"]))
    for step in steps:
        fa = a["load"]["per_step"].get(step, {}).get("fault", {})
        fb = b["load"]["per_step"].get(step, {}).get("fault", {})
        rows.append((f"{step} in fault window: error ratio", fa.get("error_ratio"),
                     fb.get("error_ratio"), "ratio"))
    rows += [
        ("orders acknowledged", a["rpo"]["orders_acknowledged"], b["rpo"]["orders_acknowledged"],
         "num"),
        ("acknowledged orders lost", a["rpo"]["orders_lost"], b["rpo"]["orders_lost"], "num"),
        ("carts lost", a["rpo"]["carts_lost"], b["rpo"]["carts_lost"], "num"),
        ("safeguard tripped", a["safeguards"]["tripped"], b["safeguards"]["tripped"], "text"),
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


def compare(run_a: str, run_b: str, label_a: Optional[str] = None,
            label_b: Optional[str] = None) -> str:
    """A Markdown table: figure | A | B | B − A (runs given as run dirs or summary.json files)."""
    a, b = load_summary(run_a), load_summary(run_b)
    name_a = label_a or a["run_id"]
    name_b = label_b or b["run_id"]
    if name_a == name_b:
        name_a, name_b = f"A: {name_a}", f"B: {name_b}"
    lines = [f"| figure | {name_a} | {name_b} | B − A |", "|---|---|---|---|"]
    for label, va, vb, kind in comparison_rows(a, b):
        cells = [label, _show(va, kind), _show(vb, kind), _delta(va, vb, kind)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
