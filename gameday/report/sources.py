"""Read the files of a run directory, tolerating the ones a short or broken run never wrote.

A run killed early may lack a journal, a load that never started leaves no timeline; the report
still says what is known. Only a directory with none of the run files is a user mistake.
"""
import json
import os
from typing import Any, Dict, List, Optional, Tuple

from chaosext import faultlog
from chaosext.errors import GamedayError
from chaosext.load.timeline import percentile, read_lines
from gameday.report.cause import interruption_cause
from groundfloor import run_files

__all__ = ["ReportError", "RunFiles", "read_run"]

RUN_FILES = (run_files.JOURNAL, run_files.TIMELINE, run_files.ORDERS, run_files.LOAD_SUMMARY, faultlog.LEDGER,
             run_files.EXPERIMENT)


class ReportError(GamedayError):
    """The run directory cannot be reported on (missing, empty, unreadable journal)."""


class RunFiles:
    """A run directory, parsed: journal, per-second timeline, order ledger, load summary."""

    def __init__(self, run_dir: str, journal: Optional[dict], cells: Dict[Tuple[int, str], dict],
                 orders: List[dict], load_summary: Optional[dict], target: Optional[dict],
                 ledger: Optional[List[dict]] = None, cause: Optional[dict] = None,
                 experiment: Optional[dict] = None):
        self.run_dir = run_dir
        self.journal = journal
        self.cells = cells  # (second, step) -> summed line (lines for the same cell are merged)
        self.orders = orders
        self.load_summary = load_summary
        self.target = target  # target.json, if the CLI wrote one
        self.ledger = ledger or []  # faults.jsonl: every fault injected, even if never journaled
        self.cause = cause  # why the run was interrupted, if it was and that is known
        self.experiment = experiment  # experiment.json, the run's input (when there is no journal)

    @property
    def run_id(self) -> str:
        return os.path.basename(os.path.normpath(self.run_dir))

    @property
    def steps(self) -> List[str]:
        return sorted({step for _, step in self.cells})

    @property
    def seconds(self) -> List[int]:
        return sorted({t for t, _ in self.cells})


def _read_json(path: str) -> Optional[Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot read {path}: {exc}") from None


def _merge_cells(path: str) -> Dict[Tuple[int, str], dict]:
    """Sum timeline lines by (t, step): each worker writes its own line, and a late worker batch
    adds another; counts and histograms add up, the p95 comes from the summed histogram."""
    cells: Dict[Tuple[int, str], dict] = {}
    for line in read_lines(path):
        if "t" not in line or "step" not in line:
            continue
        key = (int(line["t"]), str(line["step"]))
        cell = cells.get(key)
        if cell is None:
            cells[key] = {"requests": int(line.get("requests", 0)),
                          "failures": int(line.get("failures", 0)),
                          "carts_lost": int(line.get("carts_lost", 0)),
                          "errors": dict(line.get("errors") or {}),
                          "hist": [list(p) for p in line.get("hist") or []],
                          "p95": float(line.get("p95") or 0.0)}
            if "failed_shoppers" in line:
                cells[key]["failed_shoppers"] = set(line["failed_shoppers"] or ())
            continue
        cell["requests"] += int(line.get("requests", 0))
        cell["failures"] += int(line.get("failures", 0))
        cell["carts_lost"] += int(line.get("carts_lost", 0))
        for k, n in (line.get("errors") or {}).items():
            cell["errors"][k] = cell["errors"].get(k, 0) + n
        cell["hist"].extend(list(p) for p in line.get("hist") or [])
        # one line per worker (or a late batch): the second's p95 is that of the merged histogram
        cell["p95"] = percentile(cell["hist"], 95) if cell["hist"] else \
            max(cell["p95"], float(line.get("p95") or 0.0))
        if "failed_shoppers" in line and "failed_shoppers" in cell:
            cell["failed_shoppers"].update(line["failed_shoppers"] or ())
        else:
            cell.pop("failed_shoppers", None)  # one line without ids: the count is not exact
    return cells


def read_run(run_dir: str) -> RunFiles:
    """Parse a run directory; raises ReportError when it is not one."""
    if not os.path.isdir(run_dir):
        raise ReportError(f"no such run directory: {run_dir}")
    if not any(os.path.exists(os.path.join(run_dir, name)) for name in RUN_FILES):
        raise ReportError(f"{run_dir} is not a run directory (none of {', '.join(RUN_FILES)})")
    journal = _read_json(os.path.join(run_dir, run_files.JOURNAL))
    if journal is not None and not isinstance(journal, dict):
        raise ReportError(f"{run_dir}/journal.json is not a Chaos Toolkit journal")
    orders = [o for o in read_lines(os.path.join(run_dir, run_files.ORDERS)) if "order_id" in o]
    load_summary = _read_json(os.path.join(run_dir, run_files.LOAD_SUMMARY))
    target = _read_json(os.path.join(run_dir, run_files.TARGET))
    experiment = None if journal else _read_json(os.path.join(run_dir, run_files.EXPERIMENT))
    return RunFiles(run_dir, journal, _merge_cells(os.path.join(run_dir, run_files.TIMELINE)),
                    orders, load_summary if isinstance(load_summary, dict) else None,
                    target if isinstance(target, dict) else None,
                    ledger=faultlog.read(run_dir), cause=interruption_cause(run_dir),
                    experiment=experiment if isinstance(experiment, dict) else None)
