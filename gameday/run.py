"""`gameday run` and `gameday list`: one game day, from an experiment file to a verdict.

The experiment runs in Chaos Toolkit's own `chaos run` (a child in a session of its own, to which
every SIGINT, SIGTERM or SIGHUP we get is passed on as Ctrl-C, so its rollbacks and load control
still run: gameday/interrupt.py), with the journal and every measurement in `./reports/<run-id>/`
of the working directory. Runs against the lab hold its lock (woolab/runlock.py) so two game days
never share one lab. The target is chosen by environment only: for the lab we start it when
needed and export `AWS_ENDPOINT_URL` and the endpoints; for AWS we check that a region and
credentials exist and leave boto3's normal chain alone.
"""
import contextlib
import importlib.resources
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from woolab import manage, runlock
from woolab.config import LabConfig

from chaosext import rundir
from chaosext.errors import GamedayError

from . import lag_sampler, safety
from .live.session import live_session
from .console import Console
from .pulse import Pulse
from .interrupt import Interrupts
from .request import RunRequest
from .verdict import finish, journal_verdict, verdict_table
from groundfloor import run_files

__all__ = ["catalog", "doc_page", "resolve", "load_and_validate", "apply_overrides", "load_layout", "check_gate",
           "target_env", "game_day", "finish", "journal_verdict", "verdict_table", "write_target"]

# package data, so an installed wheel lists the same catalogue as a checkout (experiments/ there)
EXPERIMENTS_DIR = Path(str(importlib.resources.files("gameday").joinpath("experiments")))
LOAD_CONTROL = "chaosext.load.control"
PHASES_CONTROL = "chaosext.progress"
FIS_VARIANT = "-fis"  # suffix of an experiment that runs its sibling's fault through AWS FIS


def catalog() -> List[dict]:
    """The experiments shipped in gameday/experiments/, with their titles and descriptions."""
    entries = []
    for path in sorted(EXPERIMENTS_DIR.glob("*.json")):
        data = json.loads(path.read_text())
        entries.append({"name": path.stem, "title": data.get("title", ""), "path": str(path),
                        "description": data.get("description", ""), "tags": data.get("tags", []),
                        "doc": doc_page(path.stem)})
    return entries


def doc_page(name: str) -> str:
    """The page of docs/experiments/ that documents an experiment: its own, except that an FIS
    variant (`<sibling>-fis`) is the "On AWS" part of its lab sibling's page, so one page tells
    both forms of a fault apart."""
    sibling = name.removesuffix(FIS_VARIANT)
    if sibling != name and (EXPERIMENTS_DIR / f"{sibling}.json").is_file():
        return f"docs/experiments/{sibling}.md"
    return f"docs/experiments/{name}.md"


def resolve(name_or_path: str) -> Path:
    return find_shipped(name_or_path, EXPERIMENTS_DIR, [e["name"] for e in catalog()], "experiment")


def find_shipped(name_or_path: str, directory: Path, known: List[str], what: str) -> Path:
    """A file path as given, or the shipped `<directory>/<name>.json` for a bare name."""
    path = Path(name_or_path)
    if path.is_file():
        return path.resolve()
    candidate = directory / f"{path.name.removesuffix('.json')}.json"
    if candidate.is_file() and path.parent == Path("."):
        return candidate
    raise GamedayError(f"unknown {what} {name_or_path!r} (shipped: {', '.join(known)}; or give a file path)")


def load_and_validate(path: Path) -> dict:
    """Parse and validate with chaoslib, so a broken file fails before anything is touched."""
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid
    try:
        experiment = json.loads(path.read_text())
    except ValueError as exc:
        raise GamedayError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(experiment, dict):
        raise GamedayError(f"{path} is not an experiment (expected a JSON object)")
    try:
        ensure_experiment_is_valid(experiment)
    except ChaosException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GamedayError(f"{path.name} failed validation: {first}") from None
    _check_thresholds(path, experiment)
    return experiment


def _check_thresholds(path: Path, experiment: dict) -> None:
    """Refuse an experiment whose `impairment_thresholds` cannot be judged (one sentence that
    names the entry), before anything is started."""
    from chaosext.thresholds import impairment_thresholds
    value = (experiment.get("configuration") or {}).get("impairment_thresholds")
    if isinstance(value, dict) and value.get("type") == "env":
        value = os.environ.get(str(value.get("key"))) or value.get("default")
    try:
        impairment_thresholds(value)
    except GamedayError as exc:
        raise GamedayError(f"{path.name}: {exc}") from None


def apply_overrides(experiment: dict, users: Optional[int] = None, spawn_rate: Optional[float] = None,
                    dry_run: bool = False, allow_remote_load: bool = False,
                    distributed: Optional[dict] = None) -> dict:
    """Command-line knobs win over the file: load size and layout (see `load_layout`), dry run
    (guardrails describe only), and the explicit opt-in to send load to a non-loopback shop (a
    staging store on AWS)."""
    for control in experiment.get("controls", []):
        provider = control.get("provider", {})
        if provider.get("module") == LOAD_CONTROL:
            arguments = provider.setdefault("arguments", {})
            if users is not None:
                if users < 1:
                    raise GamedayError("--users must be at least 1")
                arguments["users"] = users
            if spawn_rate is not None:
                arguments["spawn_rate"] = spawn_rate
            arguments.update(distributed or {})
    if dry_run:
        experiment.setdefault("configuration", {})["gameday_dry_run"] = True
    if allow_remote_load:
        experiment.setdefault("configuration", {})["load_allow_remote_host"] = True
    return experiment


def load_layout(workers: Optional[int] = None, master_bind: Optional[str] = None,
                remote_workers: Optional[int] = None) -> dict:
    """The load control's distributed arguments from `--workers`, `--master-bind` and
    `--remote-workers`, refused before anything starts when they cannot work."""
    from chaosext.load.settings import check_master_port, parse_bind
    if workers is not None and workers < 1:
        raise GamedayError(f"--workers must be at least 1 (got {workers}): a Locust master "
                           "without workers generates no load")
    if remote_workers is not None and remote_workers < 1:
        raise GamedayError(f"--remote-workers must be at least 1 (got {remote_workers})")
    layout = {k: v for k, v in (("workers", workers), ("remote_workers", remote_workers))
              if v is not None}
    if master_bind is not None:
        host, port = parse_bind(master_bind)
        check_master_port(host, port)
        layout["master_bind"] = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    if layout and not workers:
        if not remote_workers:
            raise GamedayError("--master-bind needs --workers N or --remote-workers N")
        layout["master"] = True
    return layout


def target_env(request: RunRequest) -> Tuple[Dict[str, str], bool]:
    """Environment for the request's target, and whether we started the lab ourselves (with the
    request's timing profile and TLS)."""
    env = dict(os.environ)
    if request.target == "lab":
        state_dir, started = request.lab.state_dir, False
        if not manage.is_up(state_dir):
            config = LabConfig.from_env(state_dir=state_dir, timing=request.lab.timing,
                                        tls=request.lab.tls or None, db_topology=request.lab.db_topology)
            request.console.say(manage.up(config))
            started = True
        env.update(manage.env(state_dir))
        return env, started
    import boto3
    import botocore.exceptions
    try:
        session = boto3.Session()  # the profile's region and credentials count, as for botocore
        region = request.region or env.get("AWS_REGION") or session.region_name
        credentials = session.get_credentials()
    except botocore.exceptions.BotoCoreError as exc:
        raise GamedayError(f"--target aws: the AWS configuration cannot be read ({exc})") from None
    if not region:
        raise GamedayError("--target aws needs a region: pass --region, set AWS_REGION or the "
                           "profile's region (~/.aws/config)")
    if credentials is None:
        raise GamedayError("--target aws found no AWS credentials (environment, profile, SSO or instance role)")
    env.update({"GAMEDAY_TARGET": "aws", "AWS_REGION": region, "AWS_DEFAULT_REGION": region})
    return env, False


def check_gate(baseline: Optional[str], tolerance: Optional[str]) -> None:
    """--baseline / --tolerance checked before anything runs: bad input costs no game day."""
    if baseline is None:
        if tolerance is not None:
            raise GamedayError("--tolerance needs --baseline last:N or --baseline RUN_DIR")
        return
    from .report.baseline import parse_baseline, parse_tolerance
    parse_baseline(baseline)
    parse_tolerance(tolerance)


def reports_dir() -> Path:
    """Where run directories go: $GAMEDAY_REPORTS_DIR, else reports/ of the working directory."""
    return rundir.reports_dir()


def new_run_id(experiment_path: Path) -> str:
    return rundir.run_id(experiment_path.stem)


def with_phases(spec: dict) -> dict:
    """Record the run's progress for the pulse and the live view (chaosext.progress), first among
    the controls so a phase is on record before the other controls' hooks for it (e.g. the load's
    warm-up); the step-by-step mode puts its pause control before it (gameday/live/options.py)."""
    controls = spec.setdefault("controls", [])
    if not any((c.get("provider") or {}).get("module") == PHASES_CONTROL for c in controls):
        controls.insert(0, {"name": "progress",
                            "provider": {"type": "python", "module": PHASES_CONTROL}})
    return spec


def rollback_args(spec: dict) -> List[str]:
    """The experiment's own rollback strategy (its `runtime`) wins; without one, always play them."""
    if ((spec.get("runtime") or {}).get("rollbacks") or {}).get("strategy"):
        return []
    return ["--rollback-strategy", "always"]


def run_chaos(experiment_file: Path, run_dir: Path, env: Dict[str, str], signals: Interrupts,
              spec: Optional[dict] = None, console: Optional[Console] = None) -> int:
    """`chaos run` in the run dir, with the pulse printed meanwhile; a signal stops the method,
    a second the rollbacks. Quiet, Chaos Toolkit's console log goes to a file of the run dir
    (its `--log-file` has every record anyway)."""
    console = console or Console()
    chaos = Path(sys.executable).parent / "chaos"
    argv = [str(chaos) if chaos.exists() else "chaos", "--log-file", str(run_dir / "chaostoolkit.log"),
            "run", "--journal-path", str(run_dir / run_files.JOURNAL), *rollback_args(spec or {}),
            str(experiment_file)]
    pulse = Pulse(str(run_dir), every=console.pulse_every, write=console.pulse_line)
    with console.chaos_output(run_dir) as output:
        try:
            return signals.run_child(argv, started=pulse.start if console.pulse_every else None,
                                     env=env, cwd=str(run_dir), **output)
        finally:
            pulse.stop()


def game_day(request: RunRequest, interrupts: Optional[Interrupts] = None) -> int:
    """Run one experiment end to end; the exit code is the CI gate (0 only for a clean pass, and
    with a baseline only when no figure regressed against it; docs/exit-codes.md).

    A dry run is the read-only preflight alone (exit 0 ready, 2 not ready); an AWS run passes
    the same preflight and the operator's confirmation before anything touches shop or resources.
    """
    spec = request.fresh_spec()
    safety.refuse_mixing(request.target, spec=spec)
    if request.dry_run:
        if request.target == "lab" and not manage.is_up(request.lab.state_dir):
            raise GamedayError("the lab is not up (a dry run starts nothing): gameday lab up")
        env, _ = target_env(request)
        return safety.dry_run(spec, request.target, env, request.run_id, request.consent.accept_any_account)
    if request.run_dir.exists() and any(request.run_dir.iterdir()):
        raise GamedayError(f"run directory {request.run_dir} already exists; choose another --run-id")
    lock = (runlock.lab_lock(request.lab.state_dir, run_id=request.run_id) if request.target == "lab"
            else contextlib.nullcontext())
    with (interrupts or Interrupts()).installed() as signals, lock:
        return _run(request, spec, signals)


def _run(request: RunRequest, spec: dict, signals: Interrupts) -> int:
    """Start the target, run chaos, stop what we started, report; signals never skip the clean-up."""
    started_lab, console, lab, run_dir = False, request.console, request.lab, request.run_dir
    try:
        env, started_lab = target_env(request)
        facts = (safety.gate_aws_run(spec, env, request.run_id, request.consent.yes,
                                     request.consent.accept_any_account).facts
                 if request.target == "aws" else safety.placement(spec, env, request.run_id))
        if lab.shop_settings:
            console.say("gameday: shop settings: "
                        + json.dumps(manage.shop_settings(lab.state_dir, lab.shop_settings)))
        run_dir.mkdir(parents=True, exist_ok=True)
        env.update(GAMEDAY_RUN_DIR=str(run_dir), GAMEDAY_RUN_ID=request.run_id)
        effective = run_dir / run_files.EXPERIMENT
        effective.write_text(json.dumps(with_phases(spec), indent=2))
        write_target(run_dir, request.target, env, facts, lab.shop_settings,
                     timing_name(LabConfig.load(lab.state_dir).timing) if request.target == "lab" else None)
        print(f"gameday: running {request.path.stem} against the {request.target} (run dir {run_dir})",
              flush=True)
        events = lab.state_dir / "events.jsonl" if request.target == "lab" else None
        aws_lag = (safety.aws_lag_reader(spec, env, request.run_id, facts, run_dir, time.time())
                   if request.target == "aws" else None)
        with live_session(request.live, run_dir, events), \
                lag_sampler.sampling(request.target, lab.state_dir, run_dir, aws=aws_lag):
            run_chaos(effective, run_dir, env, signals, spec, console)
    finally:
        with signals.deferring():
            if lab.shop_settings and (lab.keep or not started_lab):
                manage.shop_settings(lab.state_dir, {})
            if started_lab and not lab.keep:
                console.say(manage.down(lab.state_dir))
    with signals.deferring():
        signals.record(run_dir)
        return signals.exit_code(finish(run_dir, request.gate.baseline, request.gate.tolerance))


def timing_name(timing: str) -> str:
    """A lab timing profile as runs are grouped by it: `fast`, `aws`, or a profile file's stem
    (never the file's absolute path: reports are shared)."""
    return timing if timing in ("fast", "aws") else Path(timing).stem


def write_target(run_dir: Path, target: str, env: Dict[str, str], facts: Optional[dict] = None,
                 shop_settings: Optional[Dict[str, str]] = None,
                 timing_profile: Optional[str] = None) -> None:
    """What the run was pointed at, for the report and cleanup (no secrets: ids, region, endpoints,
    the placement before the faults, the lab's timing profile, the shop settings changed for this
    run; history and the baseline gate group runs by the profile)."""
    info = safety.target_info(target, env, facts)
    info.update(timing_profile=timing_profile, shop_settings=shop_settings or {})
    (run_dir / run_files.TARGET).write_text(json.dumps(info, indent=2))
