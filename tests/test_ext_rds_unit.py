"""RDS actions against botocore's Stubber: parameters checked against the real service model,
and any call not queued (a mutation after a refusal, say) fails the test."""
from datetime import datetime, timezone

import pytest
from aws_helpers import stubbed_client
from botocore.stub import ANY

import chaosext.rds.actions as rds_actions
import chaosext.rds.probes as rds_probes
from chaosext.errors import ActivityError, GuardrailRefused

ARN = "arn:aws:rds:us-east-1:123456789012:db:shop-db"
CONFIG = {"aws_region": "us-east-1"}
FAST = {"poll_interval": 0.01, "timeout": 5}


@pytest.fixture
def rds(monkeypatch):
    with stubbed_client(monkeypatch, "rds", CONFIG, rds_actions, rds_probes) as stubber:
        yield stubber


def instance(status="available", az="us-east-1a", secondary="us-east-1b", multi_az=True,
             tags=(("chaos:allowed", "true"),)):
    found = {
        "DBInstanceIdentifier": "shop-db", "DBInstanceStatus": status, "MultiAZ": multi_az,
        "AvailabilityZone": az, "SecondaryAvailabilityZone": secondary, "DBInstanceArn": ARN,
        "Endpoint": {"Address": "localhost", "Port": 3306},
        "TagList": [{"Key": k, "Value": v} for k, v in tags]}
    return {"DBInstances": [{k: v for k, v in found.items() if v is not None}]}


def cluster(writer="db-1", status="available", tags=(("chaos:allowed", "true"),)):
    members = [{"DBInstanceIdentifier": name, "IsClusterWriter": name == writer}
               for name in ("db-1", "db-2", "db-3")]
    return {"DBClusters": [{
        "DBClusterIdentifier": "shop-cluster", "Status": status, "DBClusterMembers": members,
        "DBClusterArn": "arn:aws:rds:us-east-1:123456789012:cluster:shop-cluster",
        "TagList": [{"Key": k, "Value": v} for k, v in tags]}]}


def members(zones=("us-east-1a", "us-east-1b", "us-east-1c"), statuses=("available",) * 3):
    """DescribeDBInstances of the cluster's members db-1..db-3, in `zones`."""
    return {"DBInstances": [{"DBInstanceIdentifier": f"db-{n}", "DBClusterIdentifier": "shop-cluster",
                             "AvailabilityZone": az, "DBInstanceStatus": status}
                            for n, (az, status) in enumerate(zip(zones, statuses), 1)]}


MEMBERS = {"Filters": [{"Name": "db-cluster-id", "Values": ["shop-cluster"]}]}


def event(message, seconds=0.0):
    return {"SourceIdentifier": "shop-db", "SourceType": "db-instance", "Message": message,
            "Date": datetime.fromtimestamp(1_800_000_000 + seconds, tz=timezone.utc)}


DESCRIBE = {"DBInstanceIdentifier": "shop-db"}
CLUSTER = {"DBClusterIdentifier": "shop-cluster"}


def test_force_failover_waits_until_the_primary_moved_and_reports_it(rds):
    rds.add_response("describe_db_instances", instance(), DESCRIBE)
    rds.add_response("reboot_db_instance", {"DBInstance": {"DBInstanceStatus": "rebooting"}},
                     {"DBInstanceIdentifier": "shop-db", "ForceFailover": True})
    rds.add_response("describe_db_instances", instance("rebooting"), DESCRIBE)
    rds.add_response("describe_db_instances", instance(az="us-east-1b", secondary="us-east-1a"),
                     DESCRIBE)
    rds.add_response("describe_events", {"Events": [
        event("Multi-AZ instance failover started."),
        event("Multi-AZ instance failover completed", 2.5)]},
        {"SourceType": "db-instance", "SourceIdentifier": "shop-db", "StartTime": ANY})
    result = rds_actions.force_failover("shop-db", configuration=CONFIG, **FAST)
    assert result["method"] == "RebootDBInstance(ForceFailover=True)"
    assert (result["before"]["az"], result["after"]["az"]) == ("us-east-1a", "us-east-1b")
    assert [e["event_id"] for e in result["events"]] == ["RDS-EVENT-0013", "RDS-EVENT-0049"]
    assert result["control_plane_completed_at"] == "2027-01-15T08:00:02.500Z"
    assert result["injected_at"].endswith("Z") and len(result["injected_at"]) == 24
    assert result["rto_seconds"] is None  # no data-plane endpoint configured


def test_force_failover_refuses_single_az_instance_without_mutating(rds):
    rds.add_response("describe_db_instances", instance(multi_az=False, secondary=None), DESCRIBE)
    with pytest.raises(GuardrailRefused, match="shop-db refused: it is not Multi-AZ"):
        rds_actions.force_failover("shop-db", configuration=CONFIG)


def test_force_failover_refuses_untagged_instance_without_mutating(rds):
    rds.add_response("describe_db_instances", instance(tags=()), DESCRIBE)
    with pytest.raises(GuardrailRefused, match="does not carry the allow tag chaos:allowed=true"):
        rds_actions.force_failover("shop-db", configuration=CONFIG)


def test_force_failover_dry_run_describes_and_mutates_nothing(rds):
    rds.add_response("describe_db_instances", instance(), DESCRIBE)
    result = rds_actions.force_failover("shop-db", configuration={**CONFIG,
                                                                  "gameday_dry_run": True})
    assert result["dry_run"] is True
    assert "from us-east-1a to us-east-1b" in result["would"]
    assert result["injected_at"] is None


def test_force_failover_reports_invalid_state_refusal(rds):
    rds.add_response("describe_db_instances", instance(), DESCRIBE)
    rds.add_client_error("reboot_db_instance", "InvalidDBInstanceState",
                         "Instance shop-db is not currently in the available state", 400)
    with pytest.raises(ActivityError) as caught:
        rds_actions.force_failover("shop-db", configuration=CONFIG)
    assert str(caught.value).startswith(
        "RebootDBInstance on DB instance shop-db refused: the DB instance is not in a state")
    assert caught.value.code == "InvalidDBInstanceState"


def test_force_failover_reports_unknown_instance(rds):
    rds.add_client_error("describe_db_instances", "DBInstanceNotFound", "DBInstance nope not found",
                         404)
    rds.add_client_error("describe_db_clusters", "DBClusterNotFoundFault", "DBCluster nope not found", 404)
    with pytest.raises(ActivityError, match="DescribeDBInstances on DB instance nope refused: "
                       "no such DB instance"):
        rds_actions.force_failover("nope", configuration=CONFIG)


def test_throttling_is_reported_as_such(rds):
    rds.add_client_error("describe_db_instances", "Throttling", "Rate exceeded", 400)
    with pytest.raises(ActivityError, match="AWS throttled the request"):
        rds_probes.instance_status("shop-db", configuration=CONFIG)


def test_force_failover_fails_clearly_when_rds_does_not_attempt_it(rds):
    rds.add_response("describe_db_instances", instance(), DESCRIBE)
    rds.add_response("reboot_db_instance", {"DBInstance": {}}, None)
    rds.add_response("describe_db_instances", instance(), DESCRIBE)
    rds.add_response("describe_events", {"Events": [event(
        "Amazon RDS is not attempting a requested failover because a failover recently "
        "occurred on the DB instance.")]}, None)
    with pytest.raises(ActivityError, match=r"did not attempt the failover \(RDS-EVENT-0034"):
        rds_actions.force_failover("shop-db", configuration=CONFIG, **FAST)


def test_failover_db_cluster_omits_target_when_not_given(rds):
    rds.add_response("describe_db_clusters", cluster(), CLUSTER)
    rds.add_response("describe_db_instances", members(), MEMBERS)
    rds.add_response("failover_db_cluster", {}, {"DBClusterIdentifier": "shop-cluster"})
    result = rds_actions.failover_db_cluster("shop-cluster", wait=False, configuration=CONFIG)
    assert result["method"] == "FailoverDBCluster" and result["before"]["writer"] == "db-1"


def test_failover_db_cluster_sends_target_and_waits_for_that_writer(rds):
    rds.add_response("describe_db_clusters", cluster(), CLUSTER)
    rds.add_response("describe_db_instances", members(), MEMBERS)
    rds.add_response("failover_db_cluster", {}, {"DBClusterIdentifier": "shop-cluster",
                                                 "TargetDBInstanceIdentifier": "db-3"})
    rds.add_response("describe_db_clusters", cluster(status="failing-over"), CLUSTER)
    rds.add_response("describe_db_clusters", cluster(writer="db-3"), CLUSTER)
    rds.add_response("describe_events", {"Events": []}, {
        "SourceType": "db-cluster", "SourceIdentifier": "shop-cluster", "StartTime": ANY})
    result = rds_actions.failover_db_cluster("shop-cluster", "db-3", configuration=CONFIG, **FAST)
    assert result["after"]["writer"] == "db-3"
    assert result["control_plane_seconds"] >= 0


def test_failover_db_cluster_refuses_target_that_is_not_a_reader(rds):
    rds.add_response("describe_db_clusters", cluster(), CLUSTER)
    rds.add_response("describe_db_instances", members(), MEMBERS)
    with pytest.raises(GuardrailRefused, match="target db-1 is not one of its readers"):
        rds_actions.failover_db_cluster("shop-cluster", "db-1", configuration=CONFIG)


def test_force_failover_times_out_with_last_state(rds):
    rds.add_response("describe_db_instances", instance(), DESCRIBE)
    rds.add_response("reboot_db_instance", {"DBInstance": {}}, None)
    rds.add_response("describe_db_instances", instance("rebooting"), DESCRIBE)
    with pytest.raises(ActivityError, match=r"did not report recovery within 0 s \(last state: "
                       r"\{'az': 'us-east-1a', 'secondary_az': 'us-east-1b', 'status': 'rebooting'"):
        rds_actions.force_failover("shop-db", configuration=CONFIG, timeout=0)


def test_failover_events_probe_infers_ids_and_sorts(rds):
    rds.add_response("describe_events", {"Events": [
        event("Multi-AZ instance failover completed", 3), event("DB instance created", 1),
        event("Multi-AZ instance failover started.", 2)]},
        {"SourceType": "db-instance", "SourceIdentifier": "shop-db", "StartTime": ANY})
    found = rds_probes.failover_events("shop-db", since="2027-01-15T08:00:00Z",
                                       configuration=CONFIG)
    assert [e["event_id"] for e in found] == [None, "RDS-EVENT-0013", "RDS-EVENT-0049"]


def test_failover_events_probe_rejects_unknown_source_type():
    with pytest.raises(ActivityError, match="unknown RDS source type 'db-proxy'"):
        rds_probes.failover_events("shop-db", source_type="db-proxy", configuration=CONFIG)


def test_endpoint_resolution_resolves_the_instance_endpoint(rds):
    rds.add_response("describe_db_instances", instance(), DESCRIBE)
    resolved = rds_probes.endpoint_resolution("shop-db", configuration=CONFIG)
    assert resolved["address"] == "localhost" and resolved["port"] == 3306
    assert "127.0.0.1" in resolved["resolved"] or "::1" in resolved["resolved"]


def test_discover_lists_the_rds_and_elasticache_activities():
    from chaosext import discover
    names = {(a["mod"], a["name"]) for a in discover(discover_system=False)["activities"]}
    assert ("chaosext.rds.actions", "force_failover") in names
    assert ("chaosext.elasticache.actions", "delete_primary_node") in names
    assert ("chaosext.dataplane", "wait_until_writable") in names
