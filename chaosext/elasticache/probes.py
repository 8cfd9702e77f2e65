"""ElastiCache probes: group status, current primary, failover events, endpoint resolution."""
import logging
from typing import Any, Dict, List, Optional

from chaoslib.types import Configuration, Secrets

from chaosext.aws import aws_call, aws_client, paginate
from chaosext.dataplane import resolve_endpoint
from chaosext.errors import ActivityError
from groundfloor.aws_events import describe_event
from chaosext.guardrails import Target
from chaosext.recovery import since_window
from groundfloor.timefmt import parse_time

__all__ = ["replication_group_status", "current_primary", "failover_events",
           "endpoint_resolution"]

logger = logging.getLogger("chaostoolkit")


# -- lookups shared with the actions (not activities themselves) ---------------------------
def describe_group(client, replication_group_id: str) -> Dict[str, Any]:
    answer = aws_call(client, "describe_replication_groups",
                      f"replication group {replication_group_id}",
                      ReplicationGroupId=replication_group_id)
    return answer["ReplicationGroups"][0]


def group_target(client, group: Dict[str, Any]) -> Target:
    name = group["ReplicationGroupId"]
    tags = {}
    if group.get("ARN"):
        answer = aws_call(client, "list_tags_for_resource", f"replication group {name}",
                          ResourceName=group["ARN"])
        tags = {t["Key"]: t.get("Value", "") for t in answer.get("TagList", [])}
    return Target("replication group", name, group.get("ARN"), client.meta.region_name, tags)


def node_group(group: Dict[str, Any], node_group_id: Optional[str] = None) -> Dict[str, Any]:
    """The node group (shard) to act on: the named one, or the only one."""
    groups = group.get("NodeGroups", [])
    name = group["ReplicationGroupId"]
    if node_group_id is None:
        if len(groups) != 1:
            raise ActivityError(f"replication group {name} has {len(groups)} node groups "
                                f"{[g.get('NodeGroupId') for g in groups]}: name one with "
                                "node_group_id")
        return groups[0]
    for candidate in groups:
        if candidate.get("NodeGroupId") == node_group_id:
            return candidate
    raise ActivityError(f"replication group {name} has no node group {node_group_id} (it has "
                        f"{[g.get('NodeGroupId') for g in groups]})")


def roles(shard: Dict[str, Any]) -> Dict[str, Any]:
    """Primary node, its AZ and the replicas of a node group, from NodeGroupMembers[].CurrentRole."""
    members = shard.get("NodeGroupMembers", [])
    primary = next((m for m in members if m.get("CurrentRole") == "primary"), None)
    return {
        "node_group": shard.get("NodeGroupId"),
        "node": primary.get("CacheClusterId") if primary else None,
        "az": primary.get("PreferredAvailabilityZone") if primary else None,
        "replicas": [m.get("CacheClusterId") for m in members
                     if m.get("CurrentRole") == "replica"],
        "status": shard.get("Status"),
    }


def group_events(client, group: Dict[str, Any], since: float, extra_ids=()) -> List[Dict[str, Any]]:
    """Events of the group and its nodes since epoch seconds, oldest first."""
    name = group["ReplicationGroupId"]
    ids = {name, *group.get("MemberClusters", []), *extra_ids}
    items = paginate(client, "describe_events", f"replication group {name}", "Events",
                     StartTime=parse_time(since))
    found = (describe_event(e) for e in items if e.get("SourceIdentifier") in ids)
    return sorted(found, key=lambda e: e["date"] or "")


# -- probes ----------------------------------------------------------------------------------
def replication_group_status(replication_group_id: str, configuration: Configuration = None,
                             secrets: Secrets = None) -> str:
    """Read the replication group's status ("available", "modifying", ...); changes nothing."""
    client = aws_client("elasticache", configuration, secrets)
    return describe_group(client, replication_group_id)["Status"]


def current_primary(replication_group_id: str, node_group_id: Optional[str] = None,
                    configuration: Configuration = None, secrets: Secrets = None
                    ) -> Dict[str, Any]:
    """Read which node is the node group's primary now; changes nothing.

    Returns {"node_group", "node", "az", "replicas", "status"}.
    """
    client = aws_client("elasticache", configuration, secrets)
    return roles(node_group(describe_group(client, replication_group_id), node_group_id))


def failover_events(replication_group_id: str, since: Optional[str] = None,
                    window_seconds: float = 900.0, configuration: Configuration = None,
                    secrets: Secrets = None) -> List[Dict[str, Any]]:
    """List the ElastiCache events of a replication group and its nodes since a time.

    `since` is ISO-8601 (default: `window_seconds` ago). Entries carry date, source, message
    and the kind inferred from the AWS message ("failover-completed", ...).
    """
    client = aws_client("elasticache", configuration, secrets)
    start = since_window(since, window_seconds).timestamp()
    return group_events(client, describe_group(client, replication_group_id), start)


def endpoint_resolution(replication_group_id: str, reader: bool = False,
                        configuration: Configuration = None, secrets: Secrets = None
                        ) -> Dict[str, Any]:
    """Resolve the group's primary (or reader) endpoint DNS name now; changes nothing.

    Returns {"address", "port", "resolved": [IP addresses]}.
    """
    client = aws_client("elasticache", configuration, secrets)
    group = describe_group(client, replication_group_id)
    point = group.get("ConfigurationEndpoint")
    if not point and group.get("NodeGroups"):
        point = group["NodeGroups"][0].get("ReaderEndpoint" if reader else "PrimaryEndpoint")
    if not point or not point.get("Address"):
        raise ActivityError(f"replication group {replication_group_id} has no "
                            f"{'reader' if reader else 'primary'} endpoint")
    return resolve_endpoint(point["Address"], point.get("Port"))
