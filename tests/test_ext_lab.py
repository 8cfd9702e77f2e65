"""chaosext against the lab facade: real failovers, measured RTOs checked against the lab's
ground-truth event log (events.jsonl), and guardrails that leave the lab untouched."""
import boto3
import pytest

from chaosext import dataplane
from chaosext.elasticache import actions as ec_actions
from chaosext.elasticache import probes as ec_probes
from chaosext.errors import GuardrailRefused
from chaosext.rds import actions as rds_actions
from chaosext.rds import probes as rds_probes
from groundfloor.timefmt import parse_time

pytestmark = pytest.mark.lab

TOLERANCE = 0.25  # seconds: measured vs ground truth (the pack's RTO accuracy target)
WAIT = {"timeout": 90, "poll_interval": 0.2}


@pytest.fixture
def conf(lab_env, lab):
    """Experiment configuration for the lab, built from `gameday lab env` only."""
    lab.wait_idle()
    return {
        "aws_region": lab_env["AWS_DEFAULT_REGION"],
        "mysql_host": lab_env["GAMEDAY_MYSQL_HOST"], "mysql_port": lab_env["GAMEDAY_MYSQL_PORT"],
        "mysql_user": lab_env["GAMEDAY_MYSQL_USER"],
        "mysql_password": lab_env["GAMEDAY_MYSQL_PASSWORD"],
        "mysql_database": lab_env["GAMEDAY_MYSQL_DATABASE"],
        "redis_host": lab_env["GAMEDAY_REDIS_HOST"], "redis_port": lab_env["GAMEDAY_REDIS_PORT"],
        "redis_password": lab_env["GAMEDAY_REDIS_PASSWORD"],
    }


def epoch(iso_text: str) -> float:
    return parse_time(iso_text).timestamp()


def ground_truth(lab, result, source_id, started_message):
    """(fault start, endpoint writable again) from events.jsonl for this fault."""
    injected = epoch(result["injected_at"])
    events = lab.events(since=injected - 0.5)
    started = next(e["time"] for e in events if e["message"].startswith(started_message)
                   and e["source_id"] == source_id)
    writable = next(e["time"] for e in events if e["source_type"] == "lab"
                    and e["message"].startswith("endpoint writable on") and e["time"] >= started)
    return started, writable


def assert_rto_matches_ground_truth(lab, result, source_id, started_message):
    started, writable = ground_truth(lab, result, source_id, started_message)
    measured_writable = epoch(result["data_plane_writable_at"])
    assert abs(measured_writable - writable) <= TOLERANCE, (measured_writable, writable)
    truth_rto = writable - started
    assert abs(result["rto_seconds"] - truth_rto) <= TOLERANCE, (result["rto_seconds"], truth_rto)
    assert result["data_plane"]["first_failure_at"] is not None
    return truth_rto


def test_force_failover_moves_primary_and_measures_rto_like_ground_truth(lab, conf):
    before = lab.snapshot()["db_instances"]["shop-db"]
    result = rds_actions.force_failover("shop-db", configuration=conf, **WAIT)
    after = lab.snapshot()["db_instances"]["shop-db"]
    assert after["primary"] == before["standby"] and after["standby"] == before["primary"]
    assert result["before"]["az"] != result["after"]["az"]
    assert result["after"]["az"] == after["nodes"][after["primary"]]["az"]
    ids = [e["event_id"] for e in result["events"]]
    assert "RDS-EVENT-0013" in ids and "RDS-EVENT-0049" in ids
    assert_rto_matches_ground_truth(lab, result, "shop-db", "Multi-AZ instance failover started")
    assert result["control_plane_seconds"] >= result["rto_seconds"] - TOLERANCE
    assert dataplane.mysql_writable(configuration=conf)


def test_test_failover_promotes_replica_and_measures_rto_like_ground_truth(lab, conf):
    before = ec_probes.current_primary("shop-cache", configuration=conf)
    result = ec_actions.test_failover("shop-cache", configuration=conf, **WAIT)
    truth = lab.snapshot()["cache_clusters"]
    assert truth[before["node"]]["role"] == "replica"
    assert truth[result["after"]["node"]]["role"] == "primary"
    assert result["after"]["node"] != before["node"]
    kinds = [e["kind"] for e in result["events"]]
    assert "failover-started" in kinds and "failover-completed" in kinds
    assert_rto_matches_ground_truth(lab, result, "shop-cache", "Test Failover API called")
    assert dataplane.redis_writable(configuration=conf)


def test_delete_primary_node_falls_back_to_test_failover_on_lab(lab, conf):
    before = ec_probes.current_primary("shop-cache", configuration=conf)
    result = ec_actions.delete_primary_node("shop-cache", configuration=conf, **WAIT)
    assert result["requested_method"] == "DeleteCacheCluster"
    if lab.config.allow_primary_delete:
        assert result["method"] == "DeleteCacheCluster"
    else:
        assert result["method"] == "TestFailover" and "refused" in result["method_reason"]
    assert lab.snapshot()["cache_clusters"][result["after"]["node"]]["role"] == "primary"
    assert result["after"]["node"] != before["node"]


def test_restore_replicas_adds_replicas_until_count_is_met(lab, conf, lab_env):
    before = ec_probes.current_primary("shop-cache", configuration=conf)
    wanted = len(before["replicas"]) + 1
    result = ec_actions.restore_replicas("shop-cache", wanted, configuration=conf, **WAIT)
    try:
        assert result["method"] in ("IncreaseReplicaCount", "CreateCacheCluster(ReplicationGroupId)")
        added = sorted(set(result["after"]["replicas"]) - set(before["replicas"]))
        assert len(added) == 1
        lab.wait_idle()
        assert lab.snapshot()["cache_clusters"][added[0]]["role"] == "replica"
        again = ec_actions.restore_replicas("shop-cache", wanted, configuration=conf, **WAIT)
        assert again["method"] == "none"
    finally:  # give the lab its original shape back (AWS allows deleting a spare replica)
        for node in set(ec_probes.current_primary("shop-cache", configuration=conf)["replicas"]) \
                - set(before["replicas"]):
            boto3.client("elasticache").delete_cache_cluster(CacheClusterId=node)
        lab.wait_idle()


def test_refused_guardrail_mutates_nothing_on_lab(lab, conf):
    before = lab.snapshot()
    events_before = len(lab.events())
    strict = {**conf, "chaos_allow_tag": "gameday=never"}
    with pytest.raises(GuardrailRefused, match="does not carry the allow tag gameday=never"):
        rds_actions.force_failover("shop-db", configuration=strict)
    with pytest.raises(GuardrailRefused, match="region us-east-1 is not in aws_allowed_regions"):
        ec_actions.test_failover("shop-cache", configuration={**conf,
                                                              "aws_allowed_regions": "eu-west-1"})
    with pytest.raises(GuardrailRefused, match="account 123456789012 is not in"):
        ec_actions.delete_primary_node("shop-cache", configuration={
            **conf, "aws_allowed_accounts": "000000000000"})
    after = lab.snapshot()
    assert after["db_instances"]["shop-db"]["primary"] == before["db_instances"]["shop-db"]["primary"]
    assert {k: v["role"] for k, v in after["cache_clusters"].items()} == \
        {k: v["role"] for k, v in before["cache_clusters"].items()}
    assert len(lab.events()) == events_before


def test_dry_run_on_lab_describes_and_changes_nothing(lab, conf):
    events_before = len(lab.events())
    result = rds_actions.force_failover("shop-db", dry_run=True, configuration=conf)
    assert result["dry_run"] and result["injected_at"] is None
    result = ec_actions.delete_primary_node("shop-cache", configuration={**conf,
                                                                         "gameday_dry_run": True})
    assert result["dry_run"] and "would delete primary node" in result["would"]
    assert len(lab.events()) == events_before


def test_probes_read_the_lab(lab, conf):
    truth = lab.snapshot()
    db = truth["db_instances"]["shop-db"]
    assert rds_probes.instance_status("shop-db", configuration=conf) == "available"
    assert rds_probes.instance_placement("shop-db", configuration=conf)["az"] == \
        db["nodes"][db["primary"]]["az"]
    resolved = rds_probes.endpoint_resolution("shop-db", configuration=conf)
    assert resolved["address"] == db["endpoint"]["address"]  # the instance endpoint's DNS name
    assert resolved["resolved"] == [db["nodes"][db["primary"]]["ip"]]  # answers the primary's host
    assert ec_probes.replication_group_status("shop-cache", configuration=conf) == "available"
    assert ec_probes.endpoint_resolution("shop-cache", configuration=conf)["port"] == \
        truth["replication_groups"]["shop-cache"]["primary_endpoint"]["port"]
    events = rds_probes.failover_events("shop-db", window_seconds=3600, configuration=conf)
    assert all(e["date"].endswith("Z") for e in events)


def test_reboot_without_failover_keeps_primary_and_measures_rto(lab, conf):
    before = lab.snapshot()["db_instances"]["shop-db"]["primary"]
    result = rds_actions.reboot_db_instance("shop-db", configuration=conf, **WAIT)
    assert lab.snapshot()["db_instances"]["shop-db"]["primary"] == before
    assert result["before"]["az"] == result["after"]["az"]
    assert "RDS-EVENT-0006" in [e["event_id"] for e in result["events"]]
    # The lab logs "endpoint writable" when HAProxy routes to the restarted server; the first
    # commit is acknowledged later (semi-sync waits for the standby), so only a lower bound holds.
    started, writable = ground_truth(lab, result, "shop-db", "DB instance shutdown")
    assert epoch(result["data_plane_writable_at"]) >= writable - TOLERANCE
    assert result["data_plane"]["first_failure_at"] is not None and result["rto_seconds"] < 10
