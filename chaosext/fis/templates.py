"""FIS experiment templates for the failovers the pack measures (pure data, no AWS calls).

Why: the same template must run on AWS and on the lab, so the pack writes exactly what the FIS
user guide documents (pages "Actions reference", "Targets", "AZ Availability: Power
Interruption"; docs/fis.md): target resource types ``aws:rds:db``, ``aws:rds:cluster``,
``aws:elasticache:replicationgroup``; resource parameters ``availabilityZoneIdentifiers``,
``writerAvailabilityZoneIdentifiers`` and ``availabilityZoneIdentifier``; action parameters
``forceFailover`` and ``duration``. Targets are chosen by tags, as FIS does; the guardrail tag is
one of them, so FIS itself only ever selects resources that allow chaos.
"""
from typing import Any, Dict, Mapping, Optional

__all__ = ["target", "reboot_db_instances_template", "failover_db_cluster_template",
           "interrupt_cache_az_power_template", "az_power_interruption_template"]


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
                                 arns: Optional[list] = None) -> Dict[str, Any]:
    """aws:rds:failover-db-cluster on the tagged (or named) DB clusters."""
    parameters = ({"writerAvailabilityZoneIdentifiers": writer_availability_zone}
                  if writer_availability_zone else None)
    return _template(
        "Fail over DB clusters",
        {"Clusters": target("aws:rds:cluster", tags, arns, parameters)},
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
