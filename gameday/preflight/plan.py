"""The exact plan of a run, as rows: the load, what the steady-state checks write, each fault
and rollback with its resolved target, and the mark the run's orders carry."""
from typing import Any, Dict, List, Optional

from chaosext.errors import GamedayError
from chaosext.fault_model import ACTIVITIES
from chaosext.fis import impairment as fis_impairment
from chaosext.network.plan import ask
from chaosext.shop.marker import order_note

from .context import Context
from .table import FAIL, INFO, WARN, Row

__all__ = ["plan_rows", "WRITING_PROBES"]

# steady-state probes and actions that change the shop or the data stores when they run
WRITING_PROBES = {
    "chaosext.shop.probes.checkout_journey_succeeds": "places 1 guest order (stock, emails, webhooks)",
    "chaosext.shop.actions.remember_carts": "fills guest carts (sessions in the cache)",
    "chaosext.shop.actions.warm_catalogue": "reads every product page once (fills the object cache)",
    "chaosext.dataplane.mysql_writable": "upserts a row of the gameday_probe table (creates it if missing)",
    "chaosext.dataplane.redis_writable": "sets the key gameday:probe (60 s expiry)",
}


def _load_row(context: Context, shop_url: str) -> Row:
    args = context.load_arguments()
    if args is None:
        return Row("plan", "load", INFO, "none (the experiment has no shopper-load control)")
    users = args.get("users", 10)
    rate = args.get("spawn_rate") or users
    bound = args.get("max_duration")
    bound = f"{bound} s" if bound not in (None, "auto") else \
        "as long as the experiment's waits allow, sized from its RTO thresholds"
    return Row("plan", "load", INFO, f"{users} simulated shoppers ({rate}/s) browse, fill carts and check "
               f"out with cod at {shop_url}, warm-up {args.get('warmup', 0)} s, stopped after the rollbacks "
               f"(at most {bound})")


def _activity_text(action: Dict[str, Any]) -> str:
    args = {k: v for k, v in action["arguments"].items() if k not in ("configuration", "secrets")}
    shown = ", ".join(f"{k}={v}" for k, v in args.items())
    call = action["func"] if " " in action["func"] else f"{action['func'].split('.', 1)[-1]}({shown})"
    return call + (" in the background" if action["background"] else "")


def _steady_rows(context: Context) -> List[Row]:
    probes = (context.spec.get("steady-state-hypothesis") or {}).get("probes", [])
    funcs = [f"{p.get('provider', {}).get('module')}.{p.get('provider', {}).get('func')}" for p in probes]
    writes = [f"{f.rsplit('.', 1)[-1]}: {WRITING_PROBES[f]}" for f in funcs if f in WRITING_PROBES]
    if not writes:
        return []
    return [Row("plan", "steady state", INFO, "before and after the faults, " + "; ".join(writes))]


IMPAIRMENT = "chaosext.network.actions.impair_az_network"
IMPAIRMENT_ARGS = ("availability_zone", "delay_ms", "jitter_ms", "loss_percent", "bandwidth_kbps",
                   "blackhole", "partition", "direction", "duration_seconds", "sentinels", "service",
                   "fault")


# FIS network activities (run on the lab and on AWS): their blast radius is planned the same way
FIS_IMPAIRMENTS = {f"chaosext.fis.actions.{f}" for f in ("disrupt_az_connectivity", "az_application_slowdown",
                                                          "cross_az_traffic_slowdown")}


def _primaries_now(context: Context, resources: List[str]) -> Optional[str]:
    """The one AZ the preflight found the primaries of `resources` in, or None."""
    now = {(context.facts.get("primary_azs") or {}).get(r) for r in resources}
    return now.pop() if len(now) == 1 and None not in now else None


def _primaries_az(context: Context, resources: List[str]) -> str:
    """The AZ of the primaries as the preflight read them, said as a plan (it is resolved again
    when the fault starts)."""
    now = _primaries_now(context, resources)
    return ((f"{now} now" if now else "an AZ to resolve")
            + f" (the AZ of the primaries of {' and '.join(resources)}, resolved again when it starts)")


def _fis_impairment_row(n: int, action: Dict[str, Any], context: Context) -> Row:
    """The blast radius of one FIS network fault, or its bad input as a FAIL row."""
    func, args = action["func"].rsplit(".", 1)[-1], action["arguments"]
    wanted = args.get("availability_zone", "primary")
    resources = [r for r in (context.setting("db_instance_id"), context.setting("replication_group_id")) if r]
    zone, named = wanted, wanted
    if wanted == "primary":
        zone, named = _primaries_az(context, resources), _primaries_now(context, resources) or "that AZ"
    try:
        what = fis_impairment.describe(func, args, named)
    except GamedayError as exc:
        return Row("plan", f"impairment {n}", FAIL, str(exc))
    waits = args.get("wait", True) not in (False, "false")
    return Row("plan", f"impairment {n}", INFO, f"{ACTIVITIES[func]} on {zone}: {what}, through AWS FIS; "
               + ("the run waits for the experiment's end" if waits else "the experiment ends by itself")
               + " (the rollback stops it early)")


def _impairment_row(n: int, action: Dict[str, Any], context: Context) -> Row:
    """The blast radius of one network impairment: which AZ, which flows, for how long."""
    if action.get("func") in FIS_IMPAIRMENTS:
        return _fis_impairment_row(n, action, context)
    args = action["arguments"]
    try:
        wanted = ask(**{k: args[k] for k in IMPAIRMENT_ARGS if k in args})
    except GamedayError as exc:
        return Row("plan", f"impairment {n}", FAIL, str(exc))
    resources = [r for r in (context.setting("db_instance_id"), context.setting("replication_group_id")) if r]
    if wanted.service == "cache":
        resources = resources[1:]
    az = wanted.availability_zone or _primaries_az(context, resources)
    ends = "; the run waits for its end" if args.get("wait", True) not in (False, "false") else \
        "; it ends by itself (or at the rollback)"
    return Row("plan", f"impairment {n}", INFO, f"{wanted.fault} on {az}: "
               + wanted.flows("the AZ", []).replace("the AZ's", "its").replace(
                   " (no node of the shop is there now)", "") + ends)


# DB cluster failovers (API and FIS): the plan names the writer now and where it goes
CLUSTER_FAILOVERS = {"chaosext.rds.actions.failover_db_cluster": "FailoverDBCluster",
                     "chaosext.fis.actions.failover_db_cluster": "AWS FIS aws:rds:failover-db-cluster"}


def _cluster_failover_row(n: int, action: Dict[str, Any], context: Context) -> Row:
    """Which cluster fails over, from which writer to which readers, and how FIS selects it."""
    args, how = action["arguments"], CLUSTER_FAILOVERS[action["func"]]
    name = args.get("db_cluster_identifier")
    allow = context.setting("chaos_allow_tag", "chaos:allowed=true")
    if not name:
        return Row("plan", f"cluster failover {n}", WARN, f"{how} on every DB cluster tagged "
                   f"{args.get('tags') or allow}: no db_cluster_identifier, so FIS selects all of them",
                   "pass db_cluster_identifier to fail over one cluster")
    found = (context.facts.get("clusters") or {}).get(name)
    if not found:
        return Row("plan", f"cluster failover {n}", INFO, f"{how} on DB cluster {name} (its members were "
                   "not read: see its target row)")
    zones = found["zones"]
    to = args.get("target_db_instance_identifier")
    to = f"{to} ({zones.get(to) or '?'})" if to else "one of " + ", ".join(
        f"{r} ({zones.get(r) or '?'})" for r in found["readers"]) + " (RDS chooses)"
    selected = (f"; FIS selects it by the tag {allow} and DBClusterIdentifier {name}, the rollback stops "
                "the experiment" if "fis" in action["func"] else "")
    return Row("plan", f"cluster failover {n}", INFO, f"{how} on DB cluster {name}: writer {found['writer']} "
               f"({zones.get(found['writer']) or '?'}) -> {to}; the cluster endpoint follows the new writer{selected}")


def plan_rows(context: Context, shop_url: str) -> List[Row]:
    rows = [_load_row(context, shop_url)] + _steady_rows(context)
    for n, action in enumerate([a for a in context.actions if a["phase"] == "method"], 1):
        rows.append(Row("plan", f"method {n}", INFO, _activity_text(action)))
    impairments = [a for a in context.actions if a["phase"] == "method"
                   and (a["func"] == IMPAIRMENT or a["func"] in FIS_IMPAIRMENTS)]
    rows += [_impairment_row(n, a, context) for n, a in enumerate(impairments, 1)]
    clusters = [a for a in context.actions if a["phase"] == "method" and a["func"] in CLUSTER_FAILOVERS]
    rows += [_cluster_failover_row(n, a, context) for n, a in enumerate(clusters, 1)]
    for n, action in enumerate([a for a in context.actions if a["phase"] == "rollback"], 1):
        rows.append(Row("plan", f"rollback {n}", INFO, _activity_text(action)))
    rows.append(Row("plan", "orders", INFO, f"marked with the customer note \"{order_note(context.run_id)}\"; "
                    "`gameday cleanup RUN_DIR` cancels them"))
    return rows
