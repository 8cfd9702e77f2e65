"""FIS experiment templates for the failovers the pack measures (pure data, no AWS calls).

Why: the same template must run on AWS and on the lab, so the pack writes exactly what the FIS
user guide documents (pages "Actions reference", "Targets", "AZ Availability: Power
Interruption"; docs/fis.md): target resource types ``aws:rds:db``, ``aws:rds:cluster``,
``aws:elasticache:replicationgroup``; resource parameters ``availabilityZoneIdentifiers``,
``writerAvailabilityZoneIdentifiers`` and ``availabilityZoneIdentifier``; action parameters
``forceFailover`` and ``duration``. Targets are chosen by tags, as FIS does; the guardrail tag is
one of them, so FIS itself only ever selects resources that allow chaos.
"""
import json
from typing import Any, Dict, Mapping, Optional

from groundfloor.timefmt import duration_seconds

__all__ = ["target", "reboot_db_instances_template", "failover_db_cluster_template",
           "interrupt_cache_az_power_template", "az_power_interruption_template",
           "disrupt_az_connectivity_template", "az_application_slowdown_template",
           "cross_az_traffic_slowdown_template", "iso_duration", "duration_seconds"]


def target(resource_type: str, tags: Optional[Mapping[str, str]] = None,
           arns: Optional[list] = None, parameters: Optional[Mapping[str, str]] = None,
           selection_mode: str = "ALL") -> Dict[str, Any]:
    """One FIS target: by ARNs, or by tags (all must match) plus resource parameters."""
    out: Dict[str, Any] = {"resourceType": resource_type, "selectionMode": selection_mode}
    if arns:
        out["resourceArns"] = list(arns)
    else:
        out["resourceTags"] = dict(tags or {})
    if parameters:
        out["parameters"] = dict(parameters)
    return out


def _template(description: str, targets: Dict[str, Any], actions: Dict[str, Any],
              skip_empty: bool = False) -> Dict[str, Any]:
    template = {"description": description, "targets": targets, "actions": actions,
                "stopConditions": [{"source": "none"}]}
    if skip_empty:
        template["experimentOptions"] = {"emptyTargetResolutionMode": "skip"}
    return template


def reboot_db_instances_template(tags: Mapping[str, str], force_failover: bool = True,
                                 availability_zone: Optional[str] = None,
                                 arns: Optional[list] = None) -> Dict[str, Any]:
    """aws:rds:reboot-db-instances on the tagged (or named) DB instances, optionally in one AZ."""
    parameters = {"availabilityZoneIdentifiers": availability_zone} if availability_zone else None
    return _template(
        "Reboot DB instances" + (" with failover" if force_failover else ""),
        {"DBInstances": target("aws:rds:db", tags, arns, parameters)},
        {"RebootDBInstances": {"actionId": "aws:rds:reboot-db-instances",
                               "parameters": {"forceFailover": str(bool(force_failover)).lower()},
                               "targets": {"DBInstances": "DBInstances"}}})


def failover_db_cluster_template(tags: Mapping[str, str], writer_availability_zone: Optional[str] = None,
                                 arns: Optional[list] = None, cluster_id: Optional[str] = None) -> Dict[str, Any]:
    """aws:rds:failover-db-cluster on the tagged (or named) DB clusters; with ``cluster_id``,
    only the tagged cluster of that id (a filter on DBClusterIdentifier, a path into the
    DescribeDBClusters output as the Targets page describes filters), so one tag shared by
    several clusters cannot widen the blast radius."""
    parameters = ({"writerAvailabilityZoneIdentifiers": writer_availability_zone}
                  if writer_availability_zone else None)
    clusters = target("aws:rds:cluster", tags, arns, parameters)
    if cluster_id and not arns:
        clusters["filters"] = [{"path": "DBClusterIdentifier", "values": [cluster_id]}]
    return _template(
        f"Fail over DB cluster {cluster_id}" if cluster_id else "Fail over DB clusters",
        {"Clusters": clusters},
        {"FailoverDBClusters": {"actionId": "aws:rds:failover-db-cluster",
                                "targets": {"Clusters": "Clusters"}}})


def interrupt_cache_az_power_template(tags: Mapping[str, str], availability_zone: str,
                                      duration: str = "PT1M", arns: Optional[list] = None) -> Dict[str, Any]:
    """aws:elasticache:replicationgroup-interrupt-az-power for ``duration`` in one AZ."""
    return _template(
        f"Interrupt ElastiCache power in {availability_zone} for {duration}",
        {"ReplicationGroups": target("aws:elasticache:replicationgroup", tags, arns,
                                     {"availabilityZoneIdentifier": availability_zone})},
        {"InterruptAzPower": {"actionId": "aws:elasticache:replicationgroup-interrupt-az-power",
                              "parameters": {"duration": duration},
                              "targets": {"ReplicationGroups": "ReplicationGroups"}}})


def az_power_interruption_template(tags: Mapping[str, str], availability_zone: str,
                                   duration: str = "PT1M", include_db_clusters: bool = True
                                   ) -> Dict[str, Any]:
    """The database and cache part of FIS's "AZ Availability: Power Interruption" scenario.

    All actions start together: Multi-AZ DB instances in the AZ fail over (reboot with
    ``forceFailover``), DB clusters whose writer is in the AZ fail over, and the replication
    groups' nodes in the AZ lose power for ``duration``. As in the scenario, an action whose
    targets match nothing is skipped (``emptyTargetResolutionMode: skip``).
    """
    db = reboot_db_instances_template(tags, True, availability_zone)
    cache = interrupt_cache_az_power_template(tags, availability_zone, duration)
    targets = {**db["targets"], **cache["targets"]}
    actions = {**db["actions"], **cache["actions"]}
    if include_db_clusters:
        cluster = failover_db_cluster_template(tags, availability_zone)
        targets.update(cluster["targets"])
        actions.update(cluster["actions"])
    return _template(f"AZ power interruption: {availability_zone} for {duration} (RDS, ElastiCache)",
                     targets, actions, skip_empty=True)


# --------------------------------------------------------------------------- network actions
# "AZ: Application Slowdown" and "Cross-AZ: Traffic Slowdown" run AWS's SSM documents on the
# tagged EC2 instances of the chosen AZ (FIS user guide, scenario pages); subnets are cut with
# aws:network:disrupt-connectivity (actions reference). docs/fis.md, "Network actions".
LATENCY_DOCUMENT = "AWSFIS-Run-Network-Latency-Sources"
LOSS_DOCUMENT = "AWSFIS-Run-Network-Packet-Loss-Sources"


def iso_duration(seconds: float) -> str:
    """Seconds -> ISO-8601 ``PT…S``; FIS actions last at least one minute (PT1M)."""
    return f"PT{max(60, int(-(-float(seconds) // 1)))}S"


def disrupt_az_connectivity_template(tags: Mapping[str, str], availability_zone: str,
                                     duration: str = "PT1M", scope: str = "all") -> Dict[str, Any]:
    """aws:network:disrupt-connectivity on the tagged subnets of one AZ for ``duration``."""
    return _template(
        f"Disrupt connectivity ({scope}) of the subnets in {availability_zone} for {duration}",
        {"Subnets": target("aws:ec2:subnet", tags, parameters={"availabilityZoneIdentifier": availability_zone})},
        {"DisruptConnectivity": {"actionId": "aws:network:disrupt-connectivity",
                                 "parameters": {"duration": duration, "scope": scope},
                                 "targets": {"Subnets": "Subnets"}}})


def _instances_in(tags: Mapping[str, str], availability_zone: str) -> Dict[str, Any]:
    found = target("aws:ec2:instance", tags)
    found["filters"] = [{"path": "Placement.AvailabilityZone", "values": [availability_zone]},
                        {"path": "State.Name", "values": ["running"]}]
    return found


def _send_command(region: str, document: str, parameters: Mapping[str, Any], seconds: float) -> Dict[str, Any]:
    return {"actionId": "aws:ssm:send-command",
            "parameters": {"documentArn": f"arn:aws:ssm:{region}::document/{document}",
                           "documentParameters": json.dumps({k: str(v) for k, v in parameters.items()}),
                           "duration": iso_duration(seconds)},
            "targets": {"Instances": "Instances"}}


def az_application_slowdown_template(tags: Mapping[str, str], availability_zone: str, region: str,
                                     delay_ms: int = 200, duration_seconds: int = 1800,
                                     jitter_ms: int = 0) -> Dict[str, Any]:
    """The EC2 part of "AZ: Application Slowdown": latency on the flows of the tagged instances
    in the AZ toward that same AZ (defaults: 200 ms on 100 % of flows for 30 min)."""
    parameters = {"DelayMilliseconds": delay_ms, "JitterMilliseconds": jitter_ms, "Sources": availability_zone,
                  "TrafficType": "egress", "FlowsPercent": 100, "DurationSeconds": duration_seconds,
                  "InstallDependencies": "True"}
    return _template(f"AZ application slowdown: {delay_ms} ms in {availability_zone} for {duration_seconds} s",
                     {"Instances": _instances_in(tags, availability_zone)},
                     {"LatencyForEC2": _send_command(region, LATENCY_DOCUMENT, parameters, duration_seconds)},
                     skip_empty=True)


def cross_az_traffic_slowdown_template(tags: Mapping[str, str], availability_zone: str, region: str,
                                       other_zones: list, loss_percent: int = 15,
                                       duration_seconds: int = 1800) -> Dict[str, Any]:
    """The EC2 part of "Cross-AZ: Traffic Slowdown": packet loss on the flows of the tagged
    instances in the AZ toward the other AZs (defaults: 15 % on 100 % of flows for 30 min)."""
    parameters = {"LossPercent": loss_percent, "Sources": ",".join(other_zones), "TrafficType": "egress",
                  "FlowsPercent": 100, "DurationSeconds": duration_seconds, "InstallDependencies": "True"}
    return _template(f"Cross-AZ traffic slowdown: {loss_percent} % loss from {availability_zone} "
                     f"for {duration_seconds} s",
                     {"Instances": _instances_in(tags, availability_zone)},
                     {"PacketLossForEC2": _send_command(region, LOSS_DOCUMENT, parameters, duration_seconds)},
                     skip_empty=True)
