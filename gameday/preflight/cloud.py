"""Read-only AWS checks: who the credentials are, what the targets look like, what IAM allows.

Only Describe/List calls, `sts:GetCallerIdentity` (needs no permission) and, where the runner may
call it, `iam:SimulatePrincipalPolicy`: RDS and ElastiCache have no dry-run parameter (EC2's
`DryRun` has no equivalent there), so the fault actions can only be checked by asking IAM's
policy simulator; without that permission they are reported as not checked.
"""
from typing import Any, Dict, List, Optional

from chaosext import guardrails
from chaosext.aws import DENIED_CODES, aws_call, aws_client
from chaosext.elasticache.probes import describe_group, group_target, roles
from chaosext.errors import GamedayError
from chaosext.rds.probes import cluster_target, instance_target, writer_of
from chaosext.rds.targets import cluster_members, cluster_of, instance_of
from gameday import iam

from .context import Context
from .table import FAIL, INFO, OK, WARN, Row

__all__ = ["credential_rows", "target_rows", "iam_rows", "role_arn"]


def _client(context: Context, service: str):
    return aws_client(service, context.configuration, context.secrets)


def credential_rows(context: Context) -> List[Row]:
    """Credentials and the account and region they resolve to; the AWS endpoints in use."""
    rds, cache = _client(context, "rds"), _client(context, "elasticache")
    context.facts["endpoints"] = {"rds": rds.meta.endpoint_url, "elasticache": cache.meta.endpoint_url}
    endpoints = f"rds {rds.meta.endpoint_url}, elasticache {cache.meta.endpoint_url}"
    if context.target == "lab":
        return [Row("credentials", "identity", OK, "the lab's AWS API (any credentials accepted)"),
                Row("credentials", "region", OK, f"{context.region}; {endpoints}")]
    try:
        who = aws_call(_client(context, "sts"), "get_caller_identity", "the credentials")
    except GamedayError as exc:
        fix = ("configure credentials (environment, AWS_PROFILE, SSO or an instance role)"
               if getattr(exc, "code", None) and not str(exc.code).isdigit()
               else "check the endpoint named here and the network path from this machine")
        return [Row("credentials", "identity", FAIL, str(exc), fix)]
    context.facts.update(account=who["Account"], principal=who["Arn"])
    return [Row("credentials", "identity", OK, f"{who['Arn']} (account {who['Account']})"),
            Row("credentials", "region", OK, f"{context.region}; {endpoints}")]


def _tags_text(tags: Dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items())) or "no tags"


def _guard(row_item: str, check) -> Optional[Row]:
    try:
        check()
    except GamedayError as exc:
        fix = ("if it is not production, add it to GAMEDAY_ALLOWED_RESOURCES" if "production marks" in str(exc)
               else "tag the resource, fix the allow-lists, or choose a resource that can fail over")
        return Row("target", row_item, FAIL, str(exc), fix)
    return None


def _target_row(context: Context, item: str, target, detail: str) -> Row:
    """OK, or WARN when the resource lacks the allow tag and only a waiver lets it through."""
    if guardrails.tag_waived(context.configuration) and not guardrails.carries_allow_tag(
            target, context.configuration):
        return Row("target", item, WARN, f"{detail}; allow tag missing, WAIVED by "
                   "chaos_waive_tag_guardrail: the fault will act on it anyway",
                   "tag the resource and drop the waiver (docs/before-aws.md)")
    return Row("target", item, OK, detail)


def _prove_events(client, source_type: str, name: str) -> None:
    """One small DescribeEvents, so the IAM row can say the events can be read too."""
    aws_call(client, "describe_events", f"{source_type} {name}", SourceIdentifier=name,
             SourceType=source_type, Duration=60, MaxRecords=20)


def _instance_rows(context: Context, rds, name: str) -> List[Row]:
    instance = instance_of(rds, name, "the fault")
    _prove_events(rds, "db-instance", name)
    target = instance_target(rds, instance)
    context.facts.setdefault("arns", {})[name] = target.arn
    context.facts.setdefault("original", {})[name] = {"kind": "db-instance", "az": instance.get("AvailabilityZone")}
    endpoint = instance.get("Endpoint") or {}
    detail = (f"{instance.get('DBInstanceStatus')}, Multi-AZ {'yes' if instance.get('MultiAZ') else 'NO'}, "
              f"writer {instance.get('AvailabilityZone')} standby {instance.get('SecondaryAvailabilityZone') or '-'}, "
              f"endpoint {endpoint.get('Address')}:{endpoint.get('Port')}, replicas "
              f"{len(instance.get('ReadReplicaDBInstanceIdentifiers') or [])}, {_tags_text(target.tags)}")
    rows = [_target_row(context, f"DB instance {name}", target, detail)]
    context.facts.setdefault("primary_azs", {})[name] = instance.get("AvailabilityZone")
    failure = _guard(f"DB instance {name}", lambda: (
        guardrails.check_target(target, "the fault", context.configuration),
        guardrails.require_not_cluster_member(instance, "the fault"),
        guardrails.require_multi_az(instance, "the fault")))
    context.facts.setdefault("accounts", set()).add(target.account)
    return [failure] if failure else rows


def _cluster_rows(context: Context, rds, name: str) -> List[Row]:
    """The cluster with its writer and readers and their AZs; FAIL when a guardrail or the
    failover readiness (available, a reader, two AZs or more) would refuse the fault."""
    cluster = cluster_of(rds, name, "the fault")
    _prove_events(rds, "db-cluster", name)
    target = cluster_target(rds, cluster)
    members = cluster_members(rds, name)
    zones = {m["DBInstanceIdentifier"]: m.get("AvailabilityZone") for m in members}
    roles = writer_of(cluster)
    context.facts.setdefault("arns", {})[name] = target.arn
    context.facts.setdefault("clusters", {})[name] = {**roles, "zones": zones}
    context.facts.setdefault("primary_azs", {})[name] = zones.get(roles["writer"])
    readers = ", ".join(f"{r} ({zones.get(r) or '?'})" for r in roles["readers"]) or "none"
    detail = (f"{cluster.get('Status')}, Multi-AZ {'yes' if cluster.get('MultiAZ') else 'NO'}, writer "
              f"{roles['writer']} ({zones.get(roles['writer']) or '?'}), readers {readers}, endpoint "
              f"{cluster.get('Endpoint')}:{cluster.get('Port')}, {_tags_text(target.tags)}")
    failure = _guard(f"DB cluster {name}", lambda: (
        guardrails.check_target(target, "the fault", context.configuration),
        guardrails.require_cluster_ready(cluster, members, None, "the fault")))
    context.facts.setdefault("accounts", set()).add(target.account)
    return [failure or _target_row(context, f"DB cluster {name}", target, detail)]


def _group_rows(context: Context, cache, name: str) -> List[Row]:
    group = describe_group(cache, name)
    _prove_events(cache, "replication-group", name)
    target = group_target(cache, group)
    context.facts.setdefault("arns", {})[name] = target.arn
    shards = [roles(s) for s in group.get("NodeGroups", [])]
    context.facts.setdefault("original", {})[name] = {"kind": "replication-group",
                                                      "primaries": {s["node_group"]: s["node"] for s in shards}}
    layout = "; ".join(f"{s['node_group']}: primary {s['node']} ({s['az']}), replicas {', '.join(s['replicas']) or 'none'}"
                       for s in shards)
    detail = (f"{group.get('Status')}, automatic failover {group.get('AutomaticFailover')}, Multi-AZ "
              f"{group.get('MultiAZ', '-')}, in-transit encryption "
              f"{'on' if group.get('TransitEncryptionEnabled') else 'off'}, {layout}, {_tags_text(target.tags)}")
    rows = [_target_row(context, f"replication group {name}", target, detail)]
    context.facts.setdefault("primary_azs", {})[name] = shards[0]["az"] if shards else None
    failure = _guard(f"replication group {name}", lambda: (
        guardrails.check_target(target, "the fault", context.configuration),
        [guardrails.require_cache_failover_ready(group, s, "the fault") for s in group.get("NodeGroups", [])]))
    context.facts.setdefault("accounts", set()).add(target.account)
    context.facts["cache_tls"] = bool(group.get("TransitEncryptionEnabled"))
    return [failure] if failure else rows


def target_rows(context: Context) -> List[Row]:
    """Each resource the experiment's actions name, resolved with tags, Multi-AZ and replicas."""
    readers = {"db-instance": ("rds", _instance_rows), "db-cluster": ("rds", _cluster_rows),
               "replication-group": ("elasticache", _group_rows)}
    rows: List[Row] = []
    for kind, name in context.resources:
        service, read = readers[kind]
        try:
            rows += read(context, _client(context, service), name)
        except GamedayError as exc:
            denied = getattr(exc, "code", None) in DENIED_CODES
            if denied:
                context.facts.setdefault("denied", []).append(str(exc))
            rows.append(Row("target", f"{kind} {name}", FAIL, str(exc),
                            "attach infra/iam/gameday-policy.json to the runner's role" if denied else
                            "check the id (GAMEDAY_DB_INSTANCE_ID / GAMEDAY_REPLICATION_GROUP_ID) and the region"))
    if not context.resources:
        rows.append(Row("target", "resources", INFO, "the experiment names no AWS resource"))
    accounts = {a for a in context.facts.get("accounts", set()) if a}
    if accounts and not context.facts.get("account"):
        context.facts["account"] = sorted(accounts)[0]
    return rows


def role_arn(principal: str) -> Optional[str]:
    """The IAM ARN the simulator takes for a caller ARN (an assumed role -> its role)."""
    parts = principal.split(":")
    if len(parts) < 6:
        return None
    if parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        return f"arn:aws:iam::{parts[4]}:role/{parts[5].split('/')[1]}"
    return principal if parts[2] == "iam" and parts[5].split("/")[0] in ("user", "role") else None


def _simulate(context: Context, actions: List[str]) -> Row:
    principal = role_arn(context.facts.get("principal", ""))
    if not principal:
        return Row("iam", "fault actions", WARN, f"not checked: the caller {context.facts.get('principal')} "
                   "is not a user or role the policy simulator can evaluate", "attach infra/iam/gameday-policy.json")
    allow = guardrails.allow_tag(context.configuration)
    params: Dict[str, Any] = {"PolicySourceArn": principal, "ActionNames": actions,
                              "ResourceArns": sorted(a for a in context.facts.get("arns", {}).values() if a),
                              "ContextEntries": [{"ContextKeyName": f"aws:ResourceTag/{allow['Key']}",
                                                  "ContextKeyValues": [allow["Value"]], "ContextKeyType": "string"}]}
    if not params["ResourceArns"]:
        params.pop("ResourceArns")
    try:
        answer = aws_call(_client(context, "iam"), "simulate_principal_policy", principal, **params)
    except GamedayError as exc:
        return Row("iam", "fault actions", WARN, f"not checked ({exc})",
                   "allow iam:SimulatePrincipalPolicy on the runner's role to check them before the run")
    denied = sorted({r["EvalActionName"] for r in answer.get("EvaluationResults", [])
                     if r.get("EvalDecision") != "allowed"})
    if denied:
        return Row("iam", "fault actions", FAIL, f"denied: {', '.join(denied)}",
                   "attach infra/iam/gameday-policy.json to the runner's role (see docs/iam.md)")
    return Row("iam", "fault actions", OK, f"allowed by the policy simulator: {', '.join(actions)}")


def _reads_row(context: Context, reads: List[str]) -> Row:
    """FAIL only when AWS denied a read; a target that failed for another reason (not found, not
    tagged, unreachable) proves nothing about IAM either way."""
    shown = ", ".join(reads) or "none"
    if context.facts.get("denied"):
        return Row("iam", "read actions", FAIL, f"denied ({context.facts['denied'][0]}): {shown}",
                   "attach infra/iam/gameday-policy.json to the runner's role")
    if context.facts.get("target_failed"):
        return Row("iam", "read actions", INFO, f"not proven (the target rows failed for other "
                   f"reasons): {shown}")
    return Row("iam", "read actions", OK, f"allowed (the describe calls above succeeded): {shown}")


def iam_rows(context: Context) -> List[Row]:
    """The actions the experiment needs: reads proven by the calls above, faults simulated."""
    needed = iam.needed_actions([a["func"] for a in context.actions])
    unknown = sorted(f for f, acts in needed.items() if acts is None)
    actions = sorted({a for acts in needed.values() if acts for a in acts})
    rows = []
    if unknown:
        rows.append(Row("iam", "other activities", WARN, f"not known to the pack: {', '.join(unknown)}",
                        "check their permissions yourself"))
    missing = sorted(set(actions) - iam.policy_actions())
    if missing:
        rows.append(Row("iam", "policy", FAIL, f"not in infra/iam/gameday-policy.json: {', '.join(missing)}",
                        "a bug in the pack: report it"))
    reads = [a for a in actions if a not in iam.MUTATING]
    mutating = [a for a in actions if a in iam.MUTATING]
    if context.target == "lab":
        return rows + [Row("iam", "actions", INFO, f"not applicable on the lab (any credentials accepted); "
                           f"on AWS: {', '.join(actions) or 'none'}")]
    rows.append(_reads_row(context, reads))
    if mutating:
        rows.append(_simulate(context, mutating))
    return rows
