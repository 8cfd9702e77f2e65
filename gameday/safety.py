"""What `gameday run` does before Chaos Toolkit starts: the dry run (the preflight alone), the
gate of an AWS run (preflight ready, plan confirmed), and the record of what was targeted.

Kept apart from `gameday/run.py` so the run stays "resolve, run, report" with one hook each.
"""
import json
import os
from pathlib import Path
from typing import Any, Dict, Optional

from chaosext.errors import GamedayError, NotReady

from . import lag_cloudwatch
from .preflight import Preflight, build_context, cloud, environment, guards, mixing, run_preflight, waivers

__all__ = ["refuse_mixing", "preflight_for", "dry_run", "gate_aws_run", "placement", "target_info",
           "aws_lag_reader"]


def refuse_mixing(target: str, env: Optional[Dict[str, str]] = None, spec: Optional[dict] = None) -> None:
    """`--target aws` with any endpoint on the lab or this machine: one line naming them all,
    before any request (gameday/preflight/mixing.py)."""
    if target == "aws":
        mixing.refuse(dict(os.environ if env is None else env), spec)


def preflight_for(spec: dict, target: str, env: Dict[str, str], run_id: str,
                  accept_any_account: bool = False) -> Preflight:
    return run_preflight(build_context(spec, target, env, run_id, accept_any_account))


def dry_run(spec: dict, target: str, env: Dict[str, str], run_id: str,
            accept_any_account: bool = False, json_path: Optional[Path] = None) -> int:
    """Print the preflight table; 0 when ready, 2 when not. Nothing is written anywhere
    (the table can be saved with --preflight-json, a path of the operator's choosing)."""
    result = preflight_for(spec, target, env, run_id, accept_any_account)
    print(result.table(), flush=True)
    if json_path:
        Path(json_path).write_text(json.dumps(result.as_dict(), indent=2))
    return 0 if result.ready else 2


def gate_aws_run(spec: dict, env: Dict[str, str], run_id: str, yes: bool,
                 accept_any_account: bool = False) -> Preflight:
    """Preflight, refuse unless ready, then ask for confirmation (or take --yes)."""
    result = preflight_for(spec, "aws", env, run_id, accept_any_account)
    failed = [r for r in result.rows if r.status == "FAIL"]
    print(result.table(), flush=True)
    if failed:
        first = failed[0]
        raise NotReady(f"not ready ({len(failed)} check(s) failed; first: {first.item}: {first.detail}"
                           f"{'; fix: ' + first.fix if first.fix else ''}); nothing was done")
    waived = result.facts.get("waivers") or []
    for line in waived:  # said whether or not a prompt follows (--yes)
        print(f"gameday: {line}", flush=True)
    guards.confirm("\n".join([f"gameday: about to run {spec.get('title', 'the experiment')} against "
                              f"account {result.facts.get('account')} in {env.get('AWS_REGION')} "
                              "(plan above)"] + [f"gameday: {line}" for line in waived]), yes)
    spec.setdefault("configuration", {})["load_allow_remote_host"] = True  # the shop URL is allow-listed
    return result


def placement(spec: dict, env: Dict[str, str], run_id: str) -> Dict[str, Any]:
    """The lab run's facts (resources as they are before the faults) for target.json and failback;
    describe calls only, and a failure here only leaves the record without them."""
    context = build_context(spec, "lab", env, run_id)
    with environment(env):
        context.facts["waivers"] = waivers.lines(context)
        try:
            cloud.credential_rows(context)
            cloud.target_rows(context)
        except GamedayError:
            pass
    return context.facts


def aws_lag_reader(spec: dict, env: Dict[str, str], run_id: str, facts: Dict[str, Any], run_dir: Path,
                   started: float) -> Optional[lag_cloudwatch.CloudWatchLag]:
    """The CloudWatch replica-lag reader for the DB clusters the gate found (None without one),
    made with the run's region and credentials as the preflight resolved them."""
    if not facts.get("clusters"):
        return None
    context = build_context(spec, "aws", env, run_id)
    with environment(env):
        return lag_cloudwatch.lag_reader(facts["clusters"], context.configuration, context.secrets,
                                         run_dir, started)


def _endpoint(host_key: str, port_key: str, env: Dict[str, str]) -> Optional[str]:
    return f"{env[host_key]}:{env.get(port_key, '')}".rstrip(":") if env.get(host_key) else None


def target_info(target: str, env: Dict[str, str], facts: Optional[Dict[str, Any]] = None) -> dict:
    """target.json: kind, region, account, ids, every endpoint actually used, the placement before."""
    facts = facts or {}
    aws = facts.get("endpoints") or {}
    default = env.get("AWS_ENDPOINT_URL") or "the AWS regional endpoints"
    return {"kind": target, "region": env.get("AWS_REGION"),
            "account": facts.get("account") or ("123456789012" if target == "lab" else None),
            "endpoint_url": env.get("AWS_ENDPOINT_URL"),
            "endpoints": {"rds": aws.get("rds") or env.get("AWS_ENDPOINT_URL_RDS") or default,
                          "elasticache": aws.get("elasticache") or env.get("AWS_ENDPOINT_URL_ELASTICACHE") or default,
                          "shop": env.get("GAMEDAY_SHOP_URL"),
                          "mysql": _endpoint("GAMEDAY_MYSQL_HOST", "GAMEDAY_MYSQL_PORT", env) or "not configured",
                          "redis": _endpoint("GAMEDAY_REDIS_HOST", "GAMEDAY_REDIS_PORT", env) or "not configured"},
            "ids": {"db_instance": env.get("GAMEDAY_DB_INSTANCE_ID"),
                    "replication_group": env.get("GAMEDAY_REPLICATION_GROUP_ID")},
            "original": facts.get("original") or {}, "waivers": list(facts.get("waivers") or []),
            "configuration": facts.get("configuration") or {}}
