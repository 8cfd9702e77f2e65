"""ElastiCache output shapes of the lab's replication groups and cache clusters.

`replication_group` and `cache_cluster` turn the lab's JSON snapshot into the dicts botocore's
output shapes expect (ReplicationGroup, CacheCluster), so the operations in
`woolab.facade.elasticache` only decide what to answer, not how it is spelled.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

from woolab.facade import vpc
from woolab.facade.common import arn

SERVICE = "elasticache"
NODE_ID = "0001"  # every lab cache cluster has one node, named as AWS names the first node


def _endpoint(address: str, port: int) -> Dict[str, Any]:
    return {"Address": address, "Port": port}


def _enabled(flag: bool) -> str:
    return "enabled" if flag else "disabled"


# --------------------------------------------------------------------------- shapes


def replication_group(snapshot, group: Mapping[str, Any]) -> Dict[str, Any]:
    """A lab replication group as the ElastiCache ``ReplicationGroup`` structure."""
    clusters = snapshot["cache_clusters"]
    node_groups = []
    members: List[str] = []
    for node_group_id in sorted(group["node_groups"]):
        node_group = group["node_groups"][node_group_id]
        # A node being created belongs to the group at once on AWS, before the lab lists it.
        creating = sorted(c["id"] for c in clusters.values()
                          if c.get("replication_group_id") == group["id"]
                          and c.get("node_group_id") == node_group_id and c["id"] not in node_group["members"])
        ids = [m for m in node_group["members"] if m in clusters] + creating
        members.extend(ids)
        node_groups.append({
            "NodeGroupId": node_group_id,
            "Status": node_group["status"],
            "PrimaryEndpoint": _endpoint(**group["primary_endpoint"]),
            "ReaderEndpoint": _endpoint(**group["reader_endpoint"]),
            "NodeGroupMembers": [_node_group_member(clusters[m]) for m in ids],
        })
    node_types = {clusters[m]["node_type"] for m in members if m in clusters}
    return {
        "ReplicationGroupId": group["id"],
        "Description": f"{group['id']} (failover-gameday lab)",
        "Status": group["status"],
        "MemberClusters": members,
        "NodeGroups": node_groups,
        "AutomaticFailover": _enabled(group["automatic_failover"]),
        "MultiAZ": _enabled(group["multi_az"]),
        "ClusterEnabled": False,
        "ClusterMode": "disabled",
        "CacheNodeType": min(node_types) if node_types else None,
        "Engine": group.get("engine", "redis"),
        "SnapshotRetentionLimit": 0,
        **_transit(group),
        "AtRestEncryptionEnabled": False,
        "AutoMinorVersionUpgrade": True,
        "DataTiering": "disabled",
        "NetworkType": "ipv4",
        "IpDiscovery": "ipv4",
        "ARN": arn(snapshot, SERVICE, "replicationgroup", group["id"]),
    }


def _transit(group: Mapping[str, Any], cluster: bool = False) -> Dict[str, Any]:
    """In-transit encryption and access control as ElastiCache reports them: an encrypted lab is
    TLS-only (TransitEncryptionMode `required`) with RBAC (a user group, so AuthTokenEnabled is
    false); a plain lab shows neither. docs/encrypted-lab.md cites the API reference."""
    if not group.get("transit_encryption"):
        return {"AuthTokenEnabled": False, "TransitEncryptionEnabled": False}
    out = {"AuthTokenEnabled": False, "TransitEncryptionEnabled": True, "TransitEncryptionMode": "required"}
    if not cluster:
        out["UserGroupIds"] = list(group.get("user_group_ids") or [])
    return out


def _node_group_member(cluster: Mapping[str, Any]) -> Dict[str, Any]:
    member = {
        "CacheClusterId": cluster["id"],
        "CacheNodeId": NODE_ID,
        "ReadEndpoint": _endpoint(cluster["address"], cluster["port"]),
        "PreferredAvailabilityZone": cluster["az"],
    }
    if cluster.get("role") in ("primary", "replica"):
        member["CurrentRole"] = cluster["role"]
    return member


def cache_cluster(snapshot, cluster: Mapping[str, Any], show_nodes: bool) -> Dict[str, Any]:
    """A lab cache node as the ElastiCache ``CacheCluster`` structure (one node)."""
    group = snapshot["replication_groups"].get(cluster.get("replication_group_id") or "", {})
    out = {
        "CacheClusterId": cluster["id"],
        "CacheNodeType": cluster.get("node_type", "cache.lab.small"),
        "Engine": group.get("engine", "redis"),
        "EngineVersion": group.get("engine_version"),
        "CacheClusterStatus": cluster["status"],
        "NumCacheNodes": 1,
        "PreferredAvailabilityZone": cluster["az"],
        "CacheClusterCreateTime": cluster.get("created_at"),
        "ReplicationGroupId": cluster.get("replication_group_id"),
        "AutoMinorVersionUpgrade": True,
        "SnapshotRetentionLimit": 0,
        **_transit(group, cluster=True),
        "AtRestEncryptionEnabled": False,
        "ReplicationGroupLogDeliveryEnabled": False,
        "NetworkType": "ipv4",
        "IpDiscovery": "ipv4",
        "CacheSubnetGroupName": vpc.CACHE_SUBNET_GROUP,
        "ARN": arn(snapshot, SERVICE, "cluster", cluster["id"]),
    }
    if show_nodes:
        out["CacheNodes"] = [{
            "CacheNodeId": NODE_ID,
            "CacheNodeStatus": cluster["status"],
            "CacheNodeCreateTime": cluster.get("created_at"),
            "Endpoint": _endpoint(cluster["address"], cluster["port"]),
            "ParameterGroupStatus": "in-sync",
            "CustomerAvailabilityZone": cluster["az"],
        }]
    return out


# --------------------------------------------------------------------------- describe
