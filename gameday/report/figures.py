"""The headline figures of a run, read from any version of its summary.json.

History, the baseline gate and the report's first screen all need the same few numbers: the
verdict, per fault its RTO and what shoppers felt, and the orders and carts lost. Runs copied
from CI artifacts or synced from S3 carry summaries written by older versions of the pack (no
shopper impact, no timing profile) or damaged files; every reader here takes what is there and
leaves the rest as None, so an old run shows what it has.
"""
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional
from groundfloor import run_files

__all__ = ["FaultFigures", "RunFigures", "from_summary", "read_run_figures", "find_runs",
           "GATE_FIGURES"]

# figure name -> (label, unit): the numbers the baseline gate compares, per fault or per run
GATE_FIGURES = {"rto": ("RTO", "s"), "error_seconds": ("seconds with shopper errors", "s"),
                "failed_checkouts": ("failed checkouts", ""),
                "orders_lost": ("acknowledged orders lost", ""), "carts_lost": ("carts lost", "")}
FAULT_FIGURES = ("rto", "error_seconds", "failed_checkouts")
RUN_FIGURES = ("orders_lost", "carts_lost")


def _num(value: Any) -> Optional[float]:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _dict(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


@dataclass
class FaultFigures:
    fault: str
    target: str
    rto: Optional[float] = None
    rto_threshold: Optional[float] = None
    error_seconds: Optional[float] = None
    affected_for: Optional[float] = None
    failed_checkouts: Optional[float] = None
    shoppers: Optional[int] = None  # exact, when the timeline recorded shopper ids
    shoppers_at_most: Optional[int] = None
    affected_steps: List[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.fault} on {self.target}"


@dataclass
class RunFigures:
    run_id: str
    path: str = ""  # the run directory, relative to the reports directory it was found in
    problem: Optional[str] = None  # why the summary could not be read (then nothing else is set)
    schema: Optional[str] = None
    experiment: Optional[str] = None
    target: Optional[str] = None
    profile: Optional[str] = None
    shop_settings: Dict[str, Any] = field(default_factory=dict)
    verdict: Optional[str] = None
    start: Optional[str] = None
    faults: List[FaultFigures] = field(default_factory=list)
    orders_lost: Optional[float] = None
    carts_lost: Optional[float] = None
    regressed: Optional[bool] = None  # the baseline gate's outcome, if it ran
    dry_run: bool = False  # faults described, none injected: never a baseline, never a trend

    @property
    def group(self) -> tuple:
        """Runs that may be compared: same experiment, target and timing profile."""
        return (self.experiment, self.target, self.profile)

    @property
    def passing(self) -> bool:
        return (self.problem is None and self.verdict == "passed" and not self.regressed
                and not self.dry_run)

    def total(self, name: str) -> Optional[float]:
        values = [getattr(f, name) for f in self.faults if getattr(f, name) is not None]
        return sum(values) if values else None

    def value(self, name: str, fault_key: Optional[str] = None) -> Optional[float]:
        if fault_key is None:
            return getattr(self, name)
        fault = next((f for f in self.faults if f.key == fault_key), None)
        return None if fault is None else getattr(fault, name)


def _target(raw: Dict[str, Any]) -> str:
    """The fault's target as runs are compared by it: an FIS fault that targets the experiment
    template its run created has a new id every run, so it is named by what it is."""
    target = str(raw.get("target") or "?")
    return "its FIS template" if target == _dict(raw.get("fis")).get("template_id") else target


def _fault(raw: Dict[str, Any]) -> FaultFigures:
    impact = _dict(raw.get("impact"))
    return FaultFigures(
        fault=str(raw.get("fault") or "?"), target=_target(raw),
        rto=_num(raw.get("rto_seconds")), rto_threshold=_num(raw.get("rto_threshold_seconds")),
        error_seconds=_num(impact.get("error_seconds")),
        affected_for=_num(impact.get("affected_for_seconds")),
        failed_checkouts=_num(impact.get("failed_checkouts")),
        shoppers=_num(impact.get("shoppers_affected")),
        shoppers_at_most=_num(impact.get("shoppers_affected_at_most")),
        affected_steps=[s for s in impact.get("affected_steps") or [] if isinstance(s, str)])


def _profile(summary: Dict[str, Any], target: Dict[str, Any]) -> Optional[str]:
    """The timing profile (`fast`, `aws`, …): where a summary keeps it, if it does."""
    for value in (target.get("timing_profile"), summary.get("timing_profile"),
                  _dict(summary.get("timing")).get("profile")):
        if _text(value):
            return value
    return None


def from_summary(summary: Any, run_id: str = "?", path: str = "") -> RunFigures:
    """Headline figures of a parsed summary.json (any schema version; junk gives a problem)."""
    if not isinstance(summary, dict) or not isinstance(summary.get("faults", []), list) or not (
            "schema" in summary or "verdict" in summary):
        return RunFigures(run_id=run_id, path=path, problem="not a game-day summary")
    target, rpo = _dict(summary.get("target")), _dict(summary.get("rpo"))
    settings = target.get("shop_settings") or summary.get("shop_settings")
    faults = [f for f in summary.get("faults") or [] if isinstance(f, dict)]
    return RunFigures(
        run_id=_text(summary.get("run_id")) or run_id, path=path,
        schema=_text(summary.get("schema")),
        experiment=_text(_dict(summary.get("experiment")).get("title")),
        target=_text(target.get("kind")), profile=_profile(summary, target),
        shop_settings=settings if isinstance(settings, dict) else {},
        verdict=_text(summary.get("verdict")), start=_text(summary.get("start")),
        faults=[_fault(f) for f in faults],
        orders_lost=_num(rpo.get("orders_lost")), carts_lost=_num(rpo.get("carts_lost")),
        regressed=_dict(summary.get("baseline")).get("regressed"),
        dry_run=bool(faults) and all(f.get("dry_run") for f in faults))


def read_run_figures(summary_path: str, path: str = "") -> RunFigures:
    """Figures of one summary.json file; an unreadable file gives a RunFigures with a problem."""
    run_id = os.path.basename(os.path.dirname(os.path.abspath(summary_path)))
    try:
        with open(summary_path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        reason = "not valid JSON" if isinstance(exc, ValueError) else exc.strerror or str(exc)
        return RunFigures(run_id=run_id, path=path, problem=f"summary.json unreadable: {reason}")
    return from_summary(data, run_id, path)


def find_runs(reports_dir: str, max_depth: int = 4) -> List[RunFigures]:
    """Every run under `reports_dir` (a directory holding a summary.json), oldest first.

    Searches a few levels deep, since CI artifacts unpack as <artifact>/reports/<run-id>/.
    """
    found = []
    base = os.path.abspath(reports_dir)
    for root, dirs, files in os.walk(base):
        depth = root[len(base):].count(os.sep)
        if run_files.SUMMARY in files and "suite.json" not in files:  # a suite's runs lie below it
            rel = os.path.relpath(root, base)
            found.append(read_run_figures(os.path.join(root, run_files.SUMMARY), rel))
            dirs[:] = []  # a run directory holds no further runs (charts/ and so on)
        elif depth >= max_depth:
            dirs[:] = []
        dirs.sort()
    return sorted(found, key=lambda r: (r.start or "", r.run_id))
