"""ElastiCache actions against botocore's Stubber (parameters validated by the service model;
an unexpected mutating call fails the test)."""
from datetime import datetime, timezone

import pytest
from aws_helpers import stubbed_client
from botocore.stub import ANY

import chaosext.elasticache.actions as ec_actions
import chaosext.elasticache.probes as ec_probes
from chaosext.errors import ActivityError, GuardrailRefused

ARN = "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:shop-cache"
CONFIG = {"aws_region": "us-east-1"}
FAST = {"poll_interval": 0.01, "timeout": 5}
GROUP = {"ReplicationGroupId": "shop-cache"}
TAGS = {"ResourceName": ARN}


@pytest.fixture
def ec(monkeypatch):
    with stubbed_client(monkeypatch, "elasticache", CONFIG, ec_actions, ec_probes) as stubber:
        yield stubber


def group(primary="shop-cache-001", replicas=("shop-cache-002",), status="available",
          failover="enabled"):
    nodes = [primary, *replicas] if primary else list(replicas)
    azs = {"shop-cache-001": "us-east-1a", "shop-cache-002": "us-east-1b",
           "shop-cache-003": "us-east-1c"}
    members = [{"CacheClusterId": n, "CacheNodeId": "0001", "PreferredAvailabilityZone": azs[n],
                "CurrentRole": "primary" if n == primary else "replica"} for n in nodes]
    return {"ReplicationGroups": [{
        "ReplicationGroupId": "shop-cache", "Status": status, "AutomaticFailover": failover,
        "MemberClusters": sorted(nodes), "ARN": ARN,
        "NodeGroups": [{"NodeGroupId": "0001", "Status": status, "NodeGroupMembers": members,
                        "PrimaryEndpoint": {"Address": "localhost", "Port": 6379}}]}]}


def tags(allowed=True):
    return {"TagList": [{"Key": "chaos:allowed", "Value": "true"}] if allowed else []}


def events(*messages):
    return {"Events": [{"SourceIdentifier": source, "SourceType": "replication-group",
                        "Message": message,
                        "Date": datetime(2027, 1, 1, 0, 0, i, tzinfo=timezone.utc)}
                       for i, (source, message) in enumerate(messages)]}


def checks(ec, **group_args):
    ec.add_response("describe_replication_groups", group(**group_args), GROUP)
    ec.add_response("list_tags_for_resource", tags(), TAGS)


def test_test_failover_resolves_node_group_and_waits_for_new_primary(ec):
    checks(ec)
    ec.add_response("test_failover", {}, {"ReplicationGroupId": "shop-cache", "NodeGroupId": "0001"})
    ec.add_response("describe_replication_groups", group(status="modifying"), GROUP)
    ec.add_response("describe_replication_groups",
                    group("shop-cache-002", ("shop-cache-001",)), GROUP)
    ec.add_response("describe_events", events(
        ("shop-cache", "Test Failover API called for node group 0001"),
        ("shop-cache", "Failover from primary node shop-cache-001 to replica node shop-cache-002 "
                       "completed"),
        ("other-group", "Test Failover API called for node group 0001")), {"StartTime": ANY})
    result = ec_actions.test_failover("shop-cache", configuration=CONFIG, **FAST)
    assert (result["before"]["node"], result["after"]["node"]) == ("shop-cache-001",
                                                                   "shop-cache-002")
    assert (result["before"]["az"], result["after"]["az"]) == ("us-east-1a", "us-east-1b")
    assert [e["kind"] for e in result["events"]] == ["failover-started", "failover-completed"]
    assert result["control_plane_completed_at"] == "2027-01-01T00:00:01.000Z"


def test_delete_primary_node_falls_back_to_test_failover_when_refused(ec):
    checks(ec)
    ec.add_client_error("delete_cache_cluster", "InvalidCacheClusterState",
                        "Cannot delete the primary cluster of a replication group", 400,
                        expected_params={"CacheClusterId": "shop-cache-001"})
    ec.add_response("test_failover", {}, {"ReplicationGroupId": "shop-cache", "NodeGroupId": "0001"})
    result = ec_actions.delete_primary_node("shop-cache", wait=False, configuration=CONFIG)
    assert result["method"] == "TestFailover"
    assert result["requested_method"] == "DeleteCacheCluster"
    assert "InvalidCacheClusterState" in result["method_reason"]
    assert "fell back to TestFailover" in result["method_reason"]


def test_delete_primary_node_without_fallback_reports_the_refusal(ec):
    checks(ec)
    ec.add_client_error("delete_cache_cluster", "InvalidCacheClusterState", "primary", 400)
    with pytest.raises(ActivityError, match="DeleteCacheCluster on primary node shop-cache-001 "
                       "refused"):
        ec_actions.delete_primary_node("shop-cache", fallback_to_test_failover=False,
                                       wait=False, configuration=CONFIG)


def test_delete_primary_node_records_deletion_when_accepted(ec):
    checks(ec)
    ec.add_response("delete_cache_cluster", {}, {"CacheClusterId": "shop-cache-001"})
    result = ec_actions.delete_primary_node("shop-cache", wait=False, configuration=CONFIG)
    assert result["method"] == "DeleteCacheCluster" and result["method_reason"] is None


def test_primary_loss_refuses_group_without_replica(ec):
    checks(ec, replicas=())
    with pytest.raises(GuardrailRefused, match="node group 0001 has no replica to promote"):
        ec_actions.delete_primary_node("shop-cache", configuration=CONFIG)


def test_primary_loss_refuses_group_without_automatic_failover(ec):
    checks(ec, failover="disabled")
    with pytest.raises(GuardrailRefused, match="automatic failover is disabled"):
        ec_actions.test_failover("shop-cache", configuration=CONFIG)


def test_primary_loss_refuses_untagged_group(ec):
    ec.add_response("describe_replication_groups", group(), GROUP)
    ec.add_response("list_tags_for_resource", tags(False), TAGS)
    with pytest.raises(GuardrailRefused, match="replication group shop-cache refused"):
        ec_actions.test_failover("shop-cache", configuration=CONFIG)


def test_unknown_node_group_is_named(ec):
    ec.add_response("describe_replication_groups", group(), GROUP)
    with pytest.raises(ActivityError, match=r"has no node group 0002 \(it has \['0001'\]\)"):
        ec_actions.test_failover("shop-cache", "0002", configuration=CONFIG)


def test_unknown_group_is_explained(ec):
    ec.add_client_error("describe_replication_groups", "ReplicationGroupNotFoundFault",
                        "ReplicationGroup nope not found", 404)
    with pytest.raises(ActivityError, match="no such replication group"):
        ec_actions.test_failover("nope", configuration=CONFIG)


def test_delete_primary_node_dry_run_mutates_nothing(ec):
    checks(ec)
    result = ec_actions.delete_primary_node("shop-cache", dry_run=True, configuration=CONFIG)
    assert result["dry_run"] and "would delete primary node shop-cache-001" in result["would"]


def test_restore_replicas_uses_increase_replica_count(ec):
    checks(ec, replicas=())
    ec.add_response("increase_replica_count", {}, {
        "ReplicationGroupId": "shop-cache", "NewReplicaCount": 1, "ApplyImmediately": True})
    ec.add_response("describe_replication_groups", group(status="modifying", replicas=()), GROUP)
    ec.add_response("describe_replication_groups", group(replicas=("shop-cache-003",)), GROUP)
    ec.add_response("describe_events", events(), {"StartTime": ANY})
    result = ec_actions.restore_replicas("shop-cache", 1, configuration=CONFIG, **FAST)
    assert result["method"] == "IncreaseReplicaCount"
    assert result["after"]["replicas"] == ["shop-cache-003"]


def test_restore_replicas_falls_back_to_create_cache_cluster(ec):
    checks(ec, primary="shop-cache-002", replicas=())
    ec.add_client_error("increase_replica_count", "InvalidParameterValue", "not supported", 400)
    tag = [{"Key": "chaos:allowed", "Value": "true"}]  # the IAM policy allows only tagged creates
    ec.add_response("create_cache_cluster", {}, {"CacheClusterId": "shop-cache-003",
                                                 "ReplicationGroupId": "shop-cache", "Tags": tag})
    ec.add_response("create_cache_cluster", {}, {"CacheClusterId": "shop-cache-004",
                                                 "ReplicationGroupId": "shop-cache", "Tags": tag})
    result = ec_actions.restore_replicas("shop-cache", 2, wait=False, configuration=CONFIG)
    assert result["method"] == "CreateCacheCluster(ReplicationGroupId)"


def test_restore_replicas_does_nothing_when_redundant(ec):
    checks(ec)
    ec.add_response("describe_replication_groups", group(), GROUP)
    ec.add_response("describe_events", events(), {"StartTime": ANY})
    result = ec_actions.restore_replicas("shop-cache", 1, configuration=CONFIG, **FAST)
    assert result["method"] == "none" and result["after"]["replicas"] == ["shop-cache-002"]


def test_current_primary_and_endpoint_probes(ec):
    ec.add_response("describe_replication_groups", group(), GROUP)
    ec.add_response("describe_replication_groups", group(), GROUP)
    assert ec_probes.current_primary("shop-cache", configuration=CONFIG)["node"] == "shop-cache-001"
    resolved = ec_probes.endpoint_resolution("shop-cache", configuration=CONFIG)
    assert resolved["address"] == "localhost" and resolved["resolved"]
