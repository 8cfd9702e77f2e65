"""`gameday suite`: run a suite's experiments in order as one job, with one verdict.

On the lab the lab is started once (and stopped at the end if the suite started it), its lock
held throughout. Each experiment is one ordinary `gameday run` (through `run_experiment`, the
one place a suite calls the run entry point) with its own run directory inside the suite's:
reports/<suite-id>/<entry>/. Between experiments `restore` undoes what the previous one
changed and checks the steady state; if that fails, the rest does not run.

A signal (Ctrl-C, SIGTERM, SIGHUP) stops the experiment in progress as in `gameday run`
(rollbacks, its report); the rest is skipped, and the suite's report is still written, marking
what did not run. The exit code is 0 only if every experiment passed and the score held its
gate (and, with a baseline, nothing regressed); 128 + N after signal N.
"""
import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from chaosext.errors import GamedayError
from woolab import manage
from woolab.config import LabConfig
from woolab.errors import LabError
from woolab.runlock import lab_lock

from ..interrupt import Interrupts
from .restore import restore
from .spec import Entry, Suite, load_suite
from .trend import SUITE_MARK
from groundfloor import run_files

__all__ = ["SuiteRequest", "run_suite", "run_experiment", "dry_run_suite"]


@dataclass
class SuiteRequest:
    """What `gameday suite` was asked to do (checked by the CLI before anything runs)."""
    suite: str
    target: str = "lab"
    timing: Optional[str] = None
    continue_on_failure: bool = False
    dry_run: bool = False
    baseline: Optional[str] = None
    state_dir: Optional[Path] = None
    region: Optional[str] = None
    yes: bool = False
    accept_any_account: bool = False
    keep_lab: bool = False
    suite_id: Optional[str] = None
    users: Optional[int] = None  # overrides every entry's
    interrupts: Optional[Interrupts] = None


def run_experiment(entry: Entry, request: SuiteRequest, experiment_file: Path,
                   run_id: Optional[str], signals: Optional[Interrupts], dry_run: bool = False) -> int:
    """The one call from a suite into `gameday run`: one typed run request per entry
    (gameday/request.py), validated once, handed to `game_day` as it is."""
    from woolab import manage
    from ..request import Consent, LabRequest, LoadRequest, build
    from ..run import game_day
    lab = LabRequest(state_dir=request.state_dir or manage.default_state_dir(), keep=True,
                     shop_settings=dict(entry.shop_settings or {}))
    run_request = build(str(experiment_file), request.target, lab=lab, run_id=run_id, region=request.region,
                        dry_run=dry_run, load=LoadRequest(users=request.users or entry.users,
                                                          spawn_rate=entry.spawn_rate),
                        consent=Consent(yes=request.yes, accept_any_account=request.accept_any_account))
    return game_day(run_request, interrupts=signals)


def effective_experiment(entry: Entry, into: Path) -> Path:
    """The experiment as this entry runs it: its RTO thresholds replaced by the entry's."""
    if entry.rto_threshold_seconds is None:
        return entry.path
    from ..run import load_and_validate
    spec = load_and_validate(entry.path)
    spec.setdefault("configuration", {})["rto_threshold_seconds"] = entry.rto_threshold_seconds
    into.mkdir(parents=True, exist_ok=True)
    path = into / f"{entry.name}.json"
    path.write_text(json.dumps(spec, indent=2))
    return path


def _suite_id(suite: Suite, given: Optional[str]) -> str:
    return given or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-suite-{suite.name}"


def run_suite(request: SuiteRequest) -> int:
    """Check everything, run the suite, write its report; the exit code is the gate."""
    from ..run import reports_dir
    from . import trend
    if request.target not in ("lab", "aws"):
        raise GamedayError(f"unknown target {request.target!r}: use lab or aws")
    suite = load_suite(request.suite, request.target)
    if request.baseline is not None:
        trend.parse_baseline(request.baseline)
    request.state_dir = request.state_dir or manage.default_state_dir()
    suite.timing = request.timing or suite.timing
    if request.target == "lab" and not request.dry_run:
        _refuse_other_timing(suite, request.state_dir)
    if request.dry_run:
        return dry_run_suite(suite, request)
    suite_id = _suite_id(suite, request.suite_id)
    suite_dir = reports_dir() / suite_id
    if suite_dir.exists() and any(suite_dir.iterdir()):
        raise GamedayError(f"suite directory {suite_dir} already exists; choose another --suite-id")
    lock = lab_lock(request.state_dir, run_id=suite_id) if request.target == "lab" \
        else contextlib.nullcontext()
    with (request.interrupts or Interrupts()).installed() as signals, lock:
        return _run_and_report(suite, request, suite_dir, signals)


def _run_and_report(suite: Suite, request: SuiteRequest, suite_dir: Path,
                    signals: Interrupts) -> int:
    from .report import write_suite_report
    suite_dir.mkdir(parents=True, exist_ok=True)
    (suite_dir / SUITE_MARK).write_text(json.dumps(suite.as_dict(), indent=2))
    started_lab, rows, began = False, [_row(e) for e in suite.entries], time.time()
    try:
        if request.target == "lab":
            started_lab = _lab_for(suite.entries[0], suite, request.state_dir)
        _run_entries(suite, request, suite_dir, rows, signals)
    except KeyboardInterrupt as exc:  # a signal while starting the lab or restoring
        _mark_rest(rows, f"stopped by {exc or 'a signal'} before it started")
    except LabError as exc:  # the lab did not start: nothing ran, the report says why
        _mark_rest(rows, f"the lab did not start: {exc}")
    finally:
        if started_lab and not request.keep_lab:
            with signals.deferring():
                print(manage.down(request.state_dir), flush=True)
    with signals.deferring():
        code = write_suite_report(suite, request, suite_dir, rows, began)
    return signals.exit_code(code)


def _row(entry: Entry) -> Dict[str, Any]:
    status = "skipped" if entry.skip_reason else "pending"
    return {"name": entry.name, "experiment": entry.path.stem, "weight": entry.weight,
            "category": entry.category, "impact_budget": entry.impact_budget, "status": status,
            "reason": entry.skip_reason, "verdict": None, "exit_code": None, "run_dir": None,
            "summary": None, "restore_before": None, "seconds": None}


def _mark_rest(rows: List[Dict[str, Any]], reason: str) -> None:
    for row in rows:
        if row["status"] == "pending":
            row.update(status="not_run", reason=reason)


def _same_timing(running: str, wanted: Optional[str]) -> bool:
    return wanted is None or Path(running).stem == Path(wanted).stem


def _refuse_other_timing(suite: Suite, state_dir: Path) -> None:
    """A lab someone else started is never restarted: its timing must suit every entry."""
    if not manage.is_up(state_dir):
        return
    running = LabConfig.load(state_dir).timing
    for entry in suite.entries:
        wanted = entry.timing or suite.timing
        if not entry.skip_reason and not _same_timing(running, wanted):
            raise GamedayError(f"the lab is already up with timing {Path(running).stem!r} but "
                               f"{entry.name} asks for {wanted!r}; stop the lab (`gameday lab "
                               "down`) so the suite starts its own, or drop the timing")


def _lab_for(entry: Entry, suite: Suite, state_dir: Path) -> bool:
    """The lab with the timing this entry wants, started (True) or restarted when needed."""
    timing = entry.timing or suite.timing
    if manage.is_up(state_dir):
        running = LabConfig.load(state_dir).timing
        if _same_timing(running, timing):
            return False
        print(f"gameday: suite: restarting the lab with timing {timing} (was {running})", flush=True)
        print(manage.down(state_dir), flush=True)
    print(manage.up(LabConfig.from_env(state_dir=state_dir, timing=timing)), flush=True)
    return True


def _run_entries(suite: Suite, request: SuiteRequest, suite_dir: Path,
                 rows: List[Dict[str, Any]], signals: Interrupts) -> None:
    previous: Optional[Path] = None
    for entry, row in zip(suite.entries, rows):
        if row["status"] != "pending":
            continue
        if previous is not None:
            try:
                row["restore_before"] = restore(previous, request.target, request.state_dir,
                                                yes=request.yes or request.target == "lab")
            except (GamedayError, LabError) as exc:  # e.g. the lab's controller died
                _mark_rest(rows, f"the lab could not be restored after {previous.name}: {exc}")
                return
            print("gameday: suite: restored before " + entry.name + ": "
                  + _restored_text(row["restore_before"]), flush=True)
            if not row["restore_before"]["ok"]:
                _mark_rest(rows, f"the steady state did not return after {previous.name}: "
                           + "; ".join(row["restore_before"]["problems"] or ["see restore_before"]))
                return
            if request.target == "lab":
                _lab_for(entry, suite, request.state_dir)
        previous = _run_one(entry, row, request, suite_dir, signals)
        if signals.first is not None:
            _mark_rest(rows, f"the suite was stopped during {entry.name}")
            return
        if row["verdict"] != "passed" and not request.continue_on_failure:
            _mark_rest(rows, f"{entry.name} did not pass (--continue-on-failure runs the rest)")
            return


def _restored_text(done: Dict[str, Any]) -> str:
    lab = "" if done.get("converged") is None else (
        "; full redundancy" + (" after lab repair" if done.get("repaired") else "")
        if done["converged"] else "; NOT converged: " + "; ".join(done.get("problems") or []))
    shop = "" if done.get("shop_status") is None else f"; shop answers {done['shop_status']}"
    return f"{done['failback']}{lab}{shop} ({done['seconds']} s)"


def _run_one(entry: Entry, row: Dict[str, Any], request: SuiteRequest, suite_dir: Path,
             signals: Interrupts) -> Optional[Path]:
    """Run one entry; fills its row and returns its run directory."""
    run_dir = suite_dir / entry.name
    print(f"gameday: suite {suite_dir.name}: {entry.name} ({entry.path.stem})", flush=True)
    started = time.monotonic()
    row.update(status="ran", run_dir=entry.name)
    try:
        row["exit_code"] = run_experiment(entry, request, effective_experiment(
            entry, suite_dir / "experiments"), f"{suite_dir.name}/{entry.name}", signals)
    except GamedayError as exc:
        row.update(exit_code=1, reason=str(exc))
    except KeyboardInterrupt as exc:  # a signal before its chaos run started: it did not run
        row.update(status="not_run", reason=f"stopped by {exc or 'a signal'} before it started")
        raise
    finally:
        row["seconds"] = round(time.monotonic() - started, 1)
    try:
        row["summary"] = json.loads((run_dir / run_files.SUMMARY).read_text())
        row["verdict"] = row["summary"].get("verdict")
    except (OSError, ValueError):
        row.update(status="not_run" if not run_dir.exists() else "ran", verdict="failed",
                   reason=row["reason"] or "the run wrote no summary.json")
    return run_dir if run_dir.exists() else None


def dry_run_suite(suite: Suite, request: SuiteRequest) -> int:
    """Every entry's preflight (read-only), then one plan; 0 when all are ready, 2 if not."""
    if request.target == "lab" and not manage.is_up(request.state_dir):
        raise GamedayError("the lab is not up (a dry run starts nothing): gameday lab up")
    lines, ready = [], True
    for entry in suite.entries:
        if entry.skip_reason:
            lines.append((entry.name, entry.weight, "SKIP", entry.skip_reason))
            continue
        print(f"gameday: suite {suite.name}: preflight of {entry.name}", flush=True)
        code = run_experiment(entry, request, entry.path, None, request.interrupts, dry_run=True)
        ready = ready and code == 0
        lines.append((entry.name, entry.weight, "READY" if code == 0 else "NOT READY",
                      _settings_text(entry)))
    print(f"\nsuite {suite.name} on the {request.target}: {suite.title}")
    print(f"{'#':<3}{'EXPERIMENT':<32}{'WEIGHT':<8}{'PREFLIGHT':<11}SETTINGS / REASON")
    for i, (name, weight, status, text) in enumerate(lines, 1):
        print(f"{i:<3}{name:<32}{weight:<8g}{status:<11}{text}")
    print(f"gate: score ≥ {suite.min_score:g} and every experiment passed"
          + (f"; baseline {request.baseline}" if request.baseline else ""))
    return 0 if ready else 2


def _settings_text(entry: Entry) -> str:
    parts = [f"users={entry.users}" if entry.users else "",
             " ".join(f"{k}={v}" for k, v in entry.shop_settings.items()),
             f"timing={entry.timing}" if entry.timing else "",
             f"rto≤{json.dumps(entry.rto_threshold_seconds)}" if entry.rto_threshold_seconds else "",
             " ".join(f"{k}≤{v:g}" for k, v in entry.impact_budget.items())]
    return " ".join(p for p in parts if p) or "-"
