"""ElastiCache (API 2015-02-02) operations over the lab: replication groups, cache clusters,
TestFailover, replica removal/addition, events, tags.

Each handler takes ``(lab, params)`` and returns an output dict per botocore's output shape;
refusals raise the error ElastiCache would send (codes and statuses from the model's error
shapes). A lab cache node is a single-node cache cluster (``shop-cache-001``), as in a
cluster-mode-disabled replication group on AWS.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional

from woolab.errors import LabInvalidState, LabNotFound
from woolab.facade.common import page, query_events, split_arn, tag_list, tags_from_list
from woolab.facade.elasticache_shapes import cache_cluster, replication_group
from woolab.facade.protocol import AwsError, model_error

SERVICE = "elasticache"
SOURCE_TYPES = ("cache-cluster", "replication-group")
MAX_REPLICAS = 5  # per node group, as on AWS


def _error(name: str, message: str) -> AwsError:
    return model_error(SERVICE, name, message)


def _group_not_found(group_id: str) -> AwsError:
    return _error("ReplicationGroupNotFoundFault", f"Replication group {group_id} not found.")


def _cluster_not_found(cluster_id: str) -> AwsError:
    return _error("CacheClusterNotFoundFault", f"CacheCluster not found: {cluster_id}")


def _group(snapshot, group_id: str) -> Dict[str, Any]:
    group = snapshot["replication_groups"].get(group_id)
    if group is None:
        raise _group_not_found(group_id)
    return group


def _cluster(snapshot, cluster_id: str) -> Dict[str, Any]:
    cluster = snapshot["cache_clusters"].get(cluster_id)
    if cluster is None:
        raise _cluster_not_found(cluster_id)
    return cluster


def describe_replication_groups(lab, params):
    snapshot = lab.snapshot()
    groups = snapshot["replication_groups"]
    if "ReplicationGroupId" in params:
        selected = [_group(snapshot, params["ReplicationGroupId"])]
    else:
        selected = [groups[key] for key in sorted(groups)]
    items, marker = page(selected, params)
    return _with_marker({"ReplicationGroups": [replication_group(snapshot, g) for g in items]}, marker)


def describe_cache_clusters(lab, params):
    snapshot = lab.snapshot()
    clusters = snapshot["cache_clusters"]
    if "CacheClusterId" in params:
        selected = [_cluster(snapshot, params["CacheClusterId"])]
    else:
        selected = [clusters[key] for key in sorted(clusters)]
    if params.get("ShowCacheClustersNotInReplicationGroups"):
        selected = [c for c in selected if not c.get("replication_group_id")]
    items, marker = page(selected, params)
    show = params.get("ShowCacheNodeInfo", False)
    return _with_marker({"CacheClusters": [cache_cluster(snapshot, c, show) for c in items]}, marker)


def describe_events(lab, params):
    events = query_events(lab, params, SOURCE_TYPES)
    items, marker = page(events, params)
    return _with_marker({"Events": [{
        "SourceIdentifier": e["source_id"],
        "SourceType": e["source_type"],
        "Message": e["message"],
        "Date": e["time"],
    } for e in items]}, marker)


def _with_marker(out: Dict[str, Any], marker: Optional[str]) -> Dict[str, Any]:
    if marker:
        out["Marker"] = marker
    return out


# --------------------------------------------------------------------------- failover and nodes


def test_failover(lab, params):
    group_id, node_group_id = params["ReplicationGroupId"], params["NodeGroupId"]
    snapshot = lab.snapshot()
    group = _group(snapshot, group_id)
    node_group = group["node_groups"].get(node_group_id)
    if node_group is None:
        raise _error("NodeGroupNotFoundFault",
                     f"The node group {node_group_id} was not found in replication group {group_id}.")
    _require_available(group)
    if not group["automatic_failover"]:
        raise _error("InvalidReplicationGroupStateFault",
                     f"Replication group {group_id} does not have automatic failover enabled.")
    clusters = snapshot["cache_clusters"]
    busy = [m for m in node_group["members"] if clusters.get(m, {}).get("status") != "available"]
    if busy:
        raise _error("InvalidCacheClusterStateFault",
                     f"Cache cluster {busy[0]} is not in available state.")
    if len(node_group["members"]) < 2:
        raise _error("InvalidReplicationGroupStateFault",
                     f"Node group {node_group_id} of replication group {group_id} has no replica to fail over to.")
    _call(lambda: lab.start_cache_primary_loss(group_id, node_group_id), group_id)
    after = lab.snapshot()
    return {"ReplicationGroup": replication_group(after, _group(after, group_id))}


def _require_available(group: Mapping[str, Any]) -> None:
    if group["status"] != "available":
        raise _error("InvalidReplicationGroupStateFault",
                     f"Replication group {group['id']} is not in available state (it is {group['status']}).")


def _call(mutation: Callable[[], Any], group_id: str) -> Any:
    """Run a lab mutation; a lab refusal found after our own checks becomes the AWS error."""
    try:
        return mutation()
    except LabNotFound:
        raise _group_not_found(group_id) from None
    except LabInvalidState as exc:
        raise _error("InvalidReplicationGroupStateFault", str(exc)) from None


def delete_cache_cluster(lab, params):
    cluster_id = params["CacheClusterId"]
    snapshot = lab.snapshot()
    cluster = _cluster(snapshot, cluster_id)
    if params.get("FinalSnapshotIdentifier"):
        raise AwsError("InvalidParameterValue", "The lab does not take snapshots: omit FinalSnapshotIdentifier.")
    if cluster["status"] != "available":
        raise _error("InvalidCacheClusterStateFault", f"Cache cluster {cluster_id} is not in available state.")
    group_id = cluster.get("replication_group_id")
    if group_id:
        _check_member_delete(snapshot, lab.config, cluster)
    try:
        lab.start_delete_cache_node(cluster_id)
    except LabNotFound:
        raise _cluster_not_found(cluster_id) from None
    except LabInvalidState as exc:
        raise _error("InvalidCacheClusterStateFault", str(exc)) from None
    after = lab.snapshot()
    current = after["cache_clusters"].get(cluster_id) or dict(cluster, status="deleting")
    return {"CacheCluster": cache_cluster(after, current, show_nodes=False)}


def _check_member_delete(snapshot, config, cluster) -> None:
    """AWS: DeleteCacheCluster is not valid for the primary of a replication group, nor for the
    last read replica while automatic failover is enabled (both: InvalidCacheClusterState)."""
    group = _group(snapshot, cluster["replication_group_id"])
    if cluster.get("role") == "primary":
        if getattr(config, "allow_primary_delete", False):
            return
        raise _error("InvalidCacheClusterStateFault",
                     f"Cannot delete the cache cluster {cluster['id']} because it is the primary node of "
                     f"replication group {group['id']}. Use TestFailover to fail over the primary, or "
                     f"DeleteReplicationGroup to delete the whole replication group.")
    replicas = [c for c in group["node_groups"][cluster["node_group_id"]]["members"]
                if snapshot["cache_clusters"].get(c, {}).get("role") == "replica"]
    if group["automatic_failover"] and replicas == [cluster["id"]]:
        raise _error("InvalidCacheClusterStateFault",
                     f"Cannot delete the cache cluster because it is the only read replica for replication "
                     f"group {group['id']} which has autofailover enabled or pending.")


def create_cache_cluster(lab, params):
    cluster_id = params["CacheClusterId"]
    group_id = params.get("ReplicationGroupId")
    if not group_id:
        raise AwsError("InvalidParameterCombination",
                       "The lab creates cache clusters only as read replicas: pass ReplicationGroupId.")
    snapshot = lab.snapshot()
    group = _group(snapshot, group_id)
    if cluster_id in snapshot["cache_clusters"]:
        raise _error("CacheClusterAlreadyExistsFault", f"Cache cluster {cluster_id} already exists.")
    _require_available(group)
    _check_replica_room(group, next(iter(sorted(group["node_groups"]))), 1)
    try:
        new_id = lab.start_add_cache_node(group_id, cluster_id, params.get("PreferredAvailabilityZone"))
    except LabNotFound:
        raise _group_not_found(group_id) from None
    except LabInvalidState as exc:  # state was checked above: the lab refused the id or is full
        raise _error("InvalidParameterValueException", str(exc)) from None
    tags = tags_from_list(params.get("Tags", []))
    if tags:
        lab.set_tags("cache-cluster", new_id, tags)
    after = lab.snapshot()
    return {"CacheCluster": cache_cluster(after, _cluster(after, new_id), show_nodes=False)}


def _check_replica_room(group, node_group_id: str, adding: int) -> None:
    replicas = len(group["node_groups"][node_group_id]["members"]) - 1
    if replicas + adding > MAX_REPLICAS:
        raise _error("InvalidParameterValueException",
                     f"A node group can have at most {MAX_REPLICAS} replicas.")


def increase_replica_count(lab, params):
    group_id = params["ReplicationGroupId"]
    if not params["ApplyImmediately"]:
        raise _error("InvalidParameterValueException", "ApplyImmediately=false is not supported.")
    snapshot = lab.snapshot()
    group = _group(snapshot, group_id)
    _require_available(group)
    wanted = _wanted_replicas(group, params)
    plan = []
    for node_group_id, (count, zones) in wanted.items():
        current = len(group["node_groups"][node_group_id]["members"]) - 1
        if count <= current:
            raise _error("InvalidParameterValueException",
                         f"NewReplicaCount {count} must be greater than the current replica count {current}.")
        _check_replica_room(group, node_group_id, count - current)
        # PreferredAvailabilityZones lists the primary's AZ first, then one per replica.
        plan.extend(zones[i] if i < len(zones) else None for i in range(current + 1, count + 1))
    if len(plan) > 1:
        # The lab's replication group is "modifying" while a node is added and refuses a
        # second concurrent add; one replica per call keeps the answer honest.
        raise _error("InvalidParameterValueException",
                     "The lab adds one replica per call: raise NewReplicaCount by 1 and call again "
                     "once the replication group is available.")
    for zone in plan:
        _call(lambda zone=zone: lab.start_add_cache_node(group_id, None, zone), group_id)
    after = lab.snapshot()
    return {"ReplicationGroup": replication_group(after, _group(after, group_id))}


def _wanted_replicas(group, params) -> Dict[str, tuple]:
    """NodeGroupId -> (replica count, preferred AZs) from NewReplicaCount or ReplicaConfiguration."""
    if "ReplicaConfiguration" in params:
        wanted = {}
        for shard in params["ReplicaConfiguration"]:
            if shard["NodeGroupId"] not in group["node_groups"]:
                raise _error("NodeGroupNotFoundFault",
                             f"The node group {shard['NodeGroupId']} was not found in replication group {group['id']}.")
            zones = list(shard.get("PreferredAvailabilityZones", []))
            wanted[shard["NodeGroupId"]] = (shard["NewReplicaCount"], zones)
        return wanted
    if "NewReplicaCount" in params:
        return {ng: (params["NewReplicaCount"], []) for ng in sorted(group["node_groups"])}
    raise _error("InvalidParameterCombinationException",
                 "Either NewReplicaCount or ReplicaConfiguration must be specified.")


def _tagged(snapshot, resource_name: str):
    """ARN -> (lab tag kind, resource); replication groups and cache clusters only."""
    try:
        kind, resource_id = split_arn(snapshot, SERVICE, resource_name)
    except ValueError:
        raise _error("InvalidARNFault", f"The ARN {resource_name} is not valid.") from None
    if kind == "replicationgroup":
        return "replication-group", _group(snapshot, resource_id)
    if kind == "cluster":
        return "cache-cluster", _cluster(snapshot, resource_id)
    if kind == "":  # another region's or account's resource
        raise _cluster_not_found(resource_id)
    raise _error("InvalidARNFault", f"The lab has no {kind} resources: {resource_name}")


def list_tags_for_resource(lab, params):
    _, resource = _tagged(lab.snapshot(), params["ResourceName"])
    return {"TagList": tag_list(resource.get("tags", {}))}


def add_tags_to_resource(lab, params):
    kind, resource = _tagged(lab.snapshot(), params["ResourceName"])
    tags = dict(resource.get("tags", {}))
    tags.update(tags_from_list(params["Tags"]))
    lab.set_tags(kind, resource["id"], tags)
    return list_tags_for_resource(lab, params)


def remove_tags_from_resource(lab, params):
    kind, resource = _tagged(lab.snapshot(), params["ResourceName"])
    keys = list(params["TagKeys"])
    missing = [k for k in keys if k not in resource.get("tags", {})]
    if missing:
        raise _error("TagNotFoundFault", f"Tag {missing[0]} not found on {params['ResourceName']}.")
    lab.remove_tags(kind, resource["id"], keys)
    return list_tags_for_resource(lab, params)


OPERATIONS: Dict[str, Callable] = {
    "DescribeReplicationGroups": describe_replication_groups,
    "DescribeCacheClusters": describe_cache_clusters,
    "DescribeEvents": describe_events,
    "TestFailover": test_failover,
    "DeleteCacheCluster": delete_cache_cluster,
    "CreateCacheCluster": create_cache_cluster,
    "IncreaseReplicaCount": increase_replica_count,
    "ListTagsForResource": list_tags_for_resource,
    "AddTagsToResource": add_tags_to_resource,
    "RemoveTagsFromResource": remove_tags_from_resource,
}
