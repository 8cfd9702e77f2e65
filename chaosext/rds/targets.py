"""The RDS resource a fault will act on, read and checked before anything changes.

Why: a Multi-AZ DB instance and a Multi-AZ DB cluster fail over through different calls
(RebootDBInstance with ForceFailover, FailoverDBCluster; RDS API reference), and their ids live
in separate namespaces. An experiment for one kind aimed at the other must be refused with a
line that names the right experiment, not with a bare "not found". The cluster's members come
from DescribeDBInstances (filter `db-cluster-id`), the only call that gives each member's AZ.
Only Describe/List calls; nothing is changed here.
"""
from typing import Any, Dict, List, Optional, Tuple

from chaoslib.types import Configuration

from chaosext import guardrails
from chaosext.aws import aws_call
from chaosext.errors import ActivityError, GuardrailRefused
from chaosext.rds.probes import cluster_target, describe_cluster, describe_instance, instance_target

__all__ = ["cluster_members", "cluster_of", "instance_of", "checked_cluster", "checked_instance"]

CLUSTER_NOT_FOUND = "DBClusterNotFoundFault"
INSTANCE_NOT_FOUND = "DBInstanceNotFound"


def cluster_members(client, db_cluster_identifier: str) -> List[Dict[str, Any]]:
    """The cluster's DB instances (writer and readers) with their AZs and statuses."""
    answer = aws_call(client, "describe_db_instances", f"the members of DB cluster {db_cluster_identifier}",
                      Filters=[{"Name": "db-cluster-id", "Values": [db_cluster_identifier]}])
    return list(answer.get("DBInstances") or [])


def _found(lookup, client, name: str) -> Optional[Dict[str, Any]]:
    """The other kind of resource with this id, or None; any refusal (not found, access denied)
    counts as none, so the caller reports its own "not found"."""
    try:
        return lookup(client, name)
    except ActivityError:
        return None


def cluster_of(client, name: str, action: str) -> Dict[str, Any]:
    """DescribeDBClusters of `name`; an instance's id is refused naming the right experiment."""
    try:
        return describe_cluster(client, name)
    except ActivityError as exc:
        instance = _found(describe_instance, client, name) if exc.code == CLUSTER_NOT_FOUND else None
        if instance is None:
            raise
    owner = instance.get("DBClusterIdentifier")
    fix = (f"it is a member of DB cluster {owner}: name the cluster" if owner else
           "fail it over with RebootDBInstance(ForceFailover): the experiment rds-force-failover")
    raise GuardrailRefused(f"{action} on DB cluster {name} refused: {name} is a DB instance, not a "
                           f"DB cluster ({fix}); nothing was changed")


def instance_of(client, name: str, action: str) -> Dict[str, Any]:
    """DescribeDBInstances of `name`; a cluster's id is refused naming the right experiment."""
    try:
        return describe_instance(client, name)
    except ActivityError as exc:
        if exc.code != INSTANCE_NOT_FOUND or _found(describe_cluster, client, name) is None:
            raise
    raise GuardrailRefused(f"{action} on DB instance {name} refused: {name} is a DB cluster, not a "
                           "DB instance (fail it over with FailoverDBCluster: the experiment "
                           "rds-cluster-failover); nothing was changed")


def checked_cluster(client, name: str, action: str, configuration: Configuration = None,
                    target_instance: str = None) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """The cluster and its members, once the tag, allow-list, region and account guardrails and
    the failover readiness (available, a reader, two AZs) passed; else GuardrailRefused."""
    cluster = cluster_of(client, name, action)
    guardrails.check_target(cluster_target(client, cluster), action, configuration)
    members = cluster_members(client, name)
    guardrails.require_cluster_ready(cluster, members, target_instance, action)
    return cluster, members


def checked_instance(client, name: str, action: str, configuration: Configuration = None) -> Dict[str, Any]:
    """The Multi-AZ DB instance, once the guardrails passed and it is not a cluster member."""
    instance = instance_of(client, name, action)
    guardrails.check_target(instance_target(client, instance), action, configuration)
    guardrails.require_not_cluster_member(instance, action)
    guardrails.require_multi_az(instance, action)
    return instance
