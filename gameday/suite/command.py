"""`gameday suite NAME|FILE [--target lab|aws] [--timing …] [--continue-on-failure] [--dry-run]
[--baseline last:N]`: the parser and the command (docs/suites.md)."""
import os
from pathlib import Path

from chaosext.errors import GamedayError

__all__ = ["add_suite_parser", "cmd_suite"]


def cmd_suite(args) -> int:
    from woolab import manage
    from .runner import SuiteRequest, run_suite
    if args.users is not None and args.users < 1:
        raise GamedayError("--users must be at least 1")
    if args.timing and args.target != "lab":
        raise GamedayError("--timing is the lab's timing profile; AWS keeps its own timescales")
    state_dir = Path(args.state_dir).resolve() if args.state_dir else manage.default_state_dir()
    return run_suite(SuiteRequest(
        suite=args.suite, target=args.target, timing=args.timing,
        continue_on_failure=args.continue_on_failure, dry_run=args.dry_run,
        baseline=args.baseline, state_dir=state_dir, region=args.region, yes=args.yes,
        accept_any_account=args.accept_any_account, keep_lab=args.keep_lab,
        suite_id=args.suite_id, users=args.users, interrupts=args.interrupts))


def add_suite_parser(sub) -> None:
    """Register `gameday suite` on the CLI's subparsers."""
    p = sub.add_parser("suite", help="run a suite of experiments (release gate, nightly "
                                     "catalogue) with one report, one score and one exit code")
    p.add_argument("suite", help="a shipped suite (release, nightly) or a suite JSON file")
    p.add_argument("--target", choices=["lab", "aws"], default=os.environ.get("GAMEDAY_TARGET", "lab"))
    p.add_argument("--timing", help="lab only: timing profile for entries that name none "
                                    "(fast, aws or a JSON file); overrides the suite's")
    p.add_argument("--users", type=int, help="simulated shoppers for every experiment (overrides "
                                             "the suite's and the experiments' own)")
    p.add_argument("--continue-on-failure", action="store_true",
                   help="run the remaining experiments after one did not pass")
    p.add_argument("--dry-run", action="store_true",
                   help="every experiment's read-only preflight, then one plan (exit 0 ready, 2 not)")
    p.add_argument("--baseline", metavar="last:N",
                   help="fail when the score fell more than 5 points below the median of the last "
                        "N passing suites, or any experiment's key figure regressed")
    p.add_argument("--yes", action="store_true", help="with --target aws: confirm without a prompt (CI)")
    p.add_argument("--accept-any-account", action="store_true",
                   help="with --target aws: run without an account allow-list")
    p.add_argument("--region", help="AWS region for --target aws (default: AWS_REGION)")
    p.add_argument("--suite-id", help="name of the suite directory under reports/")
    p.add_argument("--keep-lab", action="store_true", help="leave a lab this suite started running")
    p.add_argument("--state-dir", help="lab state directory")
    p.set_defaults(func=cmd_suite)
