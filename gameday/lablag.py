"""`gameday lab lag`: make a reader of the lab's DB cluster lag on purpose, or show every
reader's lag (docs/db-cluster.md, "Replica lag")."""
import argparse

from woolab import manage
from woolab.runlock import lab_lock

from chaosext.errors import GamedayError


def _state_dir(args):
    from .lab_cli import state_dir_of as state_dir
    return state_dir(args)


def _line(reader: dict) -> str:
    """One reader as a line: its lag in seconds and transactions, or why there is none."""
    if reader.get("lag_seconds") is None:
        return f"{reader['member']} ({reader['az']}): no lag figure ({reader.get('why')})"
    delay = f", applies commits {reader['delay_seconds']} s late" if reader.get("delay_seconds") else ""
    behind = reader.get("transactions_behind")
    return (f"{reader['member']} ({reader['az']}): {reader['lag_seconds']:g} s behind"
            + (f", {behind} transaction(s) not applied" if behind is not None else "") + delay)


def cmd_lab_lag(args) -> int:
    """With a member and --seconds: set that reader's delay; without: print every reader's lag."""
    state_dir = _state_dir(args)
    if args.member is None:
        if args.seconds is not None:
            raise GamedayError("--seconds needs the reader to delay (gameday lab lag MEMBER --seconds N)")
        now = manage.replica_lag(state_dir)
        print(f"writer {now['writer']}" + "".join(f"\n  {_line(r)}" for r in now["readers"]))
        return 0
    if args.seconds is None:
        raise GamedayError(f"give the delay: gameday lab lag {args.member} --seconds N (0 lifts it)")
    with lab_lock(state_dir):
        done = manage.set_replica_delay(state_dir, args.member, args.seconds)
    print(f"{done['member']} applies the writer's commits {done['delay_seconds']} s late"
          if done["delay_seconds"] else f"{done['member']} applies the writer's commits on time again")
    return 0


def add_parsers(lab_sub, common: argparse.ArgumentParser) -> None:
    """`gameday lab lag [MEMBER --seconds N]`."""
    p = lab_sub.add_parser("lag", parents=[common],
                           help="make a reader of the DB cluster (--db cluster) apply commits N s late "
                                "(--seconds 0 lifts it), or show every reader's lag")
    p.add_argument("member", nargs="?", help="a reader, e.g. shop-db-cluster-instance-2")
    p.add_argument("--seconds", type=str, help="how late it applies the writer's commits (0-300; 0: on time)")
    p.set_defaults(func=cmd_lab_lag)
