"""Trend charts of a run history (PNG): one picture per experiment, target and timing profile.

Four panels over the runs in time order: RTO per fault (with its threshold), seconds in which
shoppers saw errors per fault, failed checkouts per fault, and orders and carts lost. Runs that
did not pass are drawn as red crosses, so a slow trend and a broken run look different.
"""
from typing import Dict, List, Sequence

from gameday.report.charts import PALETTE, figure_png, plt
from gameday.report.figures import RunFigures

__all__ = ["trend_chart", "trend_charts", "group_title"]

PANELS = (("rto", "RTO per fault", "s"),
          ("error_seconds", "seconds with shopper errors", "s"),
          ("failed_checkouts", "failed checkouts", "checkouts"))
TICKS = 8
SIZE = (14.4, 5.6)  # 1150 px wide at the report's 80 dpi: the page's width


def _fault_keys(runs: Sequence[RunFigures]) -> List[str]:
    keys: List[str] = []
    for run in runs:
        keys += [f.key for f in run.faults if f.key not in keys]
    return keys


def _plot(ax, xs, ys, ok, colour, label) -> bool:
    """Draws the measured points; False when none of the runs recorded this figure."""
    points = [(x, y, good) for x, y, good in zip(xs, ys, ok) if y is not None]
    if not points:
        return False
    ax.plot([p[0] for p in points], [p[1] for p in points], color=colour, linewidth=1.2,
            marker="o", markersize=3, label=label)
    bad = [p for p in points if not p[2]]
    if bad:
        ax.plot([p[0] for p in bad], [p[1] for p in bad], linestyle="none", marker="x",
                markersize=7, color="#cf222e", markeredgewidth=2)
    return True


def _unrecorded(ax) -> None:
    ax.text(0.5, 0.5, "not recorded by these runs (older version)", transform=ax.transAxes,
            ha="center", va="center", fontsize=9, color="#57606a")


def _thresholds(ax, runs, key, colour) -> None:
    """Dotted RTO threshold lines, unless a threshold would squash the measured RTOs flat."""
    values = [f.rto for r in runs for f in r.faults if f.key == key and f.rto is not None]
    top = max(values, default=0.0)
    for limit in {f.rto_threshold for r in runs for f in r.faults if f.key == key} - {None}:
        if limit <= 3 * top:
            ax.axhline(limit, color=colour, linestyle=":", linewidth=1)


def _panel(ax, runs, xs, ok, name, title, unit, keys) -> None:
    drawn = False
    for i, key in enumerate(keys):
        colour = PALETTE[i % len(PALETTE)]
        drawn |= _plot(ax, xs, [r.value(name, key) for r in runs], ok, colour, key)
        if name == "rto":
            _thresholds(ax, runs, key, colour)
    if not drawn:
        _unrecorded(ax)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(unit, fontsize=8)
    ax.set_ylim(bottom=0)


def _date_ticks(ax, runs: Sequence[RunFigures]) -> None:
    """Runs are evenly spaced (scheduled runs are); ticks name the run's start date."""
    labels = [(r.start or "")[:16].replace("T", "\n") or r.run_id for r in runs]
    ax.xaxis.set_major_locator(plt.MaxNLocator(TICKS, integer=True))
    ax.xaxis.set_major_formatter(plt.FuncFormatter(
        lambda v, _: labels[int(v)] if 0 <= int(v) < len(labels) and v == int(v) else ""))


def trend_chart(runs: Sequence[RunFigures], title: str) -> bytes:
    """One PNG (2×2 panels) for runs of one experiment, target and profile, oldest first.

    The x axis is the run's position (tick labels: start time): date axes and automatic
    layout cost matplotlib seconds per chart, and a history page has one chart per group.
    """
    xs = list(range(len(runs)))
    ok = [r.verdict == "passed" and not r.regressed for r in runs]
    keys = _fault_keys(runs)
    fig, axes = plt.subplots(2, 2, figsize=SIZE, sharex=True)
    for ax, (name, label, unit) in zip(axes.flat, PANELS):
        _panel(ax, runs, xs, ok, name, label, unit, keys)
    lost = axes.flat[3]
    if not (_plot(lost, xs, [r.orders_lost for r in runs], ok, "#cf222e", "acknowledged orders lost")
            | _plot(lost, xs, [r.carts_lost for r in runs], ok, PALETTE[1], "carts lost")):
        _unrecorded(lost)
    lost.set_title("orders and carts lost", fontsize=10)
    lost.set_ylim(bottom=0)
    for ax in (lost, axes.flat[0]):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left", frameon=False)
    for ax in axes.flat:
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=7)
        ax.set_xlim(-0.5, max(len(runs) - 0.5, 0.5))
        _date_ticks(ax, runs)
    for ax in axes[1]:
        ax.set_xlabel("run start (UTC)", fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.subplots_adjust(left=0.05, right=0.99, top=0.9, bottom=0.14, hspace=0.45, wspace=0.12)
    return figure_png(fig)


def group_title(group: tuple, count: int) -> str:
    experiment, target, profile = group
    return (f"{experiment or 'untitled experiment'} — {target or 'unknown target'}"
            + (f", timing {profile}" if profile else "") + f" ({count} runs)")


def trend_charts(runs: Sequence[RunFigures]) -> List[Dict[str, object]]:
    """[{"title", "png"}] per experiment/target/profile with at least one readable run (dry
    runs inject nothing, so they are left out)."""
    groups: Dict[tuple, List[RunFigures]] = {}
    for run in runs:
        if run.problem is None and not run.dry_run:
            groups.setdefault(run.group, []).append(run)
    return [{"title": group_title(g, len(rs)), "png": trend_chart(rs, group_title(g, len(rs)))}
            for g, rs in sorted(groups.items(), key=lambda kv: tuple(str(x) for x in kv[0]))]
