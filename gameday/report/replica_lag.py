"""Replica lag of the DB cluster's readers in the report: the max per reader, and a chart.

The run directory's `replica-lag.jsonl` (written by gameday/lag_sampler.py while the run went
on) holds one line per reader and sample: `lag_seconds` (the reader's `Seconds_Behind_Master`,
what AWS publishes as the CloudWatch metric `ReplicaLag`; null while the reader does not
replicate or does not answer) and `transactions_behind` (the writer's transactions it had not
applied). The summary gets `replica_lag` (None when nothing was sampled), the report a table
and a chart with the faults' markers, so a reader that lagged before or after a failover is
seen beside the shoppers' errors.
"""
import os
from typing import Any, Dict, List, Optional

from groundfloor import run_files
from groundfloor.jsonlines import records
from groundfloor.timefmt import iso

__all__ = ["summarize_lag", "lag_blocks", "lag_chart", "CHART_NAME"]

CHART_NAME = "replica-lag"
SOURCES = {
    "lab": ("each reader's Seconds_Behind_Master (SHOW SLAVE STATUS), what AWS publishes as "
            "the CloudWatch metric ReplicaLag; sampled from the lab once a second"),
    "cloudwatch": ("the CloudWatch metric ReplicaLag (AWS/RDS, per DB instance), the maximum of each "
                   "minute; RDS publishes it once a minute, so the run's last minute may be missing"),
}


def _samples(run_dir: str) -> List[Dict[str, Any]]:
    return [r for r in records(os.path.join(run_dir, run_files.REPLICA_LAG))
            if isinstance(r.get("member"), str) and isinstance(r.get("t"), (int, float))]


def _reader(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    """One reader's figures: its largest lag (seconds, and when), its largest backlog of
    transactions, and how many samples had no lag figure (and the last reason why)."""
    measured = [r for r in rows if isinstance(r.get("lag_seconds"), (int, float))]
    worst = max(measured, key=lambda r: r["lag_seconds"], default=None)
    behind = [r["transactions_behind"] for r in rows if isinstance(r.get("transactions_behind"), int)]
    missing = [r for r in rows if r not in measured]
    return {"az": rows[-1].get("az"), "samples": len(rows),
            "max_lag_seconds": worst["lag_seconds"] if worst else None,
            "max_lag_at": iso(worst["t"]) if worst else None,
            "max_transactions_behind": max(behind) if behind else None,
            "unmeasured_samples": len(missing),
            "unmeasured_why": missing[-1].get("why") if missing else None}


def summarize_lag(run_dir: str) -> Optional[Dict[str, Any]]:
    """summary.json's `replica_lag`: per reader its max lag; None when nothing was sampled."""
    samples = _samples(run_dir)
    if not samples:
        return None
    by_member: Dict[str, List[Dict[str, Any]]] = {}
    for sample in samples:
        by_member.setdefault(sample["member"], []).append(sample)
    readers = {name: _reader(rows) for name, rows in sorted(by_member.items())}
    lags = [r["max_lag_seconds"] for r in readers.values() if r["max_lag_seconds"] is not None]
    return {"source": SOURCES.get(samples[-1].get("source"), SOURCES["lab"]),
            "first_at": iso(samples[0]["t"]), "last_at": iso(samples[-1]["t"]),
            "max_lag_seconds": max(lags) if lags else None, "readers": readers}


def _cell(value: Any) -> str:
    return "—" if value is None else f"{value:g}" if isinstance(value, (int, float)) else str(value)


def lag_blocks(summary: Dict[str, Any]) -> List[tuple]:
    """The report's "Replica lag" section: a row per reader, then its chart."""
    lag = summary.get("replica_lag")
    if not lag:
        return []
    rows = [[name, r["az"] or "—", _cell(r["max_lag_seconds"]),
             (r["max_lag_at"] or "—").split("T")[-1], _cell(r["max_transactions_behind"]),
             f"{r['samples']}" + (f" ({r['unmeasured_samples']} without a figure: {r['unmeasured_why']})"
                                  if r["unmeasured_samples"] else "")]
            for name, r in lag["readers"].items()]
    return [("h2", "Replica lag"),
            ("table", ["reader", "AZ", "max lag s", "at", "max transactions behind", "samples"], rows),
            ("p", f"Lag: {lag['source']}. A reader that was the writer for part of the run has "
                  "samples only while it was a reader."),
            ("charts", CHART_NAME)]


def lag_chart(summary: Dict[str, Any], run_dir: str, t0: Optional[int] = None,
              out_dir: Optional[str] = None) -> List[Dict[str, object]]:
    """The lag per reader over the run, with the faults' markers; x in seconds since `t0` (the
    load timeline's first second, so it lines up with the other charts), else since the first
    sample. [] when nothing was sampled."""
    samples = _samples(run_dir)
    if not samples:
        return []
    from gameday.report.charts import PALETTE, fault_markers, figure_png, plt  # matplotlib: only to draw
    start = int(t0 if t0 is not None else samples[0]["t"])
    fig, ax = plt.subplots(figsize=(10, 3.2))
    for i, name in enumerate(sorted({s["member"] for s in samples})):
        mine = [s for s in samples if s["member"] == name]
        ax.plot([s["t"] - start for s in mine],
                [s["lag_seconds"] if isinstance(s.get("lag_seconds"), (int, float)) else float("nan")
                 for s in mine], label=name, linewidth=1.2, color=PALETTE[i % len(PALETTE)],
                marker=".", markersize=3)
    fault_markers(ax, summary.get("faults") or [], start)
    ax.set_title("Replica lag per reader (Seconds_Behind_Master)", fontsize=10)
    ax.set_ylabel("seconds behind the writer", fontsize=8)
    ax.set_xlabel(f"seconds since {iso(start)}", fontsize=8)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    png, path = figure_png(fig), None
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, f"{CHART_NAME}.png")
        with open(path, "wb") as fh:
            fh.write(png)
    return [{"name": CHART_NAME, "title": "Replica lag per reader", "png": png, "path": path}]
