"""chaosext.fis.placement against botocore's Stubber: which AZ "primary" means, read-only, and the
refusal when the primaries are split across AZs (before any FIS call: none is queued)."""
import contextlib

import pytest
from botocore.stub import Stubber

import chaosext.fis.actions as fis_actions
import chaosext.fis.placement as placement
from chaosext.aws import aws_client
from chaosext.errors import ActivityError

CONFIG = {"aws_region": "us-east-1", "fis_role_arn": "arn:aws:iam::123456789012:role/fis",
          "db_instance_id": "shop-db", "replication_group_id": "shop-cache"}


@contextlib.contextmanager
def stubbed(monkeypatch):
    """RDS, ElastiCache and FIS clients under Stubbers that must be consumed exactly."""
    clients = {name: aws_client(name, CONFIG) for name in ("rds", "elasticache", "fis")}
    monkeypatch.setattr(placement, "aws_client", lambda service, *a, **k: clients[service])
    monkeypatch.setattr(fis_actions, "aws_client", lambda service, *a, **k: clients[service])
    with contextlib.ExitStack() as stack:
        stubs = {name: stack.enter_context(Stubber(client)) for name, client in clients.items()}
        yield stubs
        for stub in stubs.values():
            stub.assert_no_pending_responses()


def db(az):
    return {"DBInstances": [{"DBInstanceIdentifier": "shop-db", "AvailabilityZone": az,
                             "SecondaryAvailabilityZone": "us-east-1c" if az != "us-east-1c" else "us-east-1a",
                             "MultiAZ": True}]}


def group(primary_az):
    other = "us-east-1b" if primary_az == "us-east-1a" else "us-east-1a"
    return {"ReplicationGroups": [{"ReplicationGroupId": "shop-cache", "NodeGroups": [{
        "NodeGroupId": "0001", "Status": "available", "NodeGroupMembers": [
            {"CacheClusterId": "shop-cache-001", "CurrentRole": "replica", "PreferredAvailabilityZone": other},
            {"CacheClusterId": "shop-cache-002", "CurrentRole": "primary",
             "PreferredAvailabilityZone": primary_az}]}]}]}


def test_primary_means_the_az_where_both_primaries_are_now(monkeypatch):
    with stubbed(monkeypatch) as stubs:
        stubs["rds"].add_response("describe_db_instances", db("us-east-1b"), {"DBInstanceIdentifier": "shop-db"})
        stubs["elasticache"].add_response("describe_replication_groups", group("us-east-1b"),
                                          {"ReplicationGroupId": "shop-cache"})
        assert placement.resolve_zone("primary", CONFIG) == "us-east-1b"


def test_a_named_az_is_used_as_given_without_any_call(monkeypatch):
    with stubbed(monkeypatch):
        assert placement.resolve_zone("us-east-1c", CONFIG) == "us-east-1c"


def test_cache_only_interruption_looks_at_the_cache_primary_only(monkeypatch):
    with stubbed(monkeypatch) as stubs:
        stubs["elasticache"].add_response("describe_replication_groups", group("us-east-1a"),
                                          {"ReplicationGroupId": "shop-cache"})
        assert placement.resolve_zone("primary", CONFIG, services=("cache",)) == "us-east-1a"


def test_split_primaries_are_refused_before_any_fis_call(monkeypatch):
    with stubbed(monkeypatch) as stubs:
        stubs["rds"].add_response("describe_db_instances", db("us-east-1b"), {"DBInstanceIdentifier": "shop-db"})
        stubs["elasticache"].add_response("describe_replication_groups", group("us-east-1a"),
                                          {"ReplicationGroupId": "shop-cache"})
        with pytest.raises(ActivityError) as refused:
            fis_actions.az_power_interruption("primary", configuration=CONFIG, poll_interval=0.01)
    message = str(refused.value)
    assert "\n" not in message
    assert "DB instance shop-db in us-east-1b" in message
    assert "cache primary shop-cache-002 in us-east-1a" in message
    assert "gameday failback" in message


def test_primary_without_any_resource_configured_names_the_fix(monkeypatch):
    monkeypatch.delenv("GAMEDAY_DB_INSTANCE_ID", raising=False)
    monkeypatch.delenv("GAMEDAY_REPLICATION_GROUP_ID", raising=False)
    with pytest.raises(ActivityError, match="needs db_instance_id, db_cluster_id or replication_group_id"):
        placement.resolve_zone("primary", {"aws_region": "us-east-1"})


def test_primary_on_a_db_cluster_is_the_az_of_its_writer(monkeypatch):
    on_cluster = {k: v for k, v in CONFIG.items() if k != "db_instance_id"} | {"db_cluster_id": "shop-cluster"}
    members = [("shop-cluster-1", "us-east-1a", False), ("shop-cluster-2", "us-east-1b", True),
               ("shop-cluster-3", "us-east-1c", False)]
    with stubbed(monkeypatch) as stubs:
        stubs["rds"].add_response("describe_db_clusters", {"DBClusters": [{
            "DBClusterIdentifier": "shop-cluster", "Status": "available", "DBClusterMembers": [
                {"DBInstanceIdentifier": n, "IsClusterWriter": w} for n, _, w in members]}]},
            {"DBClusterIdentifier": "shop-cluster"})
        stubs["rds"].add_response("describe_db_instances", {"DBInstances": [
            {"DBInstanceIdentifier": n, "AvailabilityZone": az} for n, az, _ in members]},
            {"Filters": [{"Name": "db-cluster-id", "Values": ["shop-cluster"]}]})
        stubs["elasticache"].add_response("describe_replication_groups", group("us-east-1a"),
                                          {"ReplicationGroupId": "shop-cache"})
        with pytest.raises(ActivityError, match="DB cluster shop-cluster writer shop-cluster-2 in us-east-1b"):
            placement.resolve_zone("primary", on_cluster)
