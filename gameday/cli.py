"""`gameday`: the one command of the pack (lab control, game-day runs, reports).

Expected failures (bad input, unsafe target, lab not up) print one line and exit non-zero;
a traceback means a bug in the pack. SIGINT, SIGTERM and SIGHUP stop every command the way
Ctrl-C does (gameday/interrupt.py); the exit codes are listed in docs/exit-codes.md.
"""
import argparse
import contextlib
import os
import sys
from pathlib import Path

from woolab.errors import LabError
from woolab.runlock import lab_lock

from chaosext.errors import GamedayError

from . import labnet
from .interrupt import Interrupts, signal_exit_code
from .lab_cli import add_lab_parsers, parse_settings, state_dir_of


def cmd_list(args) -> int:
    from . import run
    for entry in run.catalog():
        print(f"{entry['name']:<34} {entry['title']}")
        if args.verbose:
            if entry["description"]:
                print(f"{'':<34} {entry['description']}")
            print(f"{'':<34} file: {entry['path']}")
    return 0


def _gate_options(args) -> dict:
    """--baseline/--tolerance checked before anything runs: bad input costs no game day."""
    from .run import check_gate
    check_gate(args.baseline, args.tolerance)
    return {} if args.baseline is None else {"baseline": args.baseline, "tolerance": args.tolerance}


def run_request(args):
    """The one typed request of `gameday run`, validated once (gameday/request.py)."""
    from . import request, run
    lab = request.LabRequest(state_dir=state_dir_of(args), timing=args.timing, tls=args.tls,
                             db_topology=args.db, keep=args.keep_lab, shop_settings=parse_settings(args.shop_setting))
    load = request.LoadRequest(args.users, args.spawn_rate,
                               run.load_layout(args.workers, args.master_bind, args.remote_workers))
    return request.build(args.experiment, args.target, lab=lab, run_id=args.run_id, region=args.region,
                         dry_run=args.dry_run, load=load,
                         consent=request.Consent(args.yes, args.accept_any_account, args.allow_remote_load),
                         gate=request.Gate(args.baseline, args.tolerance), live=_live_options(args),
                         console=_console(args))


def cmd_run(args) -> int:
    from . import run
    return run.game_day(run_request(args), args.interrupts)


def cmd_cleanup(args) -> int:
    from .cleanup import cleanup, read_target
    lab_run = read_target(Path(args.run_dir)).get("kind") == "lab"  # cancels orders, may fail back
    with lab_lock(state_dir_of(args)) if lab_run else contextlib.nullcontext():
        return cleanup(args.run_dir, trash=args.trash, failback=args.failback, yes=args.yes,
                       state_dir=state_dir_of(args))


def cmd_matrix(args) -> int:
    from . import request
    from .matrix import run_matrix
    base = request.build(args.experiment, "lab", lab=request.LabRequest(state_dir=state_dir_of(args)),
                         load=request.LoadRequest(args.users, args.spawn_rate))
    return run_matrix(base, args.setting, max_runs=args.max_runs, matrix_id=args.matrix_id,
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
    p.add_argument("--db", metavar="TOPOLOGY",
                   help="lab only: DB topology of a lab this run starts: instance (default) or cluster "
                        "(see `gameday lab up --db`)")
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
    from .suite.command import add_suite_parser
    add_suite_parser(sub)

    add_lab_parsers(sub)
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
            return getattr(exc, "exit_code", 1)
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
