"""Safety checks run before any mutating call; a refusal means nothing was changed.

Configuration keys:
- `chaos_allow_tag` ("key=value" or just "key"; default "chaos:allowed=true"): the target must
  carry it, unless `chaos_waive_tag_guardrail` is true.
- `aws_allowed_regions`, `aws_allowed_accounts` (list or comma-separated string): when set, the
  target's region / account (read from its ARN) must be listed.
- `gameday_dry_run` (or an activity's `dry_run` argument): describe, do not mutate.
"""
import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from chaoslib.types import Configuration

from chaosext.errors import GuardrailRefused

__all__ = [
    "Target", "check_target", "is_dry_run", "require_multi_az",
    "require_cluster_reader", "require_cache_failover_ready", "flag", "allow_tag",
]

logger = logging.getLogger("chaostoolkit")

DEFAULT_ALLOW_TAG = "chaos:allowed=true"


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


def flag(value: Any) -> bool:
    """A configuration boolean that may arrive as a string from the environment."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


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


def check_target(target: Target, action: str, configuration: Configuration = None) -> None:
    """Refuse `action` on `target` unless the region, account and allow tag permit it."""
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
    if flag(configuration.get("chaos_waive_tag_guardrail", False)):
        logger.warning("Tag guardrail waived by configuration for %s %s", target.kind, target.id)
        return
    spec = str(configuration.get("chaos_allow_tag") or DEFAULT_ALLOW_TAG)
    key, has_value, value = spec.partition("=")
    actual = target.tags.get(key)
    if actual is None or (has_value and actual.strip().lower() != value.strip().lower()):
        _refuse(target, action, f"it does not carry the allow tag {spec} (tag it, or set "
                "chaos_waive_tag_guardrail: true in the configuration)")


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
