"""Benchmark section `extension`: the RTO the extension measures against the lab's ground truth,
and the pacing of its probes.

The extension gets exactly what a user gets: the output of `gameday lab env` is exported (the
lab's DNS server included), and each action's configuration is built by chaoslib from the
shipped experiment's own `configuration` block, as `chaos run` builds it. For every round the
measured "data plane writable" time is compared with the lab's "endpoint writable on" event
(events.jsonl) and with an independent reference probe (benchkit/probes.py). Runs at the lab's
timing profile (`--timing aws` for AWS's durations); bounds scale with the profile.
"""
import contextlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchkit.core import Context, Section, bounded, load_average
from benchkit.labs import control
from benchkit.probes import AttemptLog, ReferenceProbe
from woolab.events import read_events
from woolab.timing import profile_for

ROOT = Path(__file__).resolve().parent.parent
FAULTS = {  # kind -> (label, experiment whose configuration block is used, lab target)
    "mysql": ("RDS force_failover", "rds-force-failover.json", "shop-db"),
    "redis": ("cache TestFailover", "elasticache-test-failover.json", "shop-cache"),
}


def lab_env_of_cli(state_dir: Path) -> dict:
    """The variables `gameday lab env` prints for this lab, parsed from its export lines."""
    out = subprocess.run([sys.executable, "-c", "import sys; from gameday.cli import main; sys.exit(main())",
                          "lab", "env", "--state-dir", str(state_dir)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    env = {}
    for line in out.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


@contextlib.contextmanager
def exported(env: dict):
    """`eval "$(gameday lab env)"` for this process: the variables set, AWS profile settings that
    would override them removed, everything restored afterwards."""
    keys = set(env) | {"AWS_PROFILE", "AWS_SESSION_TOKEN"}
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def experiment_configuration(experiment: str) -> dict:
    """The configuration `chaos run` builds from the shipped experiment, from the environment."""
    from chaoslib.configuration import load_configuration
    with open(ROOT / "experiments" / experiment) as fh:
        return load_configuration(json.load(fh)["configuration"])


def ground_truth_writable(state_dir: Path, target: str, injected: float) -> float:
    """The lab's "endpoint writable on ..." event for the failover injected at `injected`."""
    times = [e["time"] for e in read_events(state_dir / "events.jsonl")
             if e["source_type"] == "lab" and e["source_id"] == target
             and e["message"].startswith("endpoint writable on") and e["time"] >= injected]
    if not times:
        raise RuntimeError(f"no 'endpoint writable' lab event for {target} after the failover")
    return min(times)


def _slowest(value) -> float:
    return float(max(value) if isinstance(value, (list, tuple)) else value)


def round_seconds(config, kind: str) -> float:
    """The bound of one failover round: the profile's longest outage, its DNS TTL and detection,
    twice over, plus a minute for the control plane and the checks."""
    profile = profile_for(config)
    if kind == "mysql":
        slowest = _slowest(profile.db_failover_seconds) + profile.db_dns_ttl_seconds
    else:
        slowest = _slowest(profile.cache_failover_seconds) + profile.cache_dns_ttl_seconds
    return 60.0 + 2 * (slowest + _slowest(profile.replacement_delay_seconds))


def _one_round(ctx: Context, kind: str, reference: ReferenceProbe, attempts: AttemptLog) -> dict:
    from chaosext.elasticache import actions as ec_actions
    from chaosext.rds import actions as rds_actions
    from groundfloor.timefmt import parse_time
    _label, experiment, target = FAULTS[kind]
    action = rds_actions.force_failover if kind == "mysql" else ec_actions.test_failover
    conf = experiment_configuration(experiment)
    result = action(target, configuration=conf, timeout=round_seconds(ctx.config, kind) - 15,
                    poll_interval=0.2)
    writable = parse_time(result["data_plane_writable_at"]).timestamp()
    injected = parse_time(result["injected_at"]).timestamp()
    truth = ground_truth_writable(ctx.config.state_dir, target, injected)
    seen = reference.writable_again(injected)
    return {"error_ms": abs(writable - truth) * 1000.0, "signed_ms": (writable - truth) * 1000.0,
            "rto": result["rto_seconds"], **attempts.around(kind, truth),
            "reference_error_ms": None if seen is None else abs(writable - seen) * 1000.0,
            "reference_after_lab_ms": None if seen is None else (seen - truth) * 1000.0}


def _settle(ctx: Context, seconds: float) -> None:
    control(ctx.config, f"/_lab/wait-idle?timeout={seconds:.0f}", timeout=seconds + 10)


def _rto_rounds(ctx: Context, env: dict, kind: str, rounds: int, attempts: AttemptLog) -> None:
    label = FAULTS[kind][0]
    seconds = round_seconds(ctx.config, kind)
    with ReferenceProbe(env, kind) as reference:
        outcome = ctx.rounds(rounds, seconds, lambda _i: _one_round(ctx, kind, reference, attempts),
                             after_round=lambda: _settle(ctx, seconds - 10))
    outcome.report(ctx, label)
    errors = [r["error_ms"] for r in outcome.results]
    if not errors:
        return
    ctx.figure(f"{label} RTO median seconds", float(statistics.median(r["rto"] for r in outcome.results)))
    ctx.figure(f"{label} |writable - ground truth| max ms", max(errors), "target <= 100 ms")
    ctx.figure(f"{label} |writable - ground truth| median ms", float(statistics.median(errors)),
               "aim <= 25 ms")
    ctx.note(f"{label} writable - ground truth, ms per round", [round(r["signed_ms"], 1) for r in outcome.results])
    _split(ctx, label, outcome.results)
    _cross_check(ctx, label, outcome.results)
    ctx.figure(f"{label}: load average during the rounds", load_average())


def _median_max(values) -> str:
    return f"{statistics.median(values):.1f} / {max(values):.1f}"


def _cross_check(ctx: Context, label: str, results: list) -> None:
    """The reference probe against the lab's event (a late lab event would show as a negative
    figure) and against the extension."""
    crossed = [r for r in results if r["reference_error_ms"] is not None]
    ctx.figure(f"{label} rounds the reference probe saw", f"{len(crossed)}/{len(results)}")
    if not crossed:
        return
    ctx.figure(f"{label}: reference probe saw it after the lab event, median / max ms",
               _median_max([r["reference_after_lab_ms"] for r in crossed]),
               f"min {min(r['reference_after_lab_ms'] for r in crossed):.1f} (< 0: the lab event is late)")
    ctx.figure(f"{label} |writable - reference probe| median / max ms",
               _median_max([r["reference_error_ms"] for r in crossed]), "cross-check: 20 ms probe, 0.1 s timeouts")


def _split(ctx: Context, label: str, results: list) -> None:
    """Where the error comes from: when the extension's first successful attempt started after
    the lab's event (its 100 ms pacing) and how long that attempt took."""
    split = [r for r in results if "first_ok_started_after_ms" in r]
    if not split:
        return
    for key, what in (("first_ok_started_after_ms", "first good attempt started after the lab event"),
                      ("first_ok_took_ms", "first good attempt took")):
        ctx.figure(f"{label}: {what}, median / max ms", _median_max([r[key] for r in split]))


def _two_probes_round(ctx: Context, attempts: AttemptLog, seconds: float) -> dict:
    """A WriteWatch and wait_until_writable on one endpoint during one DB failover."""
    from chaosext import dataplane
    conf = experiment_configuration(FAULTS["mysql"][1])
    mark = attempts.mark()
    watch = dataplane.WriteWatch("mysql", conf).start()
    outcome = {}
    waiter = threading.Thread(target=lambda: outcome.update(dataplane.wait_until_writable(
        "mysql", timeout=seconds - 20, expect_outage=True, configuration=conf)), daemon=True)
    waiter.start()
    try:
        time.sleep(0.3)  # both probes have made attempts before the failover starts
        control(ctx.config, "/_lab/db-failover?id=shop-db")
        _settle(ctx, seconds - 20)
        waiter.join(seconds - 15)
    finally:
        watch.stop()
    peak, gap = attempts.pacing(since=mark)
    return {"peak": peak, "gap": gap, "both": watch.recovered and bool(outcome.get("writable_again_at"))}


def _two_probes(ctx: Context, attempts: AttemptLog) -> None:
    seconds = round_seconds(ctx.config, "mysql")
    outcome = ctx.rounds(1, seconds, lambda _i: _two_probes_round(ctx, attempts, seconds),
                         after_round=lambda: _settle(ctx, seconds - 10))
    outcome.report(ctx, "two probes, one endpoint:")
    for result in outcome.results:
        ctx.figure("two probes, one endpoint: attempts in any 1 s", result["peak"], "target <= 10")
        ctx.figure("two probes, one endpoint: min gap ms", round(result["gap"], 1), "target >= 100 ms")
        ctx.figure("two probes: both saw the outage end", "yes" if result["both"] else "no")


def run(ctx: Context) -> None:
    env = lab_env_of_cli(ctx.config.state_dir)
    rounds = 1 if ctx.smoke else ctx.args.rto_rounds
    with exported(env), AttemptLog() as attempts:
        with bounded("extension: lab idle before the rounds", 120):
            _settle(ctx, 100)
        for kind in ("mysql", "redis"):
            _rto_rounds(ctx, env, kind, rounds, attempts)
        peak, gap = attempts.pacing()
        ctx.figure("probe attempts to one endpoint in any 1 s", peak, "target <= 10 (one per 100 ms)")
        ctx.figure("probe min gap between attempts ms", round(gap, 1),
                   "target >= 100 ms (timed at the write call, +-0.1 ms)")
        if not ctx.smoke:
            _two_probes(ctx, attempts)


def bound(args) -> float:
    """Every round at the slowest profile bound, for both kinds, plus the two-probe round."""
    per_round = 400.0 if getattr(args, "timing", "fast") != "fast" else 100.0
    rounds = 1 if args.smoke else args.rto_rounds
    return 120 + per_round * 2 * (2 * rounds + 1) + 60


SECTION = Section("extension", run, bound, needs_lab=True,
                  about="RTO measured by the extension vs the lab's ground truth; probe pacing")
