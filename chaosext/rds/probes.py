"""RDS probes: status, where the writer is, failover events, what the endpoint resolves to."""
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

__all__ = [
    "instance_status", "cluster_status", "instance_placement", "cluster_writer",
    "failover_events", "endpoint_resolution",
]

logger = logging.getLogger("chaostoolkit")


# -- lookups shared with the actions (not activities themselves) ---------------------------
def describe_instance(client, db_instance_identifier: str) -> Dict[str, Any]:
    answer = aws_call(client, "describe_db_instances", f"DB instance {db_instance_identifier}",
                      DBInstanceIdentifier=db_instance_identifier)
    return answer["DBInstances"][0]


def describe_cluster(client, db_cluster_identifier: str) -> Dict[str, Any]:
    answer = aws_call(client, "describe_db_clusters", f"DB cluster {db_cluster_identifier}",
                      DBClusterIdentifier=db_cluster_identifier)
    return answer["DBClusters"][0]


def _tags(client, resource: Dict[str, Any], arn_key: str, what: str) -> Dict[str, str]:
    tag_list = resource.get("TagList")
    if tag_list is None and resource.get(arn_key):
        tag_list = aws_call(client, "list_tags_for_resource", what,
                            ResourceName=resource[arn_key]).get("TagList", [])
    return {t["Key"]: t.get("Value", "") for t in tag_list or []}


def instance_target(client, instance: Dict[str, Any]) -> Target:
    name = instance["DBInstanceIdentifier"]
    return Target("DB instance", name, instance.get("DBInstanceArn"), client.meta.region_name,
                  _tags(client, instance, "DBInstanceArn", f"DB instance {name}"))


def cluster_target(client, cluster: Dict[str, Any]) -> Target:
    name = cluster["DBClusterIdentifier"]
    return Target("DB cluster", name, cluster.get("DBClusterArn"), client.meta.region_name,
                  _tags(client, cluster, "DBClusterArn", f"DB cluster {name}"))


def placement(instance: Dict[str, Any]) -> Dict[str, Any]:
    return {"az": instance.get("AvailabilityZone"),
            "secondary_az": instance.get("SecondaryAvailabilityZone"),
            "status": instance.get("DBInstanceStatus")}


def writer_of(cluster: Dict[str, Any]) -> Dict[str, Any]:
    members = cluster.get("DBClusterMembers", [])
    writers = [m["DBInstanceIdentifier"] for m in members if m.get("IsClusterWriter")]
    return {"writer": writers[0] if writers else None,
            "readers": [m["DBInstanceIdentifier"] for m in members if not m.get("IsClusterWriter")],
            "status": cluster.get("Status")}


def events_since(client, source_type: str, source_identifier: str, since: float
                 ) -> List[Dict[str, Any]]:
    """DescribeEvents for one source since epoch seconds, oldest first, with inferred ids."""
    items = paginate(client, "describe_events", f"{source_type} {source_identifier}", "Events",
                     SourceType=source_type, SourceIdentifier=source_identifier,
                     StartTime=parse_time(since))
    return sorted((describe_event(e) for e in items), key=lambda e: e["date"] or "")


# -- probes ----------------------------------------------------------------------------------
def instance_status(db_instance_identifier: str, configuration: Configuration = None,
                    secrets: Secrets = None) -> str:
    """Read the DB instance's status ("available", "rebooting", ...); changes nothing."""
    client = aws_client("rds", configuration, secrets)
    return describe_instance(client, db_instance_identifier)["DBInstanceStatus"]


def cluster_status(db_cluster_identifier: str, configuration: Configuration = None,
                   secrets: Secrets = None) -> str:
    """Read the DB cluster's status ("available", "failing-over", ...); changes nothing."""
    client = aws_client("rds", configuration, secrets)
    return describe_cluster(client, db_cluster_identifier)["Status"]


def instance_placement(db_instance_identifier: str, configuration: Configuration = None,
                       secrets: Secrets = None) -> Dict[str, Any]:
    """Read which AZ the Multi-AZ instance's primary runs in now; changes nothing.

    Returns {"az", "secondary_az", "status"}; `az` swaps with `secondary_az` on a failover.
    """
    client = aws_client("rds", configuration, secrets)
    return placement(describe_instance(client, db_instance_identifier))


def cluster_writer(db_cluster_identifier: str, configuration: Configuration = None,
                   secrets: Secrets = None) -> Dict[str, Any]:
    """Read which member instance is the DB cluster's writer now; changes nothing.

    Returns {"writer", "readers", "status"}.
    """
    client = aws_client("rds", configuration, secrets)
    return writer_of(describe_cluster(client, db_cluster_identifier))


def failover_events(source_identifier: str, since: Optional[str] = None,
                    window_seconds: float = 900.0, source_type: str = "db-instance",
                    configuration: Configuration = None, secrets: Secrets = None
                    ) -> List[Dict[str, Any]]:
    """List the RDS events of a DB instance (or `source_type` "db-cluster") since a time.

    `since` is ISO-8601 (default: `window_seconds` ago). Each entry has date, message and the
    event id / kind inferred from the message (DescribeEvents itself carries no id).
    """
    if source_type not in ("db-instance", "db-cluster"):
        raise ActivityError(f"unknown RDS source type {source_type!r}: use db-instance or "
                            "db-cluster")
    client = aws_client("rds", configuration, secrets)
    start = since_window(since, window_seconds).timestamp()
    return events_since(client, source_type, source_identifier, start)


def endpoint_resolution(db_instance_identifier: Optional[str] = None,
                        db_cluster_identifier: Optional[str] = None,
                        configuration: Configuration = None, secrets: Secrets = None
                        ) -> Dict[str, Any]:
    """Resolve the instance (or cluster writer) endpoint's DNS name now; changes nothing.

    Returns {"address", "port", "resolved": [IP addresses]} — after a failover the name must
    resolve to the new primary, which is what clients reconnecting will reach.
    """
    client = aws_client("rds", configuration, secrets)
    if db_instance_identifier:
        found = describe_instance(client, db_instance_identifier).get("Endpoint") or {}
        address, port = found.get("Address"), found.get("Port")
    elif db_cluster_identifier:
        cluster = describe_cluster(client, db_cluster_identifier)
        address, port = cluster.get("Endpoint"), cluster.get("Port")
    else:
        raise ActivityError("endpoint_resolution needs db_instance_identifier or "
                            "db_cluster_identifier")
    if not address:
        raise ActivityError(f"{db_instance_identifier or db_cluster_identifier} has no "
                            "endpoint yet (is it still being created?)")
    return resolve_endpoint(address, port)
