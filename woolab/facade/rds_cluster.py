"""RDS (API 2014-10-31) Multi-AZ DB cluster operations over the lab: DescribeDBClusters, the
members in DescribeDBInstances, FailoverDBCluster.

Shapes follow botocore's RDS model (``DBCluster``, ``DBClusterMember``, ``DBInstance``); the
errors are those the model lists for FailoverDBCluster: ``DBClusterNotFoundFault``,
``InvalidDBClusterStateFault`` (the cluster is not `available`) and ``InvalidDBInstanceState``
(the target is not an available reader of the cluster). The lab runs MariaDB; AWS offers
Multi-AZ DB clusters for MySQL and PostgreSQL, so the cluster and its members report engine
`mysql` (docs/db-cluster.md).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

from woolab.errors import LabInvalidState, LabNotFound
from woolab.facade.common import arn, page, tag_list
from woolab.facade.protocol import AwsError, model_error

SERVICE = "rds"
ENGINE = "mysql"
MEMBER_STATUS = {"available": "available", "rebuilding": "rebooting", "failed": "failed"}


def _error(name: str, message: str) -> AwsError:
    return model_error(SERVICE, name, message)


def cluster_not_found(cluster_id: str) -> AwsError:
    return _error("DBClusterNotFoundFault", f"DBCluster {cluster_id} not found.")


def find_cluster(snapshot: Mapping[str, Any], cluster_id: str) -> Dict[str, Any]:
    cluster = snapshot.get("db_clusters", {}).get(cluster_id)
    if cluster is None:
        raise cluster_not_found(cluster_id)
    return cluster


def db_cluster(snapshot: Mapping[str, Any], cluster: Mapping[str, Any]) -> Dict[str, Any]:
    """A lab DB cluster as the RDS ``DBCluster`` structure."""
    nodes = cluster["nodes"]
    return {
        "DBClusterIdentifier": cluster["id"],
        "DBClusterArn": arn(snapshot, SERVICE, "cluster", cluster["id"]),
        "DbClusterResourceId": "cluster-" + cluster["id"].upper().replace("-", ""),
        "Status": cluster["status"],
        "Engine": ENGINE,
        "EngineVersion": cluster["engine_version"],
        "Endpoint": cluster["endpoint"]["address"],
        "ReaderEndpoint": cluster["reader_endpoint"]["address"],
        "Port": cluster["endpoint"]["port"],
        "MultiAZ": True,
        "AvailabilityZones": sorted({node["az"] for node in nodes.values()}),
        "DBClusterMembers": [{"DBInstanceIdentifier": name, "IsClusterWriter": name == cluster["primary"],
                              "DBClusterParameterGroupStatus": "in-sync", "PromotionTier": 1}
                             for name in sorted(nodes)],
        "DatabaseName": cluster.get("db_name"),
        "MasterUsername": cluster.get("master_username", "admin"),
        "DBClusterInstanceClass": cluster.get("instance_class", "db.lab.small"),
        "ClusterCreateTime": cluster.get("created_at"),
        "AllocatedStorage": 100,
        "StorageType": "io1",
        "StorageEncrypted": False,
        "DeletionProtection": False,
        "IAMDatabaseAuthenticationEnabled": False,
        "PubliclyAccessible": False,
        "TagList": tag_list(cluster.get("tags", {})),
    }


def member_instance(snapshot: Mapping[str, Any], cluster: Mapping[str, Any], name: str) -> Dict[str, Any]:
    """One member of a lab DB cluster as the RDS ``DBInstance`` structure."""
    node = cluster["nodes"][name]
    return {
        "DBInstanceIdentifier": name,
        "DBClusterIdentifier": cluster["id"],
        "DBInstanceClass": cluster.get("instance_class", "db.lab.small"),
        "Engine": ENGINE,
        "EngineVersion": cluster["engine_version"],
        "DBInstanceStatus": MEMBER_STATUS.get(node["status"], node["status"]),
        "MasterUsername": cluster.get("master_username", "admin"),
        "DBName": cluster.get("db_name"),
        "Endpoint": {"Address": cluster["member_endpoints"][name], "Port": node["port"]},
        "AvailabilityZone": node["az"],
        "MultiAZ": False,
        "PubliclyAccessible": False,
        "StorageType": "io1",
        "InstanceCreateTime": cluster.get("created_at"),
        "DbiResourceId": "db-" + name.upper().replace("-", ""),
        "DBInstanceArn": arn(snapshot, SERVICE, "db", name),
        "TagList": tag_list(cluster.get("tags", {})),
    }


def members(snapshot: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
    """Every cluster member by instance id, as ``DBInstance`` structures."""
    return {name: member_instance(snapshot, cluster, name)
            for cluster in snapshot.get("db_clusters", {}).values() for name in cluster["nodes"]}


def describe_db_clusters(lab, params):
    snapshot = lab.snapshot()
    clusters = snapshot.get("db_clusters", {})
    if "DBClusterIdentifier" in params:
        selected = [find_cluster(snapshot, params["DBClusterIdentifier"])]
    else:
        selected = [clusters[key] for key in sorted(clusters)]
    selected = [c for c in selected if _matches_filters(snapshot, c, params.get("Filters", []))]
    items, marker = page(selected, params)
    out = {"DBClusters": [db_cluster(snapshot, c) for c in items]}
    if marker:
        out["Marker"] = marker
    return out


def _matches_filters(snapshot, cluster, filters: List[Mapping[str, Any]]) -> bool:
    """The DescribeDBClusters filters that make sense for the lab: db-cluster-id, engine."""
    for item in filters:
        name, values = item["Name"], set(item.get("Values", []))
        if name == "db-cluster-id":
            if not {cluster["id"], arn(snapshot, SERVICE, "cluster", cluster["id"])} & values:
                return False
        elif name == "engine":
            if ENGINE not in values:
                return False
        else:
            raise AwsError("InvalidParameterValue", f"Unrecognized filter name: {name}.")
    return True


def failover_db_cluster(lab, params):
    cluster_id = params["DBClusterIdentifier"]
    target = params.get("TargetDBInstanceIdentifier")
    cluster = find_cluster(lab.snapshot(), cluster_id)
    if cluster["status"] != "available":
        raise _error("InvalidDBClusterStateFault", f"DbCluster {cluster_id} is not in available state.")
    try:
        lab.start_db_cluster_failover(cluster_id, target)
    except LabNotFound as exc:  # the target is not a reader of this cluster
        if target:
            raise _error("InvalidDBInstanceStateFault", str(exc)) from None
        raise cluster_not_found(cluster_id) from None
    except LabInvalidState as exc:
        fault = "InvalidDBInstanceStateFault" if target and "reader" in str(exc) else "InvalidDBClusterStateFault"
        raise _error(fault, str(exc)) from None
    snapshot = lab.snapshot()
    return {"DBCluster": db_cluster(snapshot, find_cluster(snapshot, cluster_id))}


OPERATIONS = {
    "DescribeDBClusters": describe_db_clusters,
    "FailoverDBCluster": failover_db_cluster,
}
