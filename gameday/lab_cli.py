"""`gameday lab …`: bring the lab up and down, look at it, fail it over and break it by hand.

The subcommands of the lab, apart from the run's CLI (gameday/cli.py) so each stays small; the
lab itself is `woolab`, reached through `woolab.manage`.
"""
import argparse
import json
import shlex
from pathlib import Path

from woolab import manage
from woolab.config import LabConfig
from woolab.runlock import describe, lab_lock

from chaosext.errors import GamedayError

from . import lablag, labnet

__all__ = ["add_lab_parsers", "state_dir_of", "parse_settings"]


def state_dir_of(args) -> Path:
    return Path(args.state_dir).resolve() if args.state_dir else manage.default_state_dir()


def cmd_lab_up(args) -> int:
    config = LabConfig.from_env(state_dir=state_dir_of(args), base_port=args.base_port,
                                cache_replicas=args.cache_replicas,
                                allow_primary_delete=args.emulate_primary_delete or None,
                                min_failover_interval=args.min_failover_interval,
                                db_failover_outage_seconds=args.db_failover_seconds,
                                cache_failover_outage_seconds=args.cache_failover_seconds,
                                timing=args.timing, with_shop=False if args.no_shop else None,
                                tls=args.tls or None, db_topology=args.db)
    if config.timing not in ("fast", "aws"):
        config.timing = str(Path(config.timing).resolve())
    if args.db and manage.is_up(config.state_dir):
        running = LabConfig.load(config.state_dir).db_topology
        if running != args.db:
            raise GamedayError(f"the lab is already up with DB topology {running!r}; stop it "
                               f"(`gameday lab down`) and start it with --db {args.db}")
    print(manage.up(config))
    return 0


def cmd_lab_down(args) -> int:
    with lab_lock(state_dir_of(args)):
        print(manage.down(state_dir_of(args)))
    return 0


def cmd_lab_status(args) -> int:
    info = manage.status(state_dir_of(args))
    if args.json:
        print(json.dumps(info, indent=2))
        return 1 if info["controller"] == "dead" else 0
    if info["controller"] == "dead":
        return print_dead_controller(info)
    print(f"lab state dir: {info['state_dir']}  timing: {info.get('timing', 'fast')}  "
          f"{'TLS (gameday lab env prints the CA and user)  ' if info.get('tls') else ''}"
          f"({info.get('db_id', 'shop-db')}: {info['db_status']}, shop-cache: {info['cache_status']})")
    if info["in_use_by"] is not None:
        print(f"in use by: {describe(info['in_use_by'])}")
    width = max([16] + [len(n["name"]) + 2 for n in info["nodes"]])  # a cluster's member ids are longer
    print(f"{'NODE':<{width}}{'KIND':<10}{'ROLE':<10}{'AZ':<12}{'ADDRESS':<12}{'PORT':<7}{'PID':<9}{'HEALTH':<8}NETWORK")
    for n in info["nodes"]:
        print(f"{n['name']:<{width}}{n['kind']:<10}{n['role']:<10}{n['az']:<12}{n.get('address', ''):<12}"
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
    result = manage.repair(state_dir_of(args), args.timeout)
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
    for key, value in manage.env(state_dir_of(args)).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_lab_failover(args) -> int:
    config = manage.require_up(state_dir_of(args))
    db_route = ("/_lab/db-cluster-failover?id=shop-db-cluster" if config.db_topology == "cluster"
                else "/_lab/db-failover?id=shop-db")
    route = {"db": db_route, "cache": "/_lab/cache-failover?id=shop-cache"}[args.kind]
    with lab_lock(state_dir_of(args)):
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
    with lab_lock(state_dir_of(args)):
        print(json.dumps(manage.shop_settings(state_dir_of(args), settings), indent=2))
    return 0


def cmd_lab_fault(args) -> int:
    """crash / freeze / thaw one node, or cut an AZ's power, by hand (not while a run holds the lab)."""
    config = manage.require_up(state_dir_of(args))
    from urllib.parse import urlencode
    with lab_lock(state_dir_of(args)):
        if args.lab_command == "interrupt-az":
            query = urlencode({"id": args.az, "seconds": args.seconds})
            result = manage.call(config, f"/_lab/interrupt-az?{query}", method="POST")
            print(f"power interrupted in {args.az} for {args.seconds:g} s: "
                  f"{', '.join(result['powered_off']) or 'no nodes'}")
            return 0
        manage.call(config, f"/_lab/{args.lab_command}?{urlencode({'id': args.node})}", method="POST")
    print(f"{args.node}: {args.lab_command} done")
    return 0


def add_lab_parsers(sub) -> None:
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
    p.add_argument("--db", metavar="TOPOLOGY",
                   help="DB topology: instance (default: a Multi-AZ DB instance, primary + standby) or "
                        "cluster (a Multi-AZ DB cluster: a writer and two readers; docs/db-cluster.md)")
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
    lablag.add_parsers(lab_sub, common)


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
