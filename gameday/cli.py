"""`gameday`: the one command of the pack (lab control, game-day runs, reports).

Expected failures (bad input, unsafe target, lab not up) print one line and exit non-zero;
a traceback means a bug in the pack. SIGINT, SIGTERM and SIGHUP stop every command the way
Ctrl-C does (gameday/interrupt.py); the exit codes are listed in docs/exit-codes.md.
"""
import argparse
import contextlib
import json
import os
import shlex
import sys
from pathlib import Path

from woolab import manage
from woolab.config import TLS_ENV, LabConfig
from woolab.errors import LabError
from woolab.runlock import describe, lab_lock

from chaosext.errors import GamedayError

from . import labnet
from .interrupt import Interrupts, signal_exit_code


def _state_dir(args) -> Path:
    return Path(args.state_dir).resolve() if args.state_dir else manage.default_state_dir()


def cmd_lab_up(args) -> int:
    config = LabConfig.from_env(state_dir=_state_dir(args), base_port=args.base_port,
                                cache_replicas=args.cache_replicas,
                                allow_primary_delete=args.emulate_primary_delete or None,
                                min_failover_interval=args.min_failover_interval,
                                db_failover_outage_seconds=args.db_failover_seconds,
                                cache_failover_outage_seconds=args.cache_failover_seconds,
                                timing=args.timing, with_shop=False if args.no_shop else None,
                                tls=args.tls or None)
    if config.timing not in ("fast", "aws"):
        config.timing = str(Path(config.timing).resolve())
    print(manage.up(config))
    return 0


def cmd_lab_down(args) -> int:
    with lab_lock(_state_dir(args)):
        print(manage.down(_state_dir(args)))
    return 0


def cmd_lab_status(args) -> int:
    info = manage.status(_state_dir(args))
    if args.json:
        print(json.dumps(info, indent=2))
        return 1 if info["controller"] == "dead" else 0
    if info["controller"] == "dead":
        return print_dead_controller(info)
    print(f"lab state dir: {info['state_dir']}  timing: {info.get('timing', 'fast')}  "
          f"{'TLS (gameday lab env prints the CA and user)  ' if info.get('tls') else ''}"
          f"(shop-db: {info['db_status']}, shop-cache: {info['cache_status']})")
    if info["in_use_by"] is not None:
        print(f"in use by: {describe(info['in_use_by'])}")
    print(f"{'NODE':<16}{'KIND':<10}{'ROLE':<10}{'AZ':<12}{'ADDRESS':<12}{'PORT':<7}{'PID':<9}{'HEALTH':<8}NETWORK")
    for n in info["nodes"]:
        print(f"{n['name']:<16}{n['kind']:<10}{n['role']:<10}{n['az']:<12}{n.get('address', ''):<12}"
              f"{n['port']:<7}{str(n['pid']):<9}{'ok' if n['healthy'] else n.get('status', 'DOWN').upper():<8}"
              f"{n.get('impaired') or '-'}")
    print("endpoints:")
    addresses = info.get("addresses", {})
    for name, where in info["endpoints"].items():
        now = addresses.get(where.rsplit(":", 1)[0])
        print(f"  {name:<32} {where}" + (f"  -> {now}" if now else ""))
    print("redundancy: " + ("full" if not info["redundancy"] else "converging: " + "; ".join(info["redundancy"])))
    return 0


def cmd_lab_repair(args) -> int:
    """The last resort: the lab heals by itself, so this should never be needed."""
    result = manage.repair(_state_dir(args), args.timeout)
    if result["converged"]:
        print("lab repaired: full redundancy")
        return 0
    print("lab not yet whole after repair: " + "; ".join(result["problems"]))
    print("last events: " + " | ".join(e["message"] for e in result["events"][-5:]))
    return 1


def print_dead_controller(info: dict) -> int:
    """A lab whose controller died: the servers it left running and the command that recovers."""
    print(f"lab state dir: {info['state_dir']}: the lab controller (pid {info['controller_pid']}) is dead; "
          "nothing serves the AWS API or fails anything over")
    print(f"{len(info['orphans'])} orphaned server(s) still running:")
    for orphan in info["orphans"]:
        print(f"  {orphan['name']:<16} pid {orphan['pid']}")
    print(f"recover with: {info['recover']}  (stops them by pid and starts a fresh lab; "
          "`gameday lab down` only stops them)")
    return 1


def cmd_lab_env(args) -> int:
    for key, value in manage.env(_state_dir(args)).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_lab_failover(args) -> int:
    config = manage.require_up(_state_dir(args))
    route = {"db": "/_lab/db-failover?id=shop-db", "cache": "/_lab/cache-failover?id=shop-cache"}[args.kind]
    with lab_lock(_state_dir(args)):
        manage.call(config, route, method="POST")
        if args.wait:
            result = manage.call(config, "/_lab/wait-idle?timeout=120", method="POST", timeout=130)
            if result["errors"]:
                raise GamedayError("failover failed: " + "; ".join(result["errors"]))
    print(f"{args.kind} failover {'done' if args.wait else 'started'}")
    return 0


def parse_settings(pairs) -> dict:
    settings = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise GamedayError(f"shop setting {pair!r} is not KEY=VALUE (e.g. retry=false)")
        settings[key] = value
    return settings


def cmd_lab_shop_settings(args) -> int:
    settings = parse_settings(args.settings)
    if not settings and not args.reset:
        raise GamedayError("give KEY=VALUE settings (e.g. retry=false max_retries=0) or --reset")
    with lab_lock(_state_dir(args)):
        print(json.dumps(manage.shop_settings(_state_dir(args), settings), indent=2))
    return 0


def cmd_list(args) -> int:
    from . import run
    for entry in run.catalog():
        print(f"{entry['name']:<34} {entry['title']}")
        if args.verbose:
            if entry["description"]:
                print(f"{'':<34} {entry['description']}")
            print(f"{'':<34} file: {entry['path']}")
    return 0


def _use_timing(args) -> None:
    """`gameday run --timing`: the profile of a lab this run starts; a running lab keeps its own."""
    if not args.timing:
        return
    state_dir = _state_dir(args)
    if args.target == "lab" and manage.is_up(state_dir):
        running = LabConfig.load(state_dir).timing
        if Path(running).name != Path(args.timing).name and running != args.timing:
            raise GamedayError(f"the lab is already up with timing {running!r}; stop it (`gameday lab down`) "
                               f"or drop --timing {args.timing}")
    os.environ["GAMEDAY_LAB_TIMING"] = args.timing


def _use_tls(args) -> None:
    """`gameday run --tls`: a lab this run starts is encrypted; a running plain lab is refused
    (its servers speak plain text), a running encrypted lab is used either way (its env says TLS)."""
    if not args.tls:
        return
    state_dir = _state_dir(args)
    if args.target != "lab":
        raise GamedayError("--tls starts an encrypted lab; on AWS set GAMEDAY_REDIS_TLS / GAMEDAY_MYSQL_TLS "
                           "(docs/before-aws.md)")
    if manage.is_up(state_dir) and not LabConfig.load(state_dir).tls:
        raise GamedayError("the lab is already up without TLS; stop it (`gameday lab down`) or drop --tls")
    os.environ[TLS_ENV] = "1"


def cmd_lab_fault(args) -> int:
    """crash / freeze / thaw one node, or cut an AZ's power, by hand (not while a run holds the lab)."""
    config = manage.require_up(_state_dir(args))
    from urllib.parse import urlencode
    with lab_lock(_state_dir(args)):
        if args.lab_command == "interrupt-az":
            query = urlencode({"id": args.az, "seconds": args.seconds})
            result = manage.call(config, f"/_lab/interrupt-az?{query}", method="POST")
            print(f"power interrupted in {args.az} for {args.seconds:g} s: "
                  f"{', '.join(result['powered_off']) or 'no nodes'}")
            return 0
        manage.call(config, f"/_lab/{args.lab_command}?{urlencode({'id': args.node})}", method="POST")
    print(f"{args.node}: {args.lab_command} done")
    return 0


def _gate_options(args) -> dict:
    """--baseline/--tolerance checked before anything runs: bad input costs no game day."""
    if args.baseline is None:
        if args.tolerance is not None:
            raise GamedayError("--tolerance needs --baseline last:N or --baseline RUN_DIR")
        return {}
    from .report.baseline import parse_baseline, parse_tolerance
    parse_baseline(args.baseline)
    parse_tolerance(args.tolerance)
    return {"baseline": args.baseline, "tolerance": args.tolerance}


def cmd_run(args) -> int:
    from . import run
    _use_timing(args)
    _use_tls(args)
    return run.game_day(args.experiment, target=args.target, users=args.users, spawn_rate=args.spawn_rate,
                        dry_run=args.dry_run, state_dir=_state_dir(args), region=args.region,
                        keep_lab=args.keep_lab, run_id=args.run_id,
                        shop_settings=parse_settings(args.shop_setting),
                        allow_remote_load=args.allow_remote_load, yes=args.yes,
                        accept_any_account=args.accept_any_account, interrupts=args.interrupts,
                        distributed=run.load_layout(args.workers, args.master_bind,
                                                    args.remote_workers),
                        live=_live_options(args), console=_console(args), **_gate_options(args))


def cmd_cleanup(args) -> int:
    from .cleanup import cleanup, read_target
    lab_run = read_target(Path(args.run_dir)).get("kind") == "lab"  # cancels orders, may fail back
    with lab_lock(_state_dir(args)) if lab_run else contextlib.nullcontext():
        return cleanup(args.run_dir, trash=args.trash, failback=args.failback, yes=args.yes,
                       state_dir=_state_dir(args))


def cmd_matrix(args) -> int:
    from .matrix import run_matrix
    return run_matrix(args.experiment, args.setting, _state_dir(args), max_runs=args.max_runs,
                      users=args.users, spawn_rate=args.spawn_rate, matrix_id=args.matrix_id,
                      interrupts=args.interrupts)


def cmd_report(args) -> int:
    from .report import report_command
    if args.compare:
        runs = ([args.run_dir] if args.run_dir else []) + args.compare
        if len(runs) < 2:
            raise GamedayError("--compare needs at least two runs (RUN_A RUN_B [RUN_C ...])")
        return report_command(runs[0], compare_with=runs[1:])
    if not args.run_dir:
        raise GamedayError("give a run directory (reports/<run-id>) or --compare RUN_A RUN_B [...]")
    return report_command(args.run_dir, gate=args.gate, **_gate_options(args))


def cmd_history(args) -> int:
    from .history import history_command
    return history_command(args.reports)


def _add_gate_options(p) -> None:
    p.add_argument("--baseline", metavar="last:N|RUN_DIR",
                   help="fail when a figure regressed against the median of the last N passing runs "
                        "of the same experiment, target and timing profile, or against one run")
    p.add_argument("--tolerance", metavar="SPEC",
                   help="allowed regression: N%% (relative) and/or +N (slack), per figure with "
                        "FIGURE=… (rto, error_seconds, failed_checkouts, orders_lost, carts_lost); "
                        "default derived from lab run-to-run noise")


def _add_report_parsers(sub) -> None:
    """`gameday report` and `gameday history`."""
    p = sub.add_parser("report", help="write the report of a run, or compare runs")
    p.add_argument("run_dir", nargs="?", help="reports/<run-id>")
    p.add_argument("--compare", nargs="+", metavar="RUN",
                   help="side-by-side figures of two or more runs (differences against the first)")
    p.add_argument("--gate", action="store_true", help="exit 1 unless the verdict is passed (CI)")
    _add_gate_options(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("history", help="every run in a reports directory: table, trends, index.html")
    p.add_argument("--reports", help="directory of run directories (default: reports/ or "
                                     "$GAMEDAY_REPORTS_DIR); copied CI artifacts and S3 syncs work")
    p.set_defaults(func=cmd_history)


def _add_safety_flags(p: argparse.ArgumentParser) -> None:
    """The dry run (the read-only preflight) and the confirmations of an AWS run."""
    p.add_argument("--dry-run", action="store_true",
                   help="preflight only: check credentials, allow-lists, targets, IAM, reachability and the "
                        "store read-only and print the plan; no load, no orders, no writes (exit 0 ready, 2 not)")
    p.add_argument("--yes", action="store_true", help="with --target aws: confirm the printed plan without a "
                                                      "terminal prompt (CI)")
    p.add_argument("--accept-any-account", action="store_true",
                   help="with --target aws: run without an account allow-list (GAMEDAY_ALLOWED_ACCOUNTS)")


def _add_cleanup_parser(sub) -> None:
    p = sub.add_parser("cleanup", help="cancel (or trash) the orders a run placed; optionally fail back")
    p.add_argument("run_dir", help="reports/<run-id>")
    p.add_argument("--trash", action="store_true", help="move the orders to the trash instead of cancelling")
    p.add_argument("--failback", action="store_true",
                   help="first fail the DB instance / cache primaries back to their AZs before the run")
    p.add_argument("--yes", action="store_true", help="confirm without a terminal prompt (CI)")
    p.add_argument("--state-dir", help="lab state directory (lab runs)")
    p.set_defaults(func=cmd_cleanup)


def _add_matrix_parser(sub) -> None:
    """`gameday matrix`: its own function so build_parser stays readable."""
    p = sub.add_parser("matrix", help="run an experiment once per combination of shop settings and "
                                      "compare the runs (lab only)")
    p.add_argument("experiment", help="a name from `gameday list` or a path to an experiment JSON file")
    p.add_argument("--setting", action="append", metavar="KEY=V1,V2",
                   help="a stand-in shop setting and its values (repeat for more settings), "
                        "e.g. --setting profile=stock,hardened --setting retry=true,false")
    p.add_argument("--max-runs", type=int, default=16, help="refuse a matrix of more runs (default 16)")
    p.add_argument("--users", type=int, help="simulated shoppers (overrides the experiment)")
    p.add_argument("--spawn-rate", type=float, help="shoppers started per second")
    p.add_argument("--matrix-id", help="name of the matrix directory under reports/")
    p.add_argument("--state-dir", help="lab state directory")
    p.set_defaults(func=cmd_matrix)


def _add_run_parser(sub) -> None:
    """`gameday run`: one game day against the lab or AWS."""
    p = sub.add_parser("run", help="run an experiment (a game day) and write its report")
    p.add_argument("experiment", help="a name from `gameday list` or a path to an experiment JSON file")
    p.add_argument("--target", choices=["lab", "aws"], default=os.environ.get("GAMEDAY_TARGET", "lab"))
    p.add_argument("--users", type=int, help="simulated shoppers (overrides the experiment)")
    p.add_argument("--spawn-rate", type=float, help="shoppers started per second")
    p.add_argument("--workers", type=int, metavar="N",
                   help="run the load as a Locust master plus N worker processes on this machine")
    p.add_argument("--master-bind", metavar="HOST:PORT",
                   help="where the Locust master listens (default: loopback, a free port); "
                        "workers on other machines join with `locust --worker --master-host`")
    p.add_argument("--remote-workers", type=int, metavar="N",
                   help="also wait for N workers joining from other machines (see --master-bind)")
    _add_safety_flags(p)
    p.add_argument("--region", help="AWS region for --target aws (default: AWS_REGION)")
    p.add_argument("--run-id", help="name of the run directory under ./reports (or $GAMEDAY_REPORTS_DIR)")
    p.add_argument("--keep-lab", action="store_true", help="leave a lab this run started running")
    p.add_argument("--allow-remote-load", action="store_true",
                   help="accepted for older scripts: on --target aws the shop URL allow-list "
                        "(GAMEDAY_ALLOWED_SHOP_URLS) decides whether load may go to the staging shop")
    p.add_argument("--shop-setting", action="append", metavar="KEY=VALUE",
                   help="lab only: run with this stand-in shop setting (e.g. retry=false), restored afterwards")
    p.add_argument("--state-dir", help="lab state directory")
    p.add_argument("--timing", help="lab only: timing profile of a lab this run starts (fast, aws or a JSON file)")
    p.add_argument("--tls", action="store_true",
                   help="lab only: a lab this run starts is encrypted (see `gameday lab up --tls`)")
    _add_gate_options(p)
    _add_live_options(p)
    _add_console_options(p)
    p.set_defaults(func=cmd_run)


# ---------------------------------------------------------------- live view and step-by-step mode
def _add_live_options(p) -> None:
    """`gameday run --web`, `--pause-between-faults`, `--pause-timeout` (docs/live-view.md)."""
    g = p.add_argument_group("live view and step-by-step mode (docs/live-view.md)")
    g.add_argument("--web", nargs="?", const="", metavar="HOST:PORT",
                   help="run the load with Locust's web UI on HOST:PORT (loopback only; default "
                        "127.0.0.1 and the first free ports from 8089) and serve the run's phases "
                        "on PORT+1")
    g.add_argument("--pause-between-faults", action="store_true",
                   help="wait before each fault after the first until Enter, SIGUSR1 to gameday or "
                        "`touch RUN_DIR/continue`; load and measurements keep running")
    g.add_argument("--pause-timeout", type=float, default=600.0, metavar="SECONDS",
                   help="go on by itself after this long in a pause (default 600)")


def _live_options(args):
    """The checked live options of `gameday run` (None when none was given)."""
    from .live.options import LiveOptions, parse_web
    if args.web is None and not args.pause_between_faults:
        return None
    if args.pause_timeout <= 0:
        raise GamedayError(f"--pause-timeout must be > 0 seconds (got {args.pause_timeout:g})")
    return LiveOptions(web=None if args.web is None else parse_web(args.web),
                       pause=args.pause_between_faults, pause_timeout=args.pause_timeout)


def _add_lab_parsers(sub) -> None:
    """`gameday lab …`: bring the lab up and down, look at it, fail it over by hand."""
    lab = sub.add_parser("lab", help="the local lab: real MariaDB, Redis, Sentinel, DNS endpoints, shop, AWS API")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", help="lab state directory (default: $GAMEDAY_LAB_STATE_DIR, .lab in a "
                                            "checkout, else ~/.local/state/failover-gameday/lab)")
    p = lab_sub.add_parser("up", parents=[common], help="start the lab (idempotent)")
    p.add_argument("--base-port", type=int, help="first of the lab's loopback ports (default 15300)")
    p.add_argument("--cache-replicas", type=int, help="Redis replicas in shop-cache (default 1)")
    p.add_argument("--no-shop", action="store_true", help="do not start the stand-in shop")
    p.add_argument("--emulate-primary-delete", action="store_true",
                   help="accept DeleteCacheCluster on a primary as a hard loss + removal (AWS refuses it)")
    p.add_argument("--min-failover-interval", type=float,
                   help="seconds after a DB failover during which another is not attempted (RDS-EVENT-0034)")
    p.add_argument("--db-failover-seconds", type=float,
                   help="how long the DB endpoint stays unavailable during a failover (default 1.5; "
                        "RDS takes 60-120 s)")
    p.add_argument("--cache-failover-seconds", type=float,
                   help="how long a TestFailover leaves the cache without a primary before the promotion "
                        "(default 1.0; ElastiCache takes tens of seconds)")
    p.add_argument("--timing", help="timing profile: fast (default, CI), aws (AWS's documented durations) "
                                    "or a JSON file; see docs/timing.md")
    p.add_argument("--tls", action="store_true",
                   help="encrypted lab: Redis and MariaDB speak TLS only, with certificates from the lab's own "
                        "CA; Redis needs the ACL user (`gameday lab env` prints the settings; "
                        "docs/encrypted-lab.md)")
    p.set_defaults(func=cmd_lab_up)
    lab_sub.add_parser("down", parents=[common], help="stop everything the lab started").set_defaults(
        func=cmd_lab_down)
    p = lab_sub.add_parser("status", parents=[common], help="nodes, roles, AZs, ports, pids, health")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_lab_status)
    lab_sub.add_parser("env", parents=[common], help="print export lines to reach the lab").set_defaults(
        func=cmd_lab_env)
    p = lab_sub.add_parser("repair", parents=[common],
                           help="last resort: power back, frozen nodes resumed, healing retried at once, "
                                "then wait for full redundancy (the lab heals by itself)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for full redundancy")
    p.set_defaults(func=cmd_lab_repair)
    p = lab_sub.add_parser("failover", parents=[common], help="fail over shop-db or shop-cache by hand")
    p.add_argument("kind", choices=["db", "cache"])
    p.add_argument("--no-wait", dest="wait", action="store_false")
    p.set_defaults(func=cmd_lab_failover)
    p = lab_sub.add_parser("shop-settings", parents=[common],
                           help="change the stand-in shop's resilience settings (reloads its workers)")
    p.add_argument("settings", nargs="*", metavar="KEY=VALUE")
    p.add_argument("--reset", action="store_true", help="back to the lab defaults")
    p.set_defaults(func=cmd_lab_shop_settings)
    _add_lab_fault_parsers(lab_sub, common)
    labnet.add_parsers(lab_sub, common)


def _add_lab_fault_parsers(lab_sub, common) -> None:
    """`gameday lab crash|freeze|thaw|interrupt-az`: the failures nobody schedules, by hand."""
    for name, what in (("crash", "kill -9 a node (shop-db-a, shop-cache-001, ...): the lab heals as AWS would"),
                       ("freeze", "hang a node (SIGSTOP): it stops answering without closing connections"),
                       ("thaw", "resume a frozen node (SIGCONT)")):
        p = lab_sub.add_parser(name, parents=[common], help=what)
        p.add_argument("node")
        p.set_defaults(func=cmd_lab_fault)
    p = lab_sub.add_parser("interrupt-az", parents=[common],
                           help="cut the power of every lab node in one Availability Zone for a while")
    p.add_argument("az", help="e.g. us-east-1a")
    p.add_argument("--seconds", type=float, required=True, help="how long the power stays off")
    p.set_defaults(func=cmd_lab_fault)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gameday", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="describe the experiment catalogue")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=cmd_list)

    _add_run_parser(sub)
    _add_cleanup_parser(sub)
    _add_matrix_parser(sub)
    _add_report_parsers(sub)

    _add_lab_parsers(sub)
    _add_note_parser(sub)
    return parser


# ---- the facilitator's console: pulse, --quiet, notes (gameday/pulse.py, console.py, notes.py)
def _add_console_options(p) -> None:
    """`gameday run --quiet --pulse-every SECONDS`."""
    p.add_argument("--quiet", action="store_true",
                   help="print only the pulse and the verdict; Chaos Toolkit's console log goes to "
                        "RUN_DIR/chaos-console.log (its full log is RUN_DIR/chaostoolkit.log)")
    p.add_argument("--pulse-every", type=float, default=10.0, metavar="SECONDS",
                   help="seconds between pulse lines (phase, fault, per-step load, orders); a "
                        "phase or fault change prints one at once; 0 turns the pulse off (default 10)")


def _console(args):
    from .console import Console
    if args.pulse_every < 0:
        raise GamedayError(f"--pulse-every must be 0 (off) or more seconds (got {args.pulse_every:g})")
    return Console(quiet=args.quiet, pulse_every=args.pulse_every)


def _add_note_parser(sub) -> None:
    p = sub.add_parser("note", help="add a timestamped observation to a run's notes "
                                    "(RUN_DIR/notes.md), while it runs or after; the report shows them")
    p.add_argument("run_dir", help="reports/<run-id>, a run id, or `latest` (the newest run)")
    p.add_argument("text", nargs="+", help="the observation (words are joined with spaces)")
    p.add_argument("--at", metavar="HH:MM:SS",
                   help="when it was observed (UTC, the run's day); default: now")
    p.set_defaults(func=cmd_note)


def cmd_note(args) -> int:
    from .notes import add_note
    print(add_note(args.run_dir, " ".join(args.text), at=args.at))
    return 0


# ---- the entry point
def _dispatch(argv) -> int:
    args = build_parser().parse_args(argv)
    with Interrupts().installed() as args.interrupts:
        try:
            return args.func(args)
        except (GamedayError, LabError) as exc:
            print(f"gameday: error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP outside a run's experiment
            signum = getattr(exc, "signum", 2)
            print(f"gameday: interrupted ({exc or 'SIGINT'})", file=sys.stderr)
            return signal_exit_code(signum)


def main(argv=None) -> int:
    """Every command behind one standard-output guard (gameday/stdout.py): a pipe closed by its
    reader ends quietly with the command's own exit code; a closed or failing stdout gives one
    line on stderr and a non-zero exit."""
    from .stdout import exit_code, guarded
    with guarded() as out:
        try:
            code = _dispatch(argv)
        except SystemExit as exc:  # argparse: --help (0), a usage error (2)
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return exit_code(out, code)


if __name__ == "__main__":
    sys.exit(main())
