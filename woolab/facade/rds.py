"""RDS (API 2014-10-31) operations over the lab: DB instances, reboot/failover, events, tags.

Each handler takes ``(lab, params)`` (params parsed per botocore's input shape) and returns an
output dict per the output shape; refusals raise the error RDS would send. Ids come from the
lab's snapshot, never from constants.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping

from woolab.errors import LabInvalidState, LabNotFound
from woolab.facade import vpc
from woolab.facade.common import arn, page, query_events, split_arn, tag_list, tags_from_list
from woolab.facade import rds_cluster
from woolab.facade.protocol import AwsError, model_error

SERVICE = "rds"
SOURCE_TYPES = ("db-instance", "db-cluster")
ARN_KINDS = {"db-instance": "db", "db-cluster": "cluster"}


def _error(name: str, message: str) -> AwsError:
    return model_error(SERVICE, name, message)


def _not_found(instance_id: str) -> AwsError:
    return _error("DBInstanceNotFoundFault", f"DBInstance {instance_id} not found.")


def _instance(snapshot: Mapping[str, Any], instance_id: str) -> Dict[str, Any]:
    instance = snapshot["db_instances"].get(instance_id)
    if instance is None:
        raise _not_found(instance_id)
    return instance


def db_instance(snapshot: Mapping[str, Any], instance: Mapping[str, Any]) -> Dict[str, Any]:
    """A lab DB instance as the RDS ``DBInstance`` structure."""
    nodes = instance["nodes"]
    primary_az = nodes[instance["primary"]]["az"]
    standby = instance.get("standby")
    out = {
        "DBInstanceIdentifier": instance["id"],
        "DBInstanceClass": instance.get("instance_class", "db.lab.small"),
        "Engine": instance["engine"],
        "EngineVersion": instance["engine_version"],
        "DBInstanceStatus": instance["status"],
        "MasterUsername": instance.get("master_username", "admin"),
        "DBName": instance.get("db_name"),
        "Endpoint": {"Address": instance["endpoint"]["address"], "Port": instance["endpoint"]["port"]},
        "AllocatedStorage": 20,
        "InstanceCreateTime": instance.get("created_at"),
        "AvailabilityZone": primary_az,
        "MultiAZ": bool(instance["multi_az"]),
        "PubliclyAccessible": False,
        "StorageType": "gp3",
        "StorageEncrypted": False,
        "AutoMinorVersionUpgrade": True,
        "BackupRetentionPeriod": 1,
        "DeletionProtection": False,
        "IAMDatabaseAuthenticationEnabled": False,
        "CopyTagsToSnapshot": False,
        "LicenseModel": "general-public-license",
        "DbInstancePort": 0,
        "ReadReplicaDBInstanceIdentifiers": [],
        "DbiResourceId": "db-" + instance["id"].upper().replace("-", ""),
        "DBInstanceArn": arn(snapshot, SERVICE, "db", instance["id"]),
        "TagList": tag_list(instance.get("tags", {})),
        "DBSubnetGroup": vpc.db_subnet_group(snapshot),
    }
    if instance["multi_az"] and standby:
        out["SecondaryAvailabilityZone"] = nodes[standby]["az"]
    ca = instance.get("ca_certificate")
    if ca:  # an encrypted lab: the CA that signed the server certificate (docs/encrypted-lab.md)
        out["CACertificateIdentifier"] = ca["id"]
        out["CertificateDetails"] = {"CAIdentifier": ca["id"], "ValidTill": ca["valid_till"]}
    return out


def describe_db_instances(lab, params):
    """The DB instances, and the members of DB clusters (each a DB instance on AWS)."""
    snapshot = lab.snapshot()
    described = {key: db_instance(snapshot, value) for key, value in snapshot["db_instances"].items()}
    described.update(rds_cluster.members(snapshot))
    if "DBInstanceIdentifier" in params:
        if params["DBInstanceIdentifier"] not in described:
            raise _not_found(params["DBInstanceIdentifier"])
        selected = [described[params["DBInstanceIdentifier"]]]
    else:
        selected = [described[key] for key in sorted(described)]
    selected = [i for i in selected if _matches_filters(snapshot, i, params.get("Filters", []))]
    items, marker = page(selected, params)
    out = {"DBInstances": items}
    if marker:
        out["Marker"] = marker
    return out


def _matches_filters(snapshot, instance, filters) -> bool:
    """The DescribeDBInstances filters that make sense for the lab: db-instance-id, engine."""
    for item in filters:
        name, values = item["Name"], item.get("Values", [])
        if name == "db-instance-id":
            ids = {instance["DBInstanceIdentifier"], instance["DBInstanceArn"]}
            if not ids & set(values):
                return False
        elif name == "db-cluster-id":
            cluster = instance.get("DBClusterIdentifier")
            if cluster is None or not {cluster, arn(snapshot, SERVICE, "cluster", cluster)} & set(values):
                return False
        elif name == "engine":
            if instance["Engine"] not in values:
                return False
        else:
            raise AwsError("InvalidParameterValue", f"Unrecognized filter name: {name}.")
    return True


def reboot_db_instance(lab, params):
    instance_id = params["DBInstanceIdentifier"]
    instance = _instance(lab.snapshot(), instance_id)
    force = params.get("ForceFailover", False)
    if force and not instance["multi_az"]:
        # RDS API reference, RebootDBInstance.ForceFailover: "You can't specify true if the
        # instance isn't configured for Multi-AZ" -> the common error InvalidParameterCombination.
        raise AwsError("InvalidParameterCombination",
                       f"Cannot force a failover of DB instance {instance_id}: it is not a Multi-AZ instance.")
    if instance["status"] != "available":
        raise _invalid_state(instance_id)
    try:
        lab.start_db_reboot(instance_id, force)
    except LabNotFound:
        raise _not_found(instance_id) from None
    except LabInvalidState as exc:
        raise _invalid_state(instance_id, str(exc)) from None
    snapshot = lab.snapshot()
    return {"DBInstance": db_instance(snapshot, _instance(snapshot, instance_id))}


def _invalid_state(instance_id: str, detail: str = "") -> AwsError:
    """AWS's refusal; the lab adds why, and how long to wait, when it knows."""
    message = f"DB instance {instance_id} is not in available state."
    return _error("InvalidDBInstanceStateFault", f"{message} {detail}" if detail else message)


def describe_events(lab, params):
    snapshot = lab.snapshot()
    categories = set(params.get("EventCategories", []))
    events = [e for e in query_events(lab, params, SOURCE_TYPES)
              if not categories or categories & set(e.get("categories", []))]
    items, marker = page(events, params)
    out = {"Events": [{
        "SourceIdentifier": e["source_id"],
        "SourceType": e["source_type"],
        "Message": e["message"],
        "EventCategories": list(e.get("categories", [])),
        "Date": e["time"],
        "SourceArn": arn(snapshot, SERVICE, ARN_KINDS.get(e["source_type"], "db"), e["source_id"]),
    } for e in items]}
    if marker:
        out["Marker"] = marker
    return out


def _tagged_instance(snapshot, resource_name: str) -> Dict[str, Any]:
    """The DB instance or DB cluster an ARN names; other RDS resource kinds do not exist in the lab."""
    try:
        kind, resource_id = split_arn(snapshot, SERVICE, resource_name)
    except ValueError:
        raise AwsError("InvalidParameterValue", f"Invalid resource name: {resource_name}") from None
    if kind == "":  # another region's or account's resource
        raise _not_found(resource_id)
    if kind == "db":
        return _instance(snapshot, resource_id)
    if kind == "cluster":
        return dict(rds_cluster.find_cluster(snapshot, resource_id), kind="cluster")
    missing = {"snapshot": ("DBSnapshotNotFoundFault", "DBSnapshot")}.get(kind)
    if missing:
        raise _error(missing[0], f"{missing[1]} {resource_id} not found.")
    raise AwsError("InvalidParameterValue", f"Invalid resource name: {resource_name}")


def list_tags_for_resource(lab, params):
    instance = _tagged_instance(lab.snapshot(), params["ResourceName"])
    return {"TagList": tag_list(instance.get("tags", {}))}


def add_tags_to_resource(lab, params):
    instance = _tagged_instance(lab.snapshot(), params["ResourceName"])
    tags = dict(instance.get("tags", {}))
    tags.update(tags_from_list(params.get("Tags", [])))
    _mutate_tags(lambda: lab.set_tags(instance.get("kind", "db"), instance["id"], tags), instance["id"])
    return None


def remove_tags_from_resource(lab, params):
    instance = _tagged_instance(lab.snapshot(), params["ResourceName"])
    _mutate_tags(lambda: lab.remove_tags(instance.get("kind", "db"), instance["id"], list(params.get("TagKeys", []))),
                 instance["id"])
    return None


def _mutate_tags(call: Callable[[], None], instance_id: str) -> None:
    try:
        call()
    except LabNotFound:
        raise _not_found(instance_id) from None


OPERATIONS: Dict[str, Callable] = {
    "DescribeDBInstances": describe_db_instances,
    "RebootDBInstance": reboot_db_instance,
    "DescribeEvents": describe_events,
    "ListTagsForResource": list_tags_for_resource,
    "AddTagsToResource": add_tags_to_resource,
    "RemoveTagsFromResource": remove_tags_from_resource,
    **rds_cluster.OPERATIONS,
}
