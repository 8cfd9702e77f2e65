"""FIS target resolution over the lab's resources: ARNs, tags, resource parameters, filters.

Why: FIS "identifies all targets at the start of the experiment, before starting any of the
actions", and "if no targets are found, the experiment fails" (FIS user guide, "Targets"). The
rules implemented here, each from that page: ARNs or tags (several tags must all match; an empty
tag value matches only an empty value), resource parameters (``availabilityZoneIdentifiers``
of ``aws:rds:db``, ``availabilityZoneIdentifier`` of ``aws:elasticache:replicationgroup``),
filters as paths into the DescribeDBInstances / DescribeReplicationGroups output (filters AND,
values OR), then the selection mode ALL / COUNT(n) / PERCENT(n), chosen at random.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping

from woolab.facade import elasticache, rds, rds_cluster, vpc
from woolab.facade.common import arn
from woolab.facade.fis_catalog import selection


@dataclass
class Resource:
    """One resolved target resource: what the actions need and what GetExperiment reports."""

    resource_type: str
    id: str
    arn: str
    azs: List[str]  # the AZs it has nodes in (the primary's first)
    tags: Dict[str, str] = field(default_factory=dict)
    az: str = ""  # the AZ a resource parameter chose (interrupt-az-power)


class TargetNotResolved(Exception):
    """A target matched nothing: the experiment fails with error code ``InvalidTarget``."""


def candidates(snapshot: Mapping[str, Any], resource_type: str) -> List[tuple]:
    """(Resource, canonical describe output) for every lab resource of ``resource_type``."""
    found = []
    if resource_type == "aws:rds:db":
        for instance in snapshot["db_instances"].values():
            described = rds.db_instance(snapshot, instance)
            azs = [described["AvailabilityZone"]] + ([described["SecondaryAvailabilityZone"]]
                                                      if "SecondaryAvailabilityZone" in described else [])
            found.append((Resource(resource_type, instance["id"], described["DBInstanceArn"], azs,
                                   dict(instance.get("tags", {}))), described))
    elif resource_type == "aws:elasticache:replicationgroup":
        clusters = snapshot["cache_clusters"]
        for group in snapshot["replication_groups"].values():
            described = elasticache.replication_group(snapshot, group)
            nodes = [clusters[m] for m in described["MemberClusters"] if m in clusters]
            nodes.sort(key=lambda n: n.get("role") != "primary")
            azs = list(dict.fromkeys(n["az"] for n in nodes))
            found.append((Resource(resource_type, group["id"],
                                   arn(snapshot, "elasticache", "replicationgroup", group["id"]), azs,
                                   dict(group.get("tags", {}))), described))
    elif resource_type == "aws:ec2:subnet":
        found = [(Resource(resource_type, s["SubnetId"], s["SubnetArn"], [s["AvailabilityZone"]], dict(s["_tags"]),
                           az=s["AvailabilityZone"]), vpc.public(s)) for s in vpc.subnets(snapshot)]
    elif resource_type == "aws:ec2:instance":
        found = [(Resource(resource_type, i["InstanceId"], i["_arn"], [i["Placement"]["AvailabilityZone"]],
                           dict(i["_tags"]), az=i["Placement"]["AvailabilityZone"]), vpc.public(i))
                 for i in vpc.instances(snapshot)]
    elif resource_type == "aws:rds:cluster":
        for cluster in snapshot.get("db_clusters", {}).values():
            described = rds_cluster.db_cluster(snapshot, cluster)
            writer = cluster["nodes"][cluster["primary"]]["az"]
            azs = [writer] + [az for az in described["AvailabilityZones"] if az != writer]
            found.append((Resource(resource_type, cluster["id"], described["DBClusterArn"], azs,
                                   dict(cluster.get("tags", {}))), described))
    return found


def resolve(snapshot: Mapping[str, Any], name: str, target: Mapping[str, Any],
            rng: random.Random = random) -> List[Resource]:
    """The resources ``target`` selects now; raises ``TargetNotResolved`` when none match."""
    kind = target["resourceType"]
    pool = candidates(snapshot, kind)
    if target.get("resourceArns"):
        by_arn = {resource.arn: resource for resource, _ in pool}
        missing = [a for a in target["resourceArns"] if a not in by_arn]
        if missing:
            raise TargetNotResolved(f"Target {name}: resource {missing[0]} was not found.")
        matched = [by_arn[a] for a in target["resourceArns"]]
    else:
        wanted = target.get("resourceTags") or {}
        matched = [resource for resource, described in pool
                   if all(k in resource.tags and resource.tags[k] == v for k, v in wanted.items())
                   and all(_filter_matches(described, f) for f in target.get("filters") or [])]
    in_vpc = (target.get("parameters") or {}).get("vpc")  # aws:ec2:subnet's resource parameter
    if in_vpc:
        described_of = {resource.id: described for resource, described in pool}
        matched = [r for r in matched if described_of[r.id].get("VpcId") == in_vpc]
    matched = _apply_parameters(matched, target.get("parameters") or {})
    if not matched:
        raise TargetNotResolved(f"Target {name}: no {kind} resource matched its "
                                f"{_criteria(target)}.")
    return _select(matched, target["selectionMode"], rng)


def _apply_parameters(resources: List[Resource], parameters: Mapping[str, str]) -> List[Resource]:
    zones = parameters.get("availabilityZoneIdentifiers")
    if zones and zones.strip().lower() != "all":
        wanted = {z.strip() for z in zones.split(",")}
        resources = [r for r in resources if r.azs and r.azs[0] in wanted]  # the instance's current AZ
    writers = parameters.get("writerAvailabilityZoneIdentifiers")  # aws:rds:cluster: the writer's AZ
    if writers and writers.strip().lower() != "all":
        wanted = {z.strip() for z in writers.split(",")}
        resources = [r for r in resources if r.azs and r.azs[0] in wanted]
    zone = parameters.get("availabilityZoneIdentifier")
    if zone:
        resources = [Resource(r.resource_type, r.id, r.arn, r.azs, r.tags, az=zone)
                     for r in resources if zone in r.azs]
    return resources


def _filter_matches(described: Mapping[str, Any], item: Mapping[str, Any]) -> bool:
    """A FIS filter: a dotted PascalCase path into the describe output; any value matches."""
    values: Iterable[Any] = [described]
    for element in item["path"].split("."):
        expanded = []
        for value in values:
            value = value.get(element) if isinstance(value, Mapping) else None
            expanded.extend(value if isinstance(value, list) else [value])
        values = [v for v in expanded if v is not None]
    found = {str(v).lower() if isinstance(v, bool) else str(v) for v in values}
    return bool(found & set(item["values"]))


def _select(resources: List[Resource], mode: str, rng: random.Random) -> List[Resource]:
    how, n = selection(mode)
    if how == "ALL":
        return resources
    count = n if how == "COUNT" else math.ceil(len(resources) * n / 100)
    return rng.sample(resources, min(count, len(resources)))


def _criteria(target: Mapping[str, Any]) -> str:
    parts = []
    if target.get("resourceArns"):
        parts.append("resourceArns")
    if target.get("resourceTags"):
        parts.append("resourceTags " + ", ".join(f"{k}={v}" for k, v in target["resourceTags"].items()))
    if target.get("filters"):
        parts.append("filters")
    if target.get("parameters"):
        parts.append("parameters " + ", ".join(f"{k}={v}" for k, v in target["parameters"].items()))
    return " and ".join(parts) or "criteria"
