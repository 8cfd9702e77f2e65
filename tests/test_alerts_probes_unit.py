"""Alert probes against botocore's Stubber: parameters are checked against the real service
models (RDS, ElastiCache, CloudWatch) and any call not queued fails the test."""
import json
from datetime import datetime, timedelta, timezone

import pytest
from botocore.stub import ANY, Stubber

import chaosext.alerts.probes as probes
from chaosext.alerts import faults as fault_log
from chaosext.aws import aws_client
from chaosext.errors import ActivityError

CONFIG = {"aws_region": "us-east-1"}
T0 = datetime(2026, 11, 26, 6, 0, 0, tzinfo=timezone.utc)
SINCE = "2026-11-26T06:00:00Z"
TOPIC = "arn:aws:sns:us-east-1:123456789012:gameday-alerts"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def _clean_fault_log():
    fault_log.forget()
    yield
    fault_log.forget()


@pytest.fixture
def clients(monkeypatch):
    """One stubbed client per service, handed out by the probes' client factory."""
    made = {name: aws_client(name, CONFIG) for name in ("rds", "elasticache", "cloudwatch")}
    stubs = {name: Stubber(client) for name, client in made.items()}
    monkeypatch.setattr(probes, "aws_client", lambda service, *a, **k: made[service])
    for stub in stubs.values():
        stub.activate()
    yield stubs
    for stub in stubs.values():
        stub.assert_no_pending_responses()
        stub.deactivate()


def rds_events(*items):
    return {"Events": [{"SourceIdentifier": "shop-db", "SourceType": "db-instance",
                        "Message": message, "Date": at(seconds), "EventCategories": ["failover"]}
                       for seconds, message in items]}


def expect_rds_events(stub, *items, skew=0.0):
    stub.add_response("describe_events", rds_events(*items),
                      {"SourceType": "db-instance", "SourceIdentifier": "shop-db",
                       "StartTime": at(-skew)})


# -- failover_events_within ------------------------------------------------------------------
def test_rds_failover_events_met_with_ids_and_latency_from_the_fault(clients):
    expect_rds_events(clients["rds"], (0.4, "Multi-AZ instance failover started."),
                      (3.0, "DB instance restarted"), (5.5, "Multi-AZ instance failover completed"))
    result = probes.failover_events_within("rds", "shop-db", since=SINCE, within_seconds=60,
                                           configuration=CONFIG)
    assert result["met"] is True and result["missing"] == []
    assert result["latency_seconds"] == {"started": 0.4, "completed": 5.5}
    assert result["found"]["started"]["event_id"] == "RDS-EVENT-0013"
    assert result["found"]["completed"]["event_id"] == "RDS-EVENT-0049"
    assert [e["event_id"] for e in result["events"]] == ["RDS-EVENT-0013", "RDS-EVENT-0006",
                                                         "RDS-EVENT-0049"]


def test_rds_expectation_by_event_id_matches_the_inferred_id(clients):
    expect_rds_events(clients["rds"], (2.0, "Multi-AZ failover to standby complete - DNS may "
                                            "take several minutes."))
    result = probes.failover_events_within("rds", "shop-db", since=SINCE,
                                           expect=["RDS-EVENT-0015"], configuration=CONFIG)
    assert result["met"] is True and result["latency_seconds"] == {"RDS-EVENT-0015": 2.0}


def test_missing_completion_is_not_met_without_waiting(clients):
    expect_rds_events(clients["rds"], (0.4, "Multi-AZ instance failover started."))
    result = probes.failover_events_within("rds", "shop-db", since=SINCE, wait=False,
                                           configuration=CONFIG)
    assert result["met"] is False and result["missing"] == ["completed"]


def test_completion_after_the_bound_is_late_and_not_met(clients):
    expect_rds_events(clients["rds"], (0.4, "Multi-AZ instance failover started."),
                      (95.0, "Multi-AZ instance failover completed"))
    result = probes.failover_events_within("rds", "shop-db", since=SINCE, within_seconds=60,
                                           configuration=CONFIG)
    assert result["met"] is False
    assert result["late"] == ["completed"] and result["missing"] == ["completed"]
    assert result["latency_seconds"]["completed"] == 95.0


def test_an_earlier_failover_just_before_the_window_does_not_satisfy_this_one(clients):
    expect_rds_events(clients["rds"], (-0.6, "Multi-AZ instance failover completed"),
                      (0.3, "Multi-AZ instance failover started."),
                      (70.0, "Multi-AZ instance failover completed"), skew=1.0)
    result = probes.failover_events_within("rds", "shop-db", since=SINCE, within_seconds=60,
                                           clock_skew_seconds=1.0, configuration=CONFIG)
    assert result["met"] is False and result["late"] == ["completed"]
    assert result["latency_seconds"]["completed"] == 70.0


def test_event_within_the_allowed_clock_skew_counts(clients):
    expect_rds_events(clients["rds"], (-0.4, "Multi-AZ instance failover started."),
                      (3.0, "Multi-AZ instance failover completed"), skew=1.0)
    result = probes.failover_events_within("rds", "shop-db", since=SINCE, clock_skew_seconds=1,
                                           configuration=CONFIG)
    assert result["met"] is True and result["latency_seconds"]["started"] == -0.4


def test_failover_not_attempted_makes_the_check_unmet(clients):
    expect_rds_events(clients["rds"], (0.2, "Amazon RDS is not attempting a requested failover "
                                            "because a failover recently occurred on the DB "
                                            "instance."))
    result = probes.failover_events_within("rds", "shop-db", since=SINCE, expect=["shutdown"],
                                           wait=False, configuration=CONFIG)
    assert result["met"] is False
    assert [e["event_id"] for e in result["refusals"]] == ["RDS-EVENT-0034"]


def test_waits_until_the_completion_event_appears(clients):
    now = datetime.now(timezone.utc).replace(microsecond=0)  # a window that is still open
    started = (0.4, "Multi-AZ instance failover started.")
    completed = (5.0, "Multi-AZ instance failover completed")
    for items in ([started], [started, completed]):
        clients["rds"].add_response("describe_events", {"Events": [
            {"SourceIdentifier": "shop-db", "Message": m, "Date": now + timedelta(seconds=s)}
            for s, m in items]}, {"SourceType": "db-instance", "SourceIdentifier": "shop-db",
                                  "StartTime": now})
    result = probes.failover_events_within("rds", "shop-db", since=now.isoformat(),
                                           within_seconds=60, poll_interval=0.05,
                                           configuration=CONFIG)
    assert result["met"] is True and result["latency_seconds"]["completed"] == 5.0


def test_elasticache_failover_events_of_group_and_nodes(clients):
    stub = clients["elasticache"]
    stub.add_response("describe_replication_groups", {"ReplicationGroups": [{
        "ReplicationGroupId": "shop-cache", "Status": "available",
        "MemberClusters": ["shop-cache-001", "shop-cache-002"]}]},
        {"ReplicationGroupId": "shop-cache"})
    stub.add_response("describe_events", {"Events": [
        {"SourceIdentifier": "shop-cache", "SourceType": "replication-group", "Date": at(0.1),
         "Message": "Test Failover API called for node group 0001"},
        {"SourceIdentifier": "other-cache", "SourceType": "replication-group", "Date": at(0.2),
         "Message": "Failover from primary node other-001 to replica node other-002 completed"},
        {"SourceIdentifier": "shop-cache", "SourceType": "replication-group", "Date": at(2.5),
         "Message": "Failover from primary node shop-cache-001 to replica node shop-cache-002 "
                    "completed"},
        {"SourceIdentifier": "shop-cache-001", "SourceType": "cache-cluster", "Date": at(9.0),
         "Message": "Finished recovery for cache nodes 0001"}]}, {"StartTime": T0})
    result = probes.failover_events_within(
        "elasticache", "shop-cache", since=SINCE,
        expect=["started", "completed", "recovery-completed"], configuration=CONFIG)
    assert result["met"] is True
    assert result["latency_seconds"] == {"started": 0.1, "completed": 2.5,
                                         "recovery-completed": 9.0}
    assert "other-cache" not in {e["source"] for e in result["events"]}


def test_window_starts_at_the_last_fault_this_run_injected(clients):
    fault_log.remember({"fault": "rds-force-failover", "target": "shop-db",
                        "injected_at": "2026-11-26T06:00:00.000Z"})
    expect_rds_events(clients["rds"], (1.0, "Multi-AZ instance failover started."),
                      (4.0, "Multi-AZ instance failover completed"))
    result = probes.failover_events_within("rds", "shop-db", configuration=CONFIG)
    assert result["met"] is True and result["since"] == "2026-11-26T06:00:00.000Z"


def test_fault_result_argument_anchors_the_window(clients):
    expect_rds_events(clients["rds"], (1.0, "Multi-AZ instance failover started."),
                      (4.0, "Multi-AZ instance failover completed"))
    result = probes.failover_events_within(
        "rds", "shop-db", fault={"injected_at": SINCE, "target": "shop-db"},
        configuration=CONFIG)
    assert result["met"] is True


@pytest.mark.parametrize("kwargs, words", [
    ({"kind": "dynamodb", "resource_id": "x", "since": SINCE}, "use rds or elasticache"),
    ({"kind": "rds", "resource_id": "x", "since": SINCE, "expect": ["exploded"]},
     "unknown rds event 'exploded'"),
    ({"kind": "rds", "resource_id": "x", "since": "yesterday"}, "not an ISO-8601 time"),
    ({"kind": "rds", "resource_id": "x"}, "no start for the window"),
    ({"kind": "rds", "resource_id": "x", "fault": {"fault": "x"}}, "injected_at"),
    ({"kind": "rds", "resource_id": "x", "since": SINCE, "source_type": "db-snapshot"},
     "unknown RDS source type"),
])
def test_bad_arguments_give_one_clear_error_and_call_nothing(clients, kwargs, words):
    with pytest.raises(ActivityError, match=words):
        probes.failover_events_within(configuration=CONFIG, **kwargs)


def test_a_resource_the_experiment_does_not_name_is_skipped_without_any_call(clients):
    result = probes.failover_events_within("rds", "", since=SINCE, source_type="db-cluster",
                                           expect=["started", "completed"], configuration=CONFIG)
    assert result["met"] is None and result["skipped"] == "no resource configured"
    assert result["expected"] == ["started", "completed"] and result["events"] == []


# -- cloudwatch_alarm_fired ------------------------------------------------------------------
def history_item(seconds, old, new, reason="Threshold Crossed"):
    return {"AlarmName": "shop-db-cpu", "AlarmType": "MetricAlarm", "Timestamp": at(seconds),
            "HistoryItemType": "StateUpdate",
            "HistorySummary": f"Alarm updated from {old} to {new}",
            "HistoryData": json.dumps({"version": "1.0", "oldState": {"stateValue": old},
                                       "newState": {"stateValue": new, "stateReason": reason}})}


def history_params(**extra):
    return {"AlarmName": "shop-db-cpu", "HistoryItemType": "StateUpdate",
            "AlarmTypes": ["MetricAlarm", "CompositeAlarm"], "StartDate": T0,
            "EndDate": at(600), "ScanBy": "TimestampAscending", "MaxRecords": 100, **extra}


def test_alarm_fired_when_history_shows_a_move_to_alarm(clients):
    stub = clients["cloudwatch"]
    stub.add_response("describe_alarm_history",
                      {"AlarmHistoryItems": [history_item(30, "OK", "ALARM")],
                       "NextToken": "page-2"}, history_params())
    stub.add_response("describe_alarm_history",
                      {"AlarmHistoryItems": [history_item(300, "ALARM", "OK")]},
                      history_params(NextToken="page-2"))
    result = probes.cloudwatch_alarm_fired("shop-db-cpu", since=SINCE,
                                           until="2026-11-26T06:10:00Z", configuration=CONFIG)
    assert result["fired"] is True
    assert result["first_at"] == "2026-11-26T06:00:30.000Z" and result["latency_seconds"] == 30
    assert [(t["from"], t["to"]) for t in result["transitions"]] == [("OK", "ALARM"),
                                                                     ("ALARM", "OK")]
    assert result["transitions"][0]["reason"] == "Threshold Crossed"


def test_alarm_not_fired_when_it_only_went_to_ok(clients):
    clients["cloudwatch"].add_response(
        "describe_alarm_history",
        {"AlarmHistoryItems": [history_item(30, "INSUFFICIENT_DATA", "OK")]}, history_params())
    result = probes.cloudwatch_alarm_fired("shop-db-cpu", since=SINCE,
                                           until="2026-11-26T06:10:00Z", configuration=CONFIG)
    assert result["fired"] is False and result["first_at"] is None


def test_missing_alarm_permission_is_one_sentence(clients):
    clients["cloudwatch"].add_client_error("describe_alarm_history", "AccessDenied",
                                           "not authorized", expected_params=history_params())
    with pytest.raises(ActivityError, match="DescribeAlarmHistory on alarm shop-db-cpu refused: "
                                            "the credentials are not allowed"):
        probes.cloudwatch_alarm_fired("shop-db-cpu", since=SINCE,
                                      until="2026-11-26T06:10:00Z", configuration=CONFIG)


# -- sns_topic_published ---------------------------------------------------------------------
def metric_params(start, end):
    return {"Namespace": "AWS/SNS", "MetricName": "NumberOfMessagesPublished",
            "Dimensions": [{"Name": "TopicName", "Value": "gameday-alerts"}],
            "StartTime": start, "EndTime": end, "Period": 60, "Statistics": ["Sum"]}


def test_topic_published_sums_the_datapoints_over_whole_minutes(clients):
    clients["cloudwatch"].add_response("get_metric_statistics", {
        "Label": "NumberOfMessagesPublished", "Datapoints": [
            {"Timestamp": at(120), "Sum": 1.0, "Unit": "Count"},
            {"Timestamp": at(60), "Sum": 2.0, "Unit": "Count"}]},
        metric_params(at(0), at(300)))
    result = probes.sns_topic_published(TOPIC, since="2026-11-26T06:00:20Z",
                                        until="2026-11-26T06:04:10Z", configuration=CONFIG)
    assert result["published"] is True and result["messages"] == 3.0
    assert [p["t"] for p in result["datapoints"]] == ["2026-11-26T06:01:00.000Z",
                                                       "2026-11-26T06:02:00.000Z"]


def test_topic_without_messages_is_not_published(clients):
    clients["cloudwatch"].add_response("get_metric_statistics",
                                       {"Label": "x", "Datapoints": []},
                                       metric_params(at(0), at(600)))
    result = probes.sns_topic_published(TOPIC, since=SINCE, until="2026-11-26T06:10:00Z",
                                        configuration=CONFIG)
    assert result["published"] is False and result["messages"] == 0


@pytest.mark.parametrize("arn", ["gameday-alerts", "arn:aws:sqs:us-east-1:1:q"])
def test_topic_arn_must_be_an_sns_arn(clients, arn):
    with pytest.raises(ActivityError, match="is not an SNS topic ARN"):
        probes.sns_topic_published(arn, since=SINCE, configuration=CONFIG)


def test_metric_period_must_be_whole_minutes(clients):
    with pytest.raises(ActivityError, match="multiple of 60"):
        probes.sns_topic_published(TOPIC, since=SINCE, period=90, configuration=CONFIG)


def test_alert_probes_window_defaults_to_the_last_minutes_without_a_fault(clients):
    clients["cloudwatch"].add_response("describe_alarm_history", {"AlarmHistoryItems": []},
                                       {**history_params(), "StartDate": ANY, "EndDate": ANY})
    result = probes.cloudwatch_alarm_fired("shop-db-cpu", window_seconds=120,
                                           configuration=CONFIG)
    span = (datetime.fromisoformat(result["until"].replace("Z", "+00:00"))
            - datetime.fromisoformat(result["since"].replace("Z", "+00:00")))
    assert result["fired"] is False and abs(span.total_seconds() - 120) < 2
