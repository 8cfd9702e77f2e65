"""The lab's network as AWS shows it: one VPC, one private subnet per AZ, the shop's EC2
instances, and the DB and cache subnet groups over those subnets.

Why: FIS network actions target subnets (``aws:ec2:subnet``) and compute
(``aws:ec2:instance``), chosen by tag and AZ, and the AWS CLI checks them with
``ec2 describe-subnets``, ``rds describe-db-subnet-groups`` and
``elasticache describe-cache-subnet-groups`` (docs/fis.md). Nothing here is stored: every
resource is a pure function of the lab's region, account and AZs, so the three APIs and FIS's
target resolution always agree.

The shop runs as one process, but AWS runs a shop's web tier on instances in every AZ, and the
FIS scenarios pick "the instances in the chosen AZ". So the lab shows one shop instance per AZ;
all of them are the same process (what an impairment of "the instance in us-east-1a" does to
it is in docs/fis.md, "Mapping onto the lab's network").
"""
import hashlib
from typing import Any, Dict, List, Mapping

from woolab.config import AZS

VPC_NAME = "shop-vpc"
DB_SUBNET_GROUP = "shop-db-subnets"
CACHE_SUBNET_GROUP = "shop-cache-subnets"
ALLOW_TAG = {"chaos:allowed": "true"}
#: The tags AWS's scenario library puts on the compute of "AZ: Application Slowdown" and
#: "Cross-AZ: Traffic Slowdown" (docs/aws-gray-failures.md §1), so those templates resolve here.
SCENARIO_TAGS = {"AZApplicationSlowdown": "LatencyForEC2", "CrossAZTrafficSlowdown": "PacketLossForEC2"}


def _hex(snapshot: Mapping[str, Any], *parts: str, length: int = 17) -> str:
    seed = "/".join((snapshot["account_id"], snapshot["region"]) + parts)
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def vpc_id(snapshot: Mapping[str, Any]) -> str:
    return "vpc-" + _hex(snapshot, "vpc")


def _az_id(snapshot: Mapping[str, Any], az: str) -> str:
    return f"use1-az{AZS.index(az) + 1}" if snapshot["region"] == "us-east-1" else f"{az[:-1]}-az{AZS.index(az) + 1}"


def subnets(snapshot: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """One private subnet per AZ, as EC2's ``Subnet`` structure (tags as a dict under ``_tags``)."""
    found = []
    for index, az in enumerate(AZS):
        subnet_id = "subnet-" + _hex(snapshot, "subnet", az)
        tags = {"Name": f"shop-private-{az}", **ALLOW_TAG}
        found.append({
            "SubnetId": subnet_id, "VpcId": vpc_id(snapshot), "State": "available",
            "AvailabilityZone": az, "AvailabilityZoneId": _az_id(snapshot, az),
            "CidrBlock": f"10.0.{index * 16}.0/20", "AvailableIpAddressCount": 4091,
            "DefaultForAz": False, "MapPublicIpOnLaunch": False, "OwnerId": snapshot["account_id"],
            "SubnetArn": f"arn:aws:ec2:{snapshot['region']}:{snapshot['account_id']}:subnet/{subnet_id}",
            "_tags": tags,
        })
    return found


def instances(snapshot: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The shop's web tier: one running instance per AZ, in that AZ's subnet."""
    found = []
    for subnet in subnets(snapshot):
        az = subnet["AvailabilityZone"]
        instance_id = "i-" + _hex(snapshot, "instance", az)
        tags = {"Name": f"shop-web-{az}", "app": "shop", **ALLOW_TAG, **SCENARIO_TAGS}
        found.append({
            "InstanceId": instance_id, "InstanceType": "t3.small", "ImageId": "ami-" + _hex(snapshot, "ami"),
            "State": {"Code": 16, "Name": "running"}, "SubnetId": subnet["SubnetId"],
            "VpcId": subnet["VpcId"], "Placement": {"AvailabilityZone": az, "Tenancy": "default"},
            "PrivateIpAddress": f"10.0.{AZS.index(az) * 16}.10",
            "_arn": f"arn:aws:ec2:{snapshot['region']}:{snapshot['account_id']}:instance/{instance_id}",
            "_tags": tags,
        })
    return found


def db_subnet_group(snapshot: Mapping[str, Any]) -> Dict[str, Any]:
    """RDS ``DBSubnetGroup``: every lab subnet (the DB's primary and standby AZs among them)."""
    return {
        "DBSubnetGroupName": DB_SUBNET_GROUP, "DBSubnetGroupDescription": "The shop's database subnets",
        "VpcId": vpc_id(snapshot), "SubnetGroupStatus": "Complete",
        "Subnets": [{"SubnetIdentifier": s["SubnetId"], "SubnetAvailabilityZone": {"Name": s["AvailabilityZone"]},
                     "SubnetStatus": "Active"} for s in subnets(snapshot)],
        "DBSubnetGroupArn": f"arn:aws:rds:{snapshot['region']}:{snapshot['account_id']}:subgrp:{DB_SUBNET_GROUP}",
        "SupportedNetworkTypes": ["IPV4"],
    }


def cache_subnet_group(snapshot: Mapping[str, Any]) -> Dict[str, Any]:
    """ElastiCache ``CacheSubnetGroup`` over the same subnets."""
    return {
        "CacheSubnetGroupName": CACHE_SUBNET_GROUP, "CacheSubnetGroupDescription": "The shop's cache subnets",
        "VpcId": vpc_id(snapshot),
        "Subnets": [{"SubnetIdentifier": s["SubnetId"], "SubnetAvailabilityZone": {"Name": s["AvailabilityZone"]},
                     "SupportedNetworkTypes": ["ipv4"]} for s in subnets(snapshot)],
        "ARN": f"arn:aws:elasticache:{snapshot['region']}:{snapshot['account_id']}:subnetgroup:{CACHE_SUBNET_GROUP}",
        "SupportedNetworkTypes": ["ipv4"],
    }


def public(resource: Mapping[str, Any]) -> Dict[str, Any]:
    """The resource as the API answers it: tags as EC2's ``[{Key, Value}]``, no private keys."""
    out = {k: v for k, v in resource.items() if not k.startswith("_")}
    out["Tags"] = [{"Key": k, "Value": v} for k, v in resource.get("_tags", {}).items()]
    return out
