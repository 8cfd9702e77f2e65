"""One chart per fault, one row each, for the report's first screen.

A reader wants to see, per fault: which journey steps failed, how hard and for how long, and
where the fault and the recovery were. So the chart is wide and low (it sits in a row of its
own), its x axis counts seconds from the injection, the steps the fault hurt are drawn bold in
colour and the untouched ones thin and grey, and the injection → writable-again window is
shaded and labelled.
"""
from typing import Dict, List, Optional

from gameday.report.charts import IMPAIRMENT_COLOUR, MARKERS, PALETTE, impairment_span, plt
from gameday.report.journal import epoch

__all__ = ["fault_chart", "MARGIN"]

SIZE = (14.4, 3.1)  # 1150 × 250 px at 80 dpi: a full-width row of the report
MARGIN = 20  # seconds shown before the injection and after the last error or the recovery
QUIET = "#b8bec6"


def _window(fault: Dict, t0: int, t1: int) -> Optional[tuple]:
    start = epoch(fault.get("injected_at"))
    if start is None:
        return None
    end = epoch(fault.get("data_plane_writable_at")) or epoch(
        fault.get("control_plane_completed_at")) or start
    impact = fault.get("impact") or {}
    if impact.get("affected_from_seconds") is not None:
        end = max(end, start + impact["affected_from_seconds"] + impact["affected_for_seconds"])
    end = max(end, _impairment_end(fault, t1))
    lo, hi = max(t0, int(start) - MARGIN), min(t1, int(end) + MARGIN)
    return (start, lo, hi) if hi > lo else None


def _impairment_end(fault: Dict, t1: int) -> float:
    """The end of an impairment's window and of its slowest step's recovery (0: none)."""
    span = impairment_span(fault, t1 + 1)
    if span is None:
        return 0.0
    steps = (fault.get("impairment_impact") or {}).get("steps") or {}
    recovered = [epoch(s.get("recovered_at")) for s in steps.values()]
    return max([span[1]] + [r for r in recovered if r is not None])


def _lines(ax, x, series, steps, affected, name) -> None:
    for i, step in enumerate(steps):
        hurt = step in affected
        ax.plot(x, series[step][name], drawstyle="steps-post", zorder=3 if hurt else 2,
                color=PALETTE[i % len(PALETTE)] if hurt else QUIET,
                linewidth=2.4 if hurt else 1.0,
                label=step + (" (errors)" if hurt else ""))


def _marks(ax, fault: Dict, start: float, t1: int) -> None:
    span = impairment_span(fault, t1 + 1)
    if span is not None:
        ax.axvspan(span[0] - start, span[1] - start, color=IMPAIRMENT_COLOUR, alpha=0.25,
                   linewidth=0, label="impairment")
    writable = epoch(fault.get("data_plane_writable_at"))
    if writable is not None and span is None:
        ax.axvspan(0, writable - start, color="#d62728", alpha=0.10, linewidth=0)
    for key, label, colour, style in MARKERS:
        at = epoch(fault.get(key))
        if at is not None:
            ax.axvline(at - start, color=colour, linestyle=style, linewidth=1.4, label=label)


def fault_chart(number: int, fault: Dict, series: Dict, steps: List[str], t0: int, t1: int):
    """A matplotlib figure for one fault, or None when it has no injection time in the timeline.

    `series` is per step {"requests": array, "error-ratio": array} over t0..t1 (one per second).
    """
    window = _window(fault, t0, t1)
    if window is None:
        return None
    start, lo, hi = window
    x = [t - start for t in range(lo, hi + 1)]
    part = {s: {k: series[s][k][lo - t0:hi - t0 + 1] for k in ("requests", "error-ratio")}
            for s in steps}
    affected = set((fault.get("impact") or {}).get("affected_steps") or [])
    fig, (left, right) = plt.subplots(1, 2, figsize=SIZE, sharex=True)
    for ax, name, label in ((left, "requests", "requests/s per step"),
                            (right, "error-ratio", "share of requests failing, per step")):
        _lines(ax, x, part, steps, affected, name)
        _marks(ax, fault, start, t1)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("seconds after the fault was injected", fontsize=8)
        ax.set_xlim(x[0], x[-1])
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=8)
    left.set_ylim(bottom=0)
    right.set_ylim(-0.02, 1.02)
    right.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    right.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    rto = fault.get("rto_seconds")
    if fault.get("impairment_impact"):
        from gameday.report.impairment_view import impairment_cell
        tail = f" — {impairment_cell(fault)} (impairment shaded)"
    else:
        tail = f" — writable again after {rto:g} s" if rto is not None else ""
    fig.suptitle(f"Fault {number}: {fault.get('fault')} on {fault.get('target')}" + tail,
                 fontsize=11, x=0.01, ha="left")
    fig.tight_layout()
    return fig
