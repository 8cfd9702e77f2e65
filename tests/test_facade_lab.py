"""The AWS facade against the real lab: boto3 and the AWS CLI, pointed at it only through
AWS_ENDPOINT_URL, really fail the database and the cache over. Every test leaves the lab
available with one primary and one replica, as it found it."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

pytestmark = pytest.mark.lab

AWS_CLI = str(Path(sys.executable).with_name("aws"))
FAST = {"Delay": 0.5, "MaxAttempts": 240}


@pytest.fixture
def rds(lab_env):
    return boto3.client("rds", config=Config(retries={"max_attempts": 2}))


@pytest.fixture
def ec(lab_env):
    return boto3.client("elasticache", config=Config(retries={"max_attempts": 2}))


def code_of(exc_info):
    return exc_info.value.response["Error"]["Code"], exc_info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def aws_cli(*args) -> dict:
    """Run the AWS CLI (PyPI awscli) with the lab's env; its JSON answer.

    AWS CLI v1 pins ``rds`` in us-east-1 to https://rds.amazonaws.com (its
    overridesslcommonname customization) and so ignores AWS_ENDPOINT_URL for rds only:
    there ``--endpoint-url`` is required, as for any endpoint override with CLI v1.
    """
    extra = ["--endpoint-url", os.environ["AWS_ENDPOINT_URL"]] if args[0] == "rds" else []
    done = subprocess.run([AWS_CLI, *args, *extra, "--output", "json"], env=dict(os.environ),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}


def db(rds) -> dict:
    return rds.describe_db_instances(DBInstanceIdentifier="shop-db")["DBInstances"][0]


def cache_roles(ec) -> dict:
    group = ec.describe_replication_groups(ReplicationGroupId="shop-cache")["ReplicationGroups"][0]
    return {m["CacheClusterId"]: m.get("CurrentRole") for m in group["NodeGroups"][0]["NodeGroupMembers"]}


def primary_of(roles: dict) -> str:
    return next(node for node, role in roles.items() if role == "primary")


def wait_group_available(ec, lab) -> None:
    ec.get_waiter("replication_group_available").wait(ReplicationGroupId="shop-cache", WaiterConfig=FAST)
    lab.wait_idle()


def event_messages(client, since: float, **filters) -> list:
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since - 1))
    return [e["Message"] for e in client.describe_events(StartTime=start, **filters)["Events"]]


# ----------------------------------------------------------------------------- RDS


def test_describe_db_instances_shows_the_lab_instance(rds, lab):
    instance = db(rds)
    assert instance["DBInstanceStatus"] == "available" and instance["MultiAZ"] is True
    assert instance["Endpoint"]["Port"] == int(lab.env["GAMEDAY_MYSQL_PORT"])
    assert {instance["AvailabilityZone"], instance["SecondaryAvailabilityZone"]} == {"us-east-1a", "us-east-1b"}
    assert {"Key": "chaos:allowed", "Value": "true"} in instance["TagList"]
    assert instance["DBInstanceArn"] == "arn:aws:rds:us-east-1:123456789012:db:shop-db"
    assert "shop-db" in [i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]]


def test_rds_unknown_instance_errors_are_the_aws_codes(rds):
    with pytest.raises(ClientError) as err:
        rds.describe_db_instances(DBInstanceIdentifier="no-such-db")
    assert code_of(err) == ("DBInstanceNotFound", 404)
    with pytest.raises(ClientError) as err:
        rds.reboot_db_instance(DBInstanceIdentifier="no-such-db", ForceFailover=True)
    assert code_of(err) == ("DBInstanceNotFound", 404)


def test_boto3_forced_failover_swaps_azs_and_the_waiter_sees_it_available(rds, lab):
    before = db(rds)
    t0 = time.time()
    answer = rds.reboot_db_instance(DBInstanceIdentifier="shop-db", ForceFailover=True)["DBInstance"]
    assert answer["DBInstanceStatus"] == "rebooting"
    with pytest.raises(ClientError) as err:  # a second reboot while the first runs
        rds.reboot_db_instance(DBInstanceIdentifier="shop-db")
    assert code_of(err) == ("InvalidDBInstanceState", 400)
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier="shop-db", WaiterConfig=FAST)
    lab.wait_idle()
    after = db(rds)
    assert after["AvailabilityZone"] == before["SecondaryAvailabilityZone"]
    assert after["SecondaryAvailabilityZone"] == before["AvailabilityZone"]
    messages = event_messages(rds, t0, SourceType="db-instance", SourceIdentifier="shop-db")
    assert messages.index("Multi-AZ instance failover started.") < messages.index(
        "Multi-AZ instance failover completed")
    assert "DB instance restarted" in messages


def test_aws_cli_reboot_with_force_failover_really_fails_over(rds, lab, lab_env):
    before = db(rds)["AvailabilityZone"]
    answer = aws_cli("rds", "reboot-db-instance", "--db-instance-identifier", "shop-db", "--force-failover")
    assert answer["DBInstance"]["DBInstanceStatus"] == "rebooting"
    aws_cli("rds", "wait", "db-instance-available", "--db-instance-identifier", "shop-db")
    lab.wait_idle()
    assert db(rds)["AvailabilityZone"] != before


def test_rds_tags_by_arn(rds):
    arn = db(rds)["DBInstanceArn"]
    rds.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "facade-test", "Value": "1"}])
    assert {"Key": "facade-test", "Value": "1"} in rds.list_tags_for_resource(ResourceName=arn)["TagList"]
    rds.remove_tags_from_resource(ResourceName=arn, TagKeys=["facade-test"])
    tags = rds.list_tags_for_resource(ResourceName=arn)["TagList"]
    assert {"Key": "facade-test", "Value": "1"} not in tags and {"Key": "chaos:allowed", "Value": "true"} in tags


# ----------------------------------------------------------------------------- ElastiCache


def test_describe_replication_group_and_cache_clusters(ec, lab):
    group = ec.describe_replication_groups(ReplicationGroupId="shop-cache")["ReplicationGroups"][0]
    assert (group["Status"], group["AutomaticFailover"], group["MultiAZ"]) == ("available", "enabled", "enabled")
    node_group = group["NodeGroups"][0]
    assert node_group["PrimaryEndpoint"]["Port"] == int(lab.env["GAMEDAY_REDIS_PORT"])
    assert node_group["ReaderEndpoint"]["Port"] == int(lab.env["GAMEDAY_REDIS_READER_PORT"])
    assert sorted(cache_roles(ec).values()) == ["primary", "replica"]
    clusters = ec.describe_cache_clusters(ShowCacheNodeInfo=True)["CacheClusters"]
    assert {c["CacheClusterId"] for c in clusters} == set(group["MemberClusters"])
    assert all(c["CacheNodes"][0]["CacheNodeId"] == "0001" for c in clusters)


def test_elasticache_unknown_ids_are_the_aws_codes(ec):
    cases = [
        (lambda: ec.describe_replication_groups(ReplicationGroupId="nope"), ("ReplicationGroupNotFoundFault", 404)),
        (lambda: ec.describe_cache_clusters(CacheClusterId="nope"), ("CacheClusterNotFound", 404)),
        (lambda: ec.test_failover(ReplicationGroupId="nope", NodeGroupId="0001"), ("ReplicationGroupNotFoundFault", 404)),
        (lambda: ec.test_failover(ReplicationGroupId="shop-cache", NodeGroupId="0009"), ("NodeGroupNotFoundFault", 404)),
        (lambda: ec.delete_cache_cluster(CacheClusterId="nope"), ("CacheClusterNotFound", 404)),
    ]
    for call, expected in cases:
        with pytest.raises(ClientError) as err:
            call()
        assert code_of(err) == expected


def test_deleting_the_primary_is_refused_as_aws_documents(ec):
    primary = primary_of(cache_roles(ec))
    with pytest.raises(ClientError) as err:
        ec.delete_cache_cluster(CacheClusterId=primary)
    assert code_of(err) == ("InvalidCacheClusterState", 400)
    assert primary_of(cache_roles(ec)) == primary


def test_boto3_test_failover_promotes_the_replica_and_refuses_a_second_one(ec, lab):
    before = cache_roles(ec)
    t0 = time.time()
    group = ec.test_failover(ReplicationGroupId="shop-cache", NodeGroupId="0001")["ReplicationGroup"]
    assert group["ReplicationGroupId"] == "shop-cache"
    with pytest.raises(ClientError) as err:
        ec.test_failover(ReplicationGroupId="shop-cache", NodeGroupId="0001")
    assert code_of(err) == ("InvalidReplicationGroupState", 400)
    wait_group_available(ec, lab)
    after = cache_roles(ec)
    assert primary_of(after) != primary_of(before) and set(after) == set(before)
    messages = event_messages(ec, t0)
    assert "Test Failover API called for node group 0001" in messages
    assert any(m.startswith(f"Failover from primary node {primary_of(before)}") for m in messages)
    assert "Finished recovery for cache nodes 0001" in messages


def test_aws_cli_test_failover_really_fails_over(ec, lab, lab_env):
    before = primary_of(cache_roles(ec))
    answer = aws_cli("elasticache", "test-failover", "--replication-group-id", "shop-cache", "--node-group-id", "0001")
    assert answer["ReplicationGroup"]["ReplicationGroupId"] == "shop-cache"
    wait_group_available(ec, lab)
    assert primary_of(cache_roles(ec)) != before


def test_add_a_replica_with_create_cache_cluster_then_delete_it(ec, lab):
    members = set(cache_roles(ec))
    new_id = next(f"shop-cache-{n:03d}" for n in range(1, 7) if f"shop-cache-{n:03d}" not in members)
    cluster = ec.create_cache_cluster(CacheClusterId=new_id, ReplicationGroupId="shop-cache")["CacheCluster"]
    assert cluster["CacheClusterId"] == new_id
    ec.get_waiter("cache_cluster_available").wait(CacheClusterId=new_id, WaiterConfig=FAST)
    wait_group_available(ec, lab)
    assert cache_roles(ec)[new_id] == "replica"
    deleted = ec.delete_cache_cluster(CacheClusterId=new_id)["CacheCluster"]
    assert deleted["CacheClusterStatus"] == "deleting"
    ec.get_waiter("cache_cluster_deleted").wait(CacheClusterId=new_id, WaiterConfig=FAST)
    wait_group_available(ec, lab)
    assert set(cache_roles(ec)) == members


def test_increase_replica_count_adds_a_replica_that_can_be_removed(ec, lab):
    members = set(cache_roles(ec))
    group = ec.increase_replica_count(ReplicationGroupId="shop-cache", NewReplicaCount=len(members),
                                      ApplyImmediately=True)["ReplicationGroup"]
    (new_id,) = set(group["MemberClusters"]) - members
    wait_group_available(ec, lab)
    assert cache_roles(ec)[new_id] == "replica"
    ec.delete_cache_cluster(CacheClusterId=new_id)
    ec.get_waiter("cache_cluster_deleted").wait(CacheClusterId=new_id, WaiterConfig=FAST)
    wait_group_available(ec, lab)
    assert set(cache_roles(ec)) == members


def test_elasticache_tags_by_arn(ec):
    arn = ec.describe_replication_groups(ReplicationGroupId="shop-cache")["ReplicationGroups"][0]["ARN"]
    assert {"Key": "chaos:allowed", "Value": "true"} in ec.list_tags_for_resource(ResourceName=arn)["TagList"]
    tags = ec.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "facade-test", "Value": "1"}])["TagList"]
    assert {"Key": "facade-test", "Value": "1"} in tags
    tags = ec.remove_tags_from_resource(ResourceName=arn, TagKeys=["facade-test"])["TagList"]
    assert {"Key": "facade-test", "Value": "1"} not in tags


def test_describe_answers_fast(lab_env):
    from bench_facade import describe_latency

    figures = describe_latency(os.environ["AWS_ENDPOINT_URL"], n=50)
    assert figures["median_ms"] < 50, figures


def test_chaostoolkit_aws_activities_fail_over_through_the_facade(rds, ec, lab):
    from chaosaws.elasticache.actions import test_failover as chaosaws_test_failover
    from chaosaws.elasticache.probes import count_cache_clusters_from_replication_group, get_cache_node_status
    from chaosaws.rds.actions import reboot_db_instance
    from chaosaws.rds.probes import instance_status

    configuration = {"aws_region": "us-east-1"}
    assert instance_status(instance_id="shop-db", configuration=configuration) == "available"
    az_before = db(rds)["AvailabilityZone"]
    answer = reboot_db_instance("shop-db", force_failover=True, configuration=configuration)
    assert answer["DBInstance"]["DBInstanceStatus"] == "rebooting"
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier="shop-db", WaiterConfig=FAST)
    lab.wait_idle()
    assert db(rds)["AvailabilityZone"] != az_before

    primary_before = primary_of(cache_roles(ec))
    assert count_cache_clusters_from_replication_group("shop-cache", configuration=configuration) == len(cache_roles(ec))
    assert get_cache_node_status(primary_before, configuration=configuration) == "available"
    chaosaws_test_failover("shop-cache", "0001", configuration=configuration)
    wait_group_available(ec, lab)
    assert primary_of(cache_roles(ec)) != primary_before
