"""Alerting against the lab: real failovers through the AWS facade, the events probe judged
against the lab's ground truth (events.jsonl), and a Chaos Toolkit run whose journal shows the
probe met while the loopback webhook receiver got the notifications."""
import time

import boto3
import pytest
from chaoslib.run import Runner
from chaoslib.types import Strategy

from chaosext.alerts import faults as fault_log
from chaosext.alerts.probes import failover_events_within
from groundfloor.timefmt import iso, parse_time
from woolab.config import NODE_GROUP_ID
from woolab.webhook import WebhookReceiver

pytestmark = pytest.mark.lab

TOLERANCE = 0.01  # the facade reports the ground-truth times (millisecond precision)


@pytest.fixture
def conf(lab, lab_env):
    lab.wait_idle()
    fault_log.forget()
    yield {"aws_region": lab_env["AWS_DEFAULT_REGION"]}
    fault_log.forget()
    lab.wait_idle()


def truth(lab, since: float, source_types) -> dict:
    """message -> time of the first AWS (non-"lab") event since `since`."""
    found = {}
    for event in lab.events(since=since):
        if event["source_type"] in source_types:
            found.setdefault(event["message"], event["time"])
    return found


def test_rds_force_failover_reports_started_restarted_completed_in_time(lab, conf):
    since = time.time()
    rds = boto3.client("rds", region_name=conf["aws_region"])
    rds.reboot_db_instance(DBInstanceIdentifier="shop-db", ForceFailover=True)
    result = failover_events_within("rds", "shop-db", since=iso(since), within_seconds=120,
                                    expect=["started", "RDS-EVENT-0006", "completed"],
                                    poll_interval=0.2, configuration=conf)
    assert result["met"] is True, result
    assert [result["found"][n]["event_id"] for n in ("started", "completed")] == \
        ["RDS-EVENT-0013", "RDS-EVENT-0049"]
    ground = truth(lab, since, {"db-instance"})
    completed_at = ground["Multi-AZ instance failover completed"]
    assert abs(result["latency_seconds"]["completed"] - (completed_at - since)) <= TOLERANCE
    assert 0 <= result["latency_seconds"]["started"] <= result["latency_seconds"]["completed"]


def test_elasticache_test_failover_reports_failover_and_recovery_in_time(lab, conf):
    since = time.time()
    cache = boto3.client("elasticache", region_name=conf["aws_region"])
    cache.test_failover(ReplicationGroupId="shop-cache", NodeGroupId=NODE_GROUP_ID)
    result = failover_events_within("elasticache", "shop-cache", since=iso(since),
                                    within_seconds=120,
                                    expect=["started", "completed", "recovery-completed"],
                                    poll_interval=0.2, configuration=conf)
    assert result["met"] is True, result
    ground = truth(lab, since, {"replication-group", "cache-cluster"})
    completed = next(t for m, t in ground.items() if m.startswith("Failover from primary node"))
    assert abs(result["latency_seconds"]["completed"] - (completed - since)) <= TOLERANCE
    assert result["latency_seconds"]["recovery-completed"] >= result["latency_seconds"]["completed"]


def test_back_to_back_failovers_are_each_judged_on_their_own_events(lab, conf):
    cache = boto3.client("elasticache", region_name=conf["aws_region"])
    for _ in range(2):
        lab.wait_idle()
        since = time.time()
        cache.test_failover(ReplicationGroupId="shop-cache", NodeGroupId=NODE_GROUP_ID)
        result = failover_events_within("elasticache", "shop-cache", since=iso(since),
                                        within_seconds=60, poll_interval=0.1,
                                        configuration=conf)
        assert result["met"] is True
        assert all(event["date"] >= iso(since) for event in result["events"])
        ground = truth(lab, since, {"replication-group"})
        completed = next(t for m, t in ground.items() if m.startswith("Failover from"))
        assert abs(result["latency_seconds"]["completed"] - (completed - since)) <= TOLERANCE


def test_too_tight_a_bound_is_reported_as_late(lab, conf):
    since = time.time()
    boto3.client("rds", region_name=conf["aws_region"]).reboot_db_instance(
        DBInstanceIdentifier="shop-db", ForceFailover=True)
    lab.wait_idle()
    result = failover_events_within("rds", "shop-db", since=iso(since), within_seconds=0.001,
                                    configuration=conf)
    assert result["met"] is False and "completed" in result["late"]


def test_experiment_journal_shows_events_met_and_receiver_got_notifications(lab, lab_env, conf,
                                                                            tmp_path):
    with WebhookReceiver(0, tmp_path / "webhook") as receiver:
        experiment = {
            "title": "RDS failover is announced", "description": "alerting on the lab",
            "configuration": {**conf, "mysql_host": lab_env["GAMEDAY_MYSQL_HOST"],
                              "mysql_port": lab_env["GAMEDAY_MYSQL_PORT"],
                              "mysql_user": lab_env["GAMEDAY_MYSQL_USER"],
                              "mysql_password": lab_env["GAMEDAY_MYSQL_PASSWORD"],
                              "mysql_database": lab_env["GAMEDAY_MYSQL_DATABASE"]},
            "controls": [{"name": "gameday-notify", "provider": {
                "type": "python", "module": "chaosext.alerts.notify",
                "arguments": {"webhook_url": f"{receiver.url}/hook",
                              "slack_webhook_url": f"{receiver.url}/slack"}}}],
            "method": [
                {"type": "action", "name": "rds-force-failover", "provider": {
                    "type": "python", "module": "chaosext.rds.actions", "func": "force_failover",
                    "arguments": {"db_instance_identifier": "shop-db", "timeout": 120,
                                  "poll_interval": 0.2}}},
                {"type": "probe", "name": "failover-events-within-bound", "provider": {
                    "type": "python", "module": "chaosext.alerts.probes",
                    "func": "failover_events_within",
                    "arguments": {"kind": "rds", "resource_id": "shop-db",
                                  "within_seconds": 120, "poll_interval": 0.2}}},
            ],
        }
        with Runner(Strategy.DEFAULT) as runner:
            journal = runner.run(experiment, settings={})
        received = receiver.received()

    assert journal["status"] == "completed", journal["run"]
    fault, check = (r["output"] for r in journal["run"])
    assert check["met"] is True and check["since"] == fault["injected_at"]
    injected = parse_time(fault["injected_at"]).timestamp()
    completed = truth(lab, injected, {"db-instance"})["Multi-AZ instance failover completed"]
    assert abs(check["latency_seconds"]["completed"] - (completed - injected)) <= TOLERANCE

    generic = [r["body"] for r in received if r["path"] == "/hook"]
    assert [b["event"] for b in generic] == ["run-started", "fault-injected", "recovered",
                                             "run-completed"]
    assert generic[2]["fault"]["rto_seconds"] == fault["rto_seconds"] is not None
    assert generic[3]["alerts"][0]["met"] is True
    slack = [r["body"] for r in received if r["path"] == "/slack"]
    assert len(slack) == 4 and f"{fault['rto_seconds']:.1f} s" in slack[2]["text"]
    assert lab_env["GAMEDAY_MYSQL_PASSWORD"] not in str(received)
