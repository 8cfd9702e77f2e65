"""Which Availability Zone holds the shop's primaries, for an AZ power interruption of "primary".

An AZ power interruption only fails a service over when its primary is in the AZ that loses
power: cut the standby's AZ and nothing fails over, and a game day that expects an outage waits
in vain. After earlier failovers the primaries may have moved, so `availability_zone: "primary"`
is resolved when the fault starts, from DescribeDBInstances (`AvailabilityZone` is the primary's
AZ, `SecondaryAvailabilityZone` the standby's), for a Multi-AZ DB cluster (`db_cluster_id`) from
DescribeDBClusters (`IsClusterWriter`) and its members' DescribeDBInstances, and from
DescribeReplicationGroups (`NodeGroupMembers[].CurrentRole` / `PreferredAvailabilityZone`). Only
reads; nothing changes.
"""
import logging
from typing import Dict, Optional

from chaoslib.types import Configuration, Secrets

from chaosext import settings
from chaosext.aws import aws_client
from chaosext.elasticache.probes import describe_group, roles
from chaosext.errors import ActivityError
from chaosext.rds.probes import describe_cluster, describe_instance, writer_of
from chaosext.rds.targets import cluster_members

__all__ = ["PRIMARY", "primary_zones", "resolve_zone", "node_zones"]

logger = logging.getLogger("chaostoolkit")

PRIMARY = "primary"


def primary_zones(configuration: Configuration = None, secrets: Secrets = None,
                  services=("db", "cache")) -> Dict[str, str]:
    """{"DB instance <id>": az, "DB cluster <id> writer <member>": az, "cache primary <node>": az}
    for the configured `db_instance_id`, `db_cluster_id` and `replication_group_id` (each node
    group's primary, when the group has several)."""
    zones: Dict[str, str] = {}
    db_id = settings.lookup("db_instance_id", configuration, secrets)
    if "db" in services and db_id:
        instance = describe_instance(aws_client("rds", configuration, secrets), db_id)
        zones[f"DB instance {db_id}"] = instance.get("AvailabilityZone")
    cluster_id = settings.lookup("db_cluster_id", configuration, secrets)
    if "db" in services and cluster_id:
        writer, zones_of = _cluster_zones(configuration, secrets, cluster_id)
        zones[f"DB cluster {cluster_id} writer {writer}"] = zones_of.get(writer)
    group_id = settings.lookup("replication_group_id", configuration, secrets)
    if "cache" in services and group_id:
        group = describe_group(aws_client("elasticache", configuration, secrets), group_id)
        for shard in group.get("NodeGroups", []):
            primary = roles(shard)
            if primary["node"]:
                zones[f"cache primary {primary['node']}"] = primary["az"]
    return zones


def _cluster_zones(configuration: Configuration, secrets: Secrets, cluster_id: str):
    """(the writer's id, {member: AZ}) of a DB cluster now."""
    client = aws_client("rds", configuration, secrets)
    writer = writer_of(describe_cluster(client, cluster_id))["writer"]
    return writer, {m["DBInstanceIdentifier"]: m.get("AvailabilityZone") for m in cluster_members(client, cluster_id)}


def resolve_zone(availability_zone: Optional[str], configuration: Configuration = None,
                 secrets: Secrets = None, services=("db", "cache")) -> str:
    """`availability_zone` itself, or for "primary" the one AZ that holds every primary.

    Fails, before anything is started, when the configuration names no resource to look at or
    when the primaries are in different AZs (one AZ's power loss would fail over only some)."""
    if availability_zone and availability_zone != PRIMARY:
        return availability_zone
    zones = primary_zones(configuration, secrets, services)
    if not zones:
        raise ActivityError("availability_zone 'primary' needs db_instance_id, db_cluster_id or "
                            "replication_group_id in the configuration: set them, or name the AZ")
    found = sorted(set(zones.values()), key=str)
    if len(found) != 1 or not found[0]:
        where = ", ".join(f"{name} in {az}" for name, az in sorted(zones.items()))
        raise ActivityError(f"the primaries are not in one AZ ({where}): one AZ's power "
                            "interruption would fail over only some of them; fail back first "
                            "(gameday failback RUN_DIR) or name the AZ to interrupt")
    logger.info("AZ to interrupt: %s, where %s", found[0], " and ".join(sorted(zones)))
    return found[0]


def node_zones(configuration: Configuration = None, secrets: Secrets = None) -> list:
    """Every AZ the configured DB instance (primary, standby), DB cluster members and cache
    nodes are in, sorted."""
    zones = set()
    db_id = settings.lookup("db_instance_id", configuration, secrets)
    if db_id:
        instance = describe_instance(aws_client("rds", configuration, secrets), db_id)
        zones.update(z for z in (instance.get("AvailabilityZone"), instance.get("SecondaryAvailabilityZone")) if z)
    cluster_id = settings.lookup("db_cluster_id", configuration, secrets)
    if cluster_id:
        zones.update(z for z in _cluster_zones(configuration, secrets, cluster_id)[1].values() if z)
    group_id = settings.lookup("replication_group_id", configuration, secrets)
    if group_id:
        group = describe_group(aws_client("elasticache", configuration, secrets), group_id)
        zones.update(m.get("PreferredAvailabilityZone") for shard in group.get("NodeGroups", [])
                     for m in shard.get("NodeGroupMembers", []) if m.get("PreferredAvailabilityZone"))
    return sorted(zones)
