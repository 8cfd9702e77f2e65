"""Timeline charts (PNG): requests/s, error ratio and p95 latency per journey step.

Vertical markers show, for each fault, the injection, the control plane's completion and the
data plane's recovery, so a reader sees at a glance whether shoppers noticed the failover and
for how long. PNGs are palette-quantised to stay small enough to embed in the HTML report.
"""
import io
import os
from typing import Dict, List, Optional, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from gameday.report.journal import epoch  # noqa: E402
from groundfloor.timefmt import iso  # noqa: E402

__all__ = ["CHARTS", "PALETTE", "render_charts", "figure_png", "plt", "impairment_span",
           "IMPAIRMENT_COLOUR", "fault_markers"]

# (file stem, title, y label)
CHARTS = (("requests", "Requests per second", "requests/s"),
          ("error-ratio", "Error ratio", "failures / requests"),
          ("p95", "p95 latency", "ms"))
MARKERS = (("injected_at", "fault injected", "#d62728", "-"),
           ("control_plane_completed_at", "control plane done", "#000000", "--"),
           ("data_plane_writable_at", "data plane writable", "#2ca02c", "-."))
# step colours avoid the markers' red, black and green
PALETTE = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#e377c2", "#bcbd22", "#7f7f7f")
IMPAIRMENT_COLOUR = "#ff9f1c"  # the impairment window's shade: not a step's, not a marker's
SIZE = (10, 3.2)
DPI = 80


def _series(cells: Dict[Tuple[int, str], dict], steps: List[str], t0: int, t1: int):
    """Per step arrays over every second t0..t1: requests, error ratio, p95 (NaN when idle)."""
    n = t1 - t0 + 1
    req = {s: np.zeros(n) for s in steps}
    fail = {s: np.zeros(n) for s in steps}
    p95 = {s: np.full(n, np.nan) for s in steps}
    for (t, step), cell in cells.items():  # cells are already unique per (t, step)
        req[step][t - t0] = cell["requests"]
        fail[step][t - t0] = cell["failures"]
        if cell["requests"]:
            p95[step][t - t0] = cell["p95"]
    out = {}
    for step in steps:
        ratio = np.full(n, np.nan)
        busy = req[step] > 0
        ratio[busy] = fail[step][busy] / req[step][busy]
        out[step] = {"requests": req[step], "error-ratio": ratio, "p95": p95[step]}
    return out


def figure_png(fig) -> bytes:
    """A closed matplotlib figure as a small palette PNG (shared by every chart of the pack)."""
    return _png(fig)


def _png(fig) -> bytes:
    raw = io.BytesIO()
    fig.savefig(raw, format="png", dpi=DPI)
    plt.close(fig)
    try:
        from PIL import Image
    except ImportError:  # matplotlib depends on Pillow, but stay usable without it
        return raw.getvalue()
    raw.seek(0)
    small = io.BytesIO()
    Image.open(raw).convert("RGB").quantize(colors=64).save(small, format="PNG", optimize=True)
    return small.getvalue()


def _panel(ax, x, series, steps, name, ylabel, faults, t0, title=None) -> None:
    for i, step in enumerate(steps):
        ax.plot(x, series[step][name], label=step, linewidth=1.0, color=PALETTE[i % len(PALETTE)],
                drawstyle="steps-post")  # second t covers [t, t+1)
    _markers(ax, faults, t0, t0 + len(x) - 1)
    if title:
        ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_xlim(x[0], max(x[-1], x[0] + 1))
    if name == "error-ratio":
        ax.set_ylim(-0.02, 1.02)
    else:
        ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=8)


def _save(charts: List[Dict[str, object]], fig, name: str, title: str,
          out_dir: Optional[str]) -> None:
    png = _png(fig)
    path = None
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, f"{name}.png")
        with open(path, "wb") as fh:
            fh.write(png)
    charts.append({"name": name, "title": title, "png": png, "path": path})


def render_charts(summary: Dict, cells: Dict[Tuple[int, str], dict],
                  out_dir: Optional[str] = None) -> List[Dict[str, object]]:
    """PNG charts: [{"name", "title", "png": bytes, "path"}]; empty without a timeline.

    Three whole-run charts (requests/s, error ratio, p95), then one close-up per fault
    (fault_chart.py), since an outage of a few seconds is a hairline in a ten-minute chart.
    With `out_dir` the PNGs are written there as `<name>.png`.
    """
    if not cells:
        return []
    seconds = sorted({t for t, _ in cells})
    t0, t1 = seconds[0], seconds[-1]
    steps = sorted({s for _, s in cells})
    series = _series(cells, steps, t0, t1)
    x = np.arange(t0, t1 + 1) - t0
    faults = summary.get("faults") or []
    charts: List[Dict[str, object]] = []
    for name, title, ylabel in CHARTS:
        fig, ax = plt.subplots(figsize=SIZE)
        _panel(ax, x, series, steps, name, ylabel, faults, t0, title + " per journey step")
        ax.set_xlabel(f"seconds since {iso(t0)}", fontsize=8)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        fig.tight_layout()
        _save(charts, fig, name, title, out_dir)
    from gameday.report.fault_chart import fault_chart  # it imports this module's helpers
    for number, fault in enumerate(faults, 1):
        fig = fault_chart(number, fault, series, steps, t0, t1)
        if fig is not None:
            _save(charts, fig, f"fault-{number}",
                  f"Fault {number}: {fault.get('fault')} on {fault.get('target')}", out_dir)
    return charts


def impairment_span(fault: Dict, last: float) -> Optional[Tuple[float, float]]:
    """An impairment fault's window [started, ended] (epoch s); one that never ended lasts
    until `last`. None for other faults."""
    impact = fault.get("impairment_impact") or {}
    start = epoch(impact.get("started_at"))
    if start is None:
        return None
    end = epoch(impact.get("ended_at"))
    return start, end if end is not None else last


def _markers(ax, faults: List[Dict], t0: int, t1: Optional[int] = None) -> None:
    labelled = set()
    for fault in faults:
        span = impairment_span(fault, (t1 if t1 is not None else t0) + 1)
        if span is not None:
            ax.axvspan(span[0] - t0, span[1] - t0, color=IMPAIRMENT_COLOUR, alpha=0.25,
                       linewidth=0, label=None if "impairment" in labelled else "impairment")
            labelled.add("impairment")
        start, end = epoch(fault.get("injected_at")), epoch(fault.get("data_plane_writable_at"))
        if start is not None and end is not None:
            ax.axvspan(start - t0, end - t0, color="#d62728", alpha=0.08, linewidth=0)
        for key, label, colour, style in MARKERS:
            at = epoch(fault.get(key))
            if at is None:
                continue
            ax.axvline(at - t0, color=colour, linestyle=style, linewidth=1.2,
                       label=None if label in labelled else label)
            labelled.add(label)


fault_markers = _markers  # the faults' markers, for charts drawn elsewhere (replica_lag.py)
