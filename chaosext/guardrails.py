"""Safety checks run before any mutating call; a refusal means nothing was changed.

Configuration keys:
- `chaos_allow_tag` ("key=value" or just "key"; default "chaos:allowed=true"): the target must
  carry it, unless `chaos_waive_tag_guardrail` is true.
- `aws_allowed_regions`, `aws_allowed_accounts` (list or comma-separated string): when set, the
  target's region / account (read from its ARN) must be listed.
- `aws_allowed_resources` (or `$GAMEDAY_ALLOWED_RESOURCES`): when set, the target's id must be
  listed. A target with production marks (`production_marks`) is refused unless it is listed.
- `gameday_dry_run` (or an activity's `dry_run` argument): describe, do not mutate.
"""
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from chaoslib.types import Configuration

from chaosext.errors import GuardrailRefused
from chaosext.settings import flag

__all__ = [
    "Target", "check_target", "is_dry_run", "require_multi_az",
    "require_cluster_reader", "require_cluster_ready", "require_not_cluster_member",
    "require_cache_failover_ready", "flag", "allow_tag",
    "carries_allow_tag", "production_marks", "tag_waived", "allowed_resources",
]

logger = logging.getLogger("chaostoolkit")

DEFAULT_ALLOW_TAG = "chaos:allowed=true"
# production marks: a tag with one of these keys and values (both compared case-insensitively),
# or one of the words in the resource id (words are split at anything not a letter or digit)
PRODUCTION_TAG_KEYS = ("environment", "env")
PRODUCTION_WORDS = ("prod", "production")


@dataclass
class Target:
    """What a guardrail needs to know about the resource an action will mutate."""

    kind: str  # "DB instance", "DB cluster", "replication group"
    id: str
    arn: Optional[str]
    region: str  # the region the client talks to
    tags: Dict[str, str] = field(default_factory=dict)

    @property
    def arn_region(self) -> Optional[str]:
        return _arn_part(self.arn, 3)

    @property
    def account(self) -> Optional[str]:
        return _arn_part(self.arn, 4)


def _arn_part(arn: Optional[str], index: int) -> Optional[str]:
    parts = (arn or "").split(":")
    return parts[index] or None if arn and len(parts) > index else None



def _listed(value: Any) -> List[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [str(item).strip() for item in value if str(item).strip()]


def is_dry_run(configuration: Configuration, dry_run: Optional[bool] = None) -> bool:
    """The activity's `dry_run` argument when given, else configuration `gameday_dry_run`."""
    if dry_run is not None:
        return flag(dry_run)
    return flag((configuration or {}).get("gameday_dry_run", False))


def allowed_resources(configuration: Configuration = None) -> List[str]:
    """`aws_allowed_resources`, else `$GAMEDAY_ALLOWED_RESOURCES` (the same list as the preflight)."""
    return _listed((configuration or {}).get("aws_allowed_resources")
                   or os.environ.get("GAMEDAY_ALLOWED_RESOURCES"))


def production_marks(target: Target) -> List[str]:
    """What makes `target` look like production: an `Environment`/`env` tag of `prod` or
    `production`, or `prod`/`production` as a word of its id (`shop-db-prod`, `prod.cache`)."""
    marks = [f"tag {key}={value}" for key, value in sorted(target.tags.items())
             if key.strip().lower() in PRODUCTION_TAG_KEYS
             and str(value).strip().lower() in PRODUCTION_WORDS]
    words = re.split(r"[^a-z0-9]+", target.id.lower())
    marks += [f"'{word}' in its id" for word in PRODUCTION_WORDS if word in words]
    return marks


def carries_allow_tag(target: Target, configuration: Configuration = None) -> bool:
    spec = str((configuration or {}).get("chaos_allow_tag") or DEFAULT_ALLOW_TAG)
    key, has_value, value = spec.partition("=")
    actual = target.tags.get(key)
    return actual is not None and (not has_value or actual.strip().lower() == value.strip().lower())


def tag_waived(configuration: Configuration = None) -> bool:
    return flag((configuration or {}).get("chaos_waive_tag_guardrail", False))


def check_target(target: Target, action: str, configuration: Configuration = None) -> None:
    """Refuse `action` on `target` unless the region, account, resource allow-list, production
    marks and allow tag permit it."""
    configuration = configuration or {}
    region = target.arn_region or target.region
    regions = _listed(configuration.get("aws_allowed_regions"))
    if regions and region not in regions:
        _refuse(target, action, f"its region {region} is not in aws_allowed_regions {regions}")
    accounts = _listed(configuration.get("aws_allowed_accounts"))
    if accounts:
        if not target.account:
            _refuse(target, action, "its ARN is unknown, so its account cannot be checked "
                    "against aws_allowed_accounts")
        if target.account not in accounts:
            _refuse(target, action, f"its account {target.account} is not in "
                    f"aws_allowed_accounts {accounts}")
    _check_listed(target, action, allowed_resources(configuration))
    if tag_waived(configuration):
        logger.warning("Tag guardrail WAIVED by configuration for %s %s", target.kind, target.id)
        return
    if not carries_allow_tag(target, configuration):
        spec = str(configuration.get("chaos_allow_tag") or DEFAULT_ALLOW_TAG)
        _refuse(target, action, f"it does not carry the allow tag {spec} (tag it; "
                "docs/before-aws.md lists the waivers)")


def _check_listed(target: Target, action: str, resources: List[str]) -> None:
    if resources and target.id not in resources:
        _refuse(target, action, f"it is not in the resource allow-list {resources} "
                "(GAMEDAY_ALLOWED_RESOURCES / aws_allowed_resources)")
    marks = production_marks(target)
    if marks and target.id not in resources:
        _refuse(target, action, f"it carries production marks ({', '.join(marks)}); if it is not "
                "production, add it to GAMEDAY_ALLOWED_RESOURCES (aws_allowed_resources)")


def allow_tag(configuration: Configuration = None) -> Dict[str, str]:
    """The allow tag as an AWS tag: what a node the pack creates carries, so the IAM policy can
    limit CreateCacheCluster to requests tagged with it (aws:RequestTag)."""
    spec = str((configuration or {}).get("chaos_allow_tag") or DEFAULT_ALLOW_TAG)
    key, _, value = spec.partition("=")
    return {"Key": key.strip(), "Value": value.strip()}


def require_multi_az(instance: Dict[str, Any], action: str) -> None:
    """RebootDBInstance(ForceFailover) is only valid for a Multi-AZ DB instance."""
    if not instance.get("MultiAZ"):
        raise GuardrailRefused(
            f"{action} on DB instance {instance['DBInstanceIdentifier']} refused: it is not "
            "Multi-AZ, so there is no standby to fail over to; nothing was changed"
        )


def require_cluster_reader(cluster: Dict[str, Any], target_instance: Optional[str],
                           action: str) -> None:
    """A cluster failover needs a reader to promote (and the target, when given, a reader)."""
    readers = [m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", [])
               if not m.get("IsClusterWriter")]
    name = cluster["DBClusterIdentifier"]
    if not readers:
        raise GuardrailRefused(f"{action} on DB cluster {name} refused: it has no reader "
                               "instance to promote; nothing was changed")
    if target_instance and target_instance not in readers:
        raise GuardrailRefused(f"{action} on DB cluster {name} refused: target "
                               f"{target_instance} is not one of its readers {readers}; "
                               "nothing was changed")


def require_cluster_ready(cluster: Dict[str, Any], members: List[Dict[str, Any]],
                          target_instance: Optional[str], action: str) -> None:
    """A cluster failover that can succeed: the cluster `available`, a reader to promote (the
    target, when given), and writer and readers in at least two AZs.

    `members` are the cluster's DB instances as DescribeDBInstances lists them (their AZs are
    not in DescribeDBClusters). Members all in one AZ make the failover a restart in the same
    AZ: it proves nothing about losing an AZ, so it is refused."""
    name = cluster["DBClusterIdentifier"]
    status = cluster.get("Status")
    if status != "available":
        raise GuardrailRefused(f"{action} on DB cluster {name} refused: it is {status}, not "
                               "available (wait until it is); nothing was changed")
    require_cluster_reader(cluster, target_instance, action)
    zones = {m.get("DBInstanceIdentifier"): m.get("AvailabilityZone") for m in members}
    placed = sorted({az for az in zones.values() if az})
    if len(placed) < 2:
        where = ", ".join(f"{n} in {az or 'an unknown AZ'}" for n, az in sorted(zones.items())) or "no member"
        raise GuardrailRefused(f"{action} on DB cluster {name} refused: its writer and readers are "
                               f"in fewer than two AZs ({where}), so a failover would not leave the "
                               "writer's AZ; nothing was changed")


def require_not_cluster_member(instance: Dict[str, Any], action: str) -> None:
    """RebootDBInstance(ForceFailover) is for Multi-AZ DB instances; a member of a DB cluster
    fails over with its cluster (FailoverDBCluster)."""
    cluster = instance.get("DBClusterIdentifier")
    if cluster:
        raise GuardrailRefused(
            f"{action} on DB instance {instance['DBInstanceIdentifier']} refused: it is a member "
            f"of DB cluster {cluster}, which fails over as a whole (FailoverDBCluster; the "
            "experiment rds-cluster-failover); nothing was changed")


def require_cache_failover_ready(group: Dict[str, Any], node_group: Dict[str, Any],
                                 action: str) -> None:
    """Primary loss needs automatic failover enabled and >= 1 replica in the node group."""
    name = group["ReplicationGroupId"]
    if group.get("AutomaticFailover") != "enabled":
        raise GuardrailRefused(
            f"{action} on replication group {name} refused: automatic failover is "
            f"{group.get('AutomaticFailover', 'disabled')}, so losing the primary would not "
            "promote a replica; nothing was changed")
    replicas = [m for m in node_group.get("NodeGroupMembers", [])
                if m.get("CurrentRole") == "replica"]
    if not replicas:
        raise GuardrailRefused(
            f"{action} on replication group {name} refused: node group "
            f"{node_group.get('NodeGroupId')} has no replica to promote; nothing was changed")


def _refuse(target: Target, action: str, why: str) -> None:
    raise GuardrailRefused(
        f"{action} on {target.kind} {target.id} refused: {why}; nothing was changed")
