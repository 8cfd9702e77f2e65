"""ElastiCache fault actions: primary loss (TestFailover or primary deletion) and its rollback.

Each checks the guardrails before any mutating call, honours dry runs and (with `wait`) returns
the fault result once the node group is `available` with a new primary and, when `redis_host`
is configured, once the Redis endpoint takes writes again (the data-plane RTO). Without a
`timeout`, a failover waits twice its configured RTO threshold and `restore_replicas` waits
`redundancy_timeout_seconds` (chaosext.thresholds).
"""
import logging
import re
from typing import Any, Dict, Optional

from chaoslib.types import Configuration, Secrets

from chaosext import guardrails
from chaosext.aws import aws_call, aws_client
from chaosext.elasticache.probes import describe_group, group_events, group_target, node_group, roles
from chaosext.errors import ActivityError
from chaosext.fault_model import spec
from chaosext.recovery import Fault, dry_run_result, run_fault

__all__ = ["test_failover", "delete_primary_node", "restore_replicas"]

logger = logging.getLogger("chaostoolkit")

# DeleteCacheCluster refusals after which TestFailover is the documented way to lose the primary.
DELETE_REFUSALS = {"InvalidCacheClusterState", "InvalidReplicationGroupState",
                   "InvalidParameterValue", "InvalidParameterCombination"}
# IncreaseReplicaCount refusals after which CreateCacheCluster(ReplicationGroupId) is tried.
INCREASE_REFUSALS = {"InvalidAction", "InvalidParameterValue", "InvalidParameterCombination"}


class PrimaryLoss:
    """What test_failover and delete_primary_node share: checks, state, waiting condition."""

    def __init__(self, replication_group_id, node_group_id, action, configuration, secrets):
        self.client = aws_client("elasticache", configuration, secrets)
        self.group_id = replication_group_id
        group = describe_group(self.client, replication_group_id)
        shard = node_group(group, node_group_id)
        guardrails.check_target(group_target(self.client, group), action, configuration)
        guardrails.require_cache_failover_ready(group, shard, action)
        self.group = group
        self.before = roles(shard)
        self.node_group_id = self.before["node_group"]

    def test_failover(self) -> None:
        aws_call(self.client, "test_failover", f"replication group {self.group_id}",
                 ReplicationGroupId=self.group_id, NodeGroupId=self.node_group_id)

    def poll(self):
        group = describe_group(self.client, self.group_id)
        now = roles(node_group(group, self.node_group_id))
        now["group_status"] = group_status = group["Status"]
        moved = now["node"] not in (None, self.before["node"])
        return group_status == "available" and now["status"] == "available" and moved, now

    def events(self, since: float):
        return group_events(self.client, self.group, since, extra_ids=self.before["replicas"])

    def fault(self, name: str, method: str, inject) -> Fault:
        return Fault(spec(name), self.group_id, method, self.before, inject, self.poll,
                     self.events)


def test_failover(replication_group_id: str, node_group_id: Optional[str] = None,
                  wait: bool = True, timeout: Optional[float] = None, poll_interval: float = 1.0,
                  measure_data_plane: bool = True, dry_run: Optional[bool] = None,
                  configuration: Configuration = None, secrets: Secrets = None
                  ) -> Dict[str, Any]:
    """Make the node group's primary fail (TestFailover), so ElastiCache promotes a replica.

    `node_group_id` may be omitted when the group has a single node group. Refuses (changing
    nothing) without automatic failover, without a replica, or when the tag, region or account
    guardrails fail. With `wait`, returns once the group is `available` with a new primary:
    timestamps, primary node/AZ before and after and the ElastiCache events.
    """
    loss = PrimaryLoss(replication_group_id, node_group_id, "TestFailover", configuration,
                        secrets)
    fault = loss.fault("elasticache-test-failover", "TestFailover", loss.test_failover)
    if guardrails.is_dry_run(configuration, dry_run):
        return dry_run_result(fault, f"would call TestFailover on node group "
                              f"{loss.node_group_id} of {replication_group_id}, failing primary "
                              f"{loss.before['node']} over to one of {loss.before['replicas']}")
    return run_fault(fault, wait, timeout, poll_interval, measure_data_plane, configuration,
                     secrets)


def delete_primary_node(replication_group_id: str, node_group_id: Optional[str] = None,
                        fallback_to_test_failover: bool = True, wait: bool = True,
                        timeout: Optional[float] = None, poll_interval: float = 1.0,
                        measure_data_plane: bool = True, dry_run: Optional[bool] = None,
                        configuration: Configuration = None, secrets: Secrets = None
                        ) -> Dict[str, Any]:
    """Delete the node group's primary node (DeleteCacheCluster), so a replica is promoted.

    AWS documents DeleteCacheCluster as invalid for the primary of a replication group; when it
    is refused, this falls back (unless `fallback_to_test_failover` is false) to TestFailover on
    the same node group, and the result says which method ran (`method`) and why
    (`method_reason`). Same guardrails and waiting as `test_failover`; a deleted primary is
    gone afterwards, so pair this with the `restore_replicas` rollback.
    """
    loss = PrimaryLoss(replication_group_id, node_group_id, "DeleteCacheCluster",
                        configuration, secrets)
    primary = loss.before["node"]

    def inject() -> None:
        try:
            aws_call(loss.client, "delete_cache_cluster", f"primary node {primary}",
                     CacheClusterId=primary)
            fault.extra = {"requested_method": "DeleteCacheCluster", "method_reason": None}
        except ActivityError as refusal:
            if not fallback_to_test_failover or refusal.code not in DELETE_REFUSALS:
                raise
            logger.warning("%s; falling back to TestFailover", refusal)
            loss.test_failover()
            fault.method = "TestFailover"
            fault.extra = {"requested_method": "DeleteCacheCluster",
                           "method_reason": f"{refusal} — fell back to TestFailover, the "
                                            "supported way to lose a primary"}

    fault = loss.fault("elasticache-primary-deletion", "DeleteCacheCluster", inject)
    if guardrails.is_dry_run(configuration, dry_run):
        fallback = " (TestFailover if AWS refuses)" if fallback_to_test_failover else ""
        return dry_run_result(fault, f"would delete primary node {primary} of node group "
                              f"{loss.node_group_id} of {replication_group_id}{fallback}")
    return run_fault(fault, wait, timeout, poll_interval, measure_data_plane, configuration,
                     secrets)


def restore_replicas(replication_group_id: str, count: int = 1,
                     node_group_id: Optional[str] = None, method: str = "auto",
                     wait: bool = True, timeout: Optional[float] = None, poll_interval: float = 1.0,
                     dry_run: Optional[bool] = None, configuration: Configuration = None,
                     secrets: Secrets = None) -> Dict[str, Any]:
    """Add replicas to the node group until it has `count` of them again (redundancy restored).

    `method`: "increase-replica-count" (IncreaseReplicaCount), "create-cache-cluster"
    (CreateCacheCluster with ReplicationGroupId, one per missing replica) or "auto" (the first,
    then the second if the endpoint refuses it). Does nothing when enough replicas exist.
    With `wait`, returns once the group is `available` with `count` replicas.
    """
    _check_restore_method(method)
    count = int(count)
    client = aws_client("elasticache", configuration, secrets)
    group = describe_group(client, replication_group_id)
    shard = node_group(group, node_group_id)
    guardrails.check_target(group_target(client, group), "restore_replicas", configuration)
    before = roles(shard)
    missing = count - len(before["replicas"])

    def inject() -> None:
        if missing <= 0:
            return
        if method in ("auto", "increase-replica-count"):
            try:
                aws_call(client, "increase_replica_count", f"replication group "
                         f"{replication_group_id}", ReplicationGroupId=replication_group_id,
                         NewReplicaCount=count, ApplyImmediately=True)
                fault.method = "IncreaseReplicaCount"
                return
            except ActivityError as refusal:
                if method != "auto" or refusal.code not in INCREASE_REFUSALS:
                    raise
                logger.info("%s; adding replicas with CreateCacheCluster", refusal)
        for new_id in _new_node_ids(group, missing):
            aws_call(client, "create_cache_cluster", f"replication group {replication_group_id}", CacheClusterId=new_id,
                     ReplicationGroupId=replication_group_id, Tags=[guardrails.allow_tag(configuration)])
        fault.method = "CreateCacheCluster(ReplicationGroupId)"

    def poll():
        now_group = describe_group(client, replication_group_id)
        now = roles(node_group(now_group, before["node_group"]))
        now["group_status"] = now_group["Status"]
        return now_group["Status"] == "available" and len(now["replicas"]) >= count, now

    fault = Fault(spec("elasticache-restore-replicas"), replication_group_id, "none", before,
                  inject, poll, lambda since: group_events(client, group, since),
                  extra={"replicas_wanted": count}, repair=True)
    if missing <= 0:
        logger.info("%s already has %d replicas; nothing to restore", replication_group_id,
                    len(before["replicas"]))
    else:
        fault.method = {"create-cache-cluster": "CreateCacheCluster(ReplicationGroupId)"}.get(
            method, "IncreaseReplicaCount")
    if guardrails.is_dry_run(configuration, dry_run):
        return dry_run_result(fault, f"would add {max(missing, 0)} replica(s) to node group "
                              f"{before['node_group']} of {replication_group_id}")
    return run_fault(fault, wait, timeout, poll_interval, False, configuration, secrets)


def _check_restore_method(method: str) -> None:
    if method not in ("auto", "increase-replica-count", "create-cache-cluster"):
        raise ActivityError(f"unknown restore method {method!r}: use auto, "
                            "increase-replica-count or create-cache-cluster")


def _new_node_ids(group: Dict[str, Any], how_many: int):
    """Next free ids in the group's naming scheme: shop-cache-003, shop-cache-004, ..."""
    name = group["ReplicationGroupId"]
    taken = set(group.get("MemberClusters", []))
    numbers = [int(m.group(1)) for c in taken if (m := re.fullmatch(rf"{re.escape(name)}-(\d+)", c))]
    nxt = max(numbers, default=0) + 1
    ids = []
    while len(ids) < how_many:
        candidate = f"{name}-{nxt:03d}"
        if candidate not in taken:
            ids.append(candidate)
        nxt += 1
    return ids
