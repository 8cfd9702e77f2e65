"""`gameday lab network` and `gameday lab resolve`: gray failures by hand, and the way in for
plain clients (`mysql`, `redis-cli`) that cannot ask the lab's DNS server themselves."""
import argparse

from woolab import manage
from woolab.config import AZS
from woolab.network import control
from woolab.runlock import lab_lock

from chaosext.errors import GamedayError


def _state_dir(args):
    from .lab_cli import state_dir_of as state_dir
    return state_dir(args)


def _impairment(args) -> dict:
    """The route's query from the command line (the lab validates the values)."""
    return {"az": args.az, "direction": args.direction, "delay_ms": args.delay_ms, "jitter_ms": args.jitter_ms,
            "loss_percent": args.loss_percent, "bandwidth_kbps": args.bandwidth_kbps,
            "blackhole": "1" if args.blackhole else None, "partition": args.partition,
            "sentinels": "1" if args.sentinels else None, "service": args.service, "seconds": args.seconds}


def cmd_lab_network(args) -> int:
    state_dir = _state_dir(args)
    if args.clear:
        if any(v not in (None, False) for k, v in _impairment(args).items() if k not in ("az", "direction")):
            raise GamedayError("--clear takes no impairment options (only an AZ, to clear just that one)")
        with lab_lock(state_dir):
            ended = control.clear(state_dir, args.az)
        print(f"cleared {len(ended)} impairment(s)" + "".join(f"\n  {i['az']}: {i['summary']}" for i in ended))
        return 0
    if not args.az:
        raise GamedayError(f"give an AZ ({', '.join(AZS)}) to impair, or --clear")
    with lab_lock(state_dir):
        found = control.impair(state_dir, _impairment(args))
    print(f"{found['az']}: {found['summary']}")
    return 0


def cmd_lab_resolve(args) -> int:
    config = manage.require_up(_state_dir(args))
    print(control.resolve(config, args.name))
    return 0


def add_parsers(lab_sub, common: argparse.ArgumentParser) -> None:
    """`gameday lab network AZ [effects] [--seconds D]`, `--clear`, and `gameday lab resolve NAME`."""
    p = lab_sub.add_parser("network", parents=[common],
                           help="impair one AZ's network (delay, loss, bandwidth, black hole, partition), "
                                "or --clear; see docs/lab-network.md")
    p.add_argument("az", nargs="?", help=f"the AZ to impair ({', '.join(AZS)}); with --clear, only this one")
    p.add_argument("--direction", choices=["both", "to", "from"],
                   help="to the AZ's nodes, from them, or both (default; a delay is then split between the two)")
    p.add_argument("--delay-ms", type=str, help="added latency, ms (per round trip with --direction both)")
    p.add_argument("--jitter-ms", type=str, help="± this much around the delay, ms")
    p.add_argument("--loss-percent", type=str, help="share of chunks that wait a TCP retransmission (0-100)")
    p.add_argument("--bandwidth-kbps", type=str, help="cap per connection and direction, kbit/s")
    cut = p.add_mutually_exclusive_group()
    cut.add_argument("--blackhole", action="store_true",
                     help="nothing passes to or from the AZ's nodes; nothing is reset, the processes run on")
    cut.add_argument("--partition", nargs="?", const="*", metavar="OTHER_AZ",
                     help="cut the AZ's nodes from the other AZs' nodes (or from OTHER_AZ's): replication; "
                          "clients still reach both sides")
    p.add_argument("--sentinels", action="store_true",
                   help="Sentinel's links to the nodes suffer the impairment too (by default they stand in for "
                        "ElastiCache's own health checks and are left alone; Sentinel may then fail over by itself)")
    p.add_argument("--service", choices=["db", "cache"],
                   help="only flows to the AZ's DB nodes or cache nodes (default: every node of the AZ)")
    p.add_argument("--seconds", type=str, help="how long it lasts (default 1800, at most 43200)")
    p.add_argument("--clear", action="store_true", help="end every impairment (or the AZ's) now")
    p.set_defaults(func=cmd_lab_network)
    p = lab_sub.add_parser("resolve", parents=[common],
                           help="print the address an endpoint name resolves to now (for mysql, redis-cli)")
    p.add_argument("name")
    p.set_defaults(func=cmd_lab_resolve)
