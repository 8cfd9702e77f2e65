"""Replica lag of an AWS Multi-AZ DB cluster from CloudWatch (gameday/lag_cloudwatch.py), with
the CloudWatch client under botocore's Stubber: the minutes written once each, -1 as "not
replicating", a denied call said once, the sampler's last reading after the run, the summary."""
from datetime import datetime, timezone

import pytest
from botocore.stub import ANY

from aws_helpers import stubbed_client
from gameday import lag_cloudwatch, lag_sampler, safety
from gameday.report.replica_lag import summarize_lag
from groundfloor import run_files
from groundfloor.jsonlines import records

CONFIG = {"aws_region": "us-east-1"}
MEMBERS = {"shop-db-cluster-instance-1": "us-east-1a", "shop-db-cluster-instance-2": "us-east-1b"}
START = 1795672800.0  # a whole minute


def minute(n: int) -> datetime:
    return datetime.fromtimestamp(START + 60 * n, timezone.utc)


def expect(stubber, member: str, points, start=START):
    """One GetMetricStatistics for `member`'s ReplicaLag, answered with `points` (minute, max)."""
    stubber.add_response("get_metric_statistics", {
        "Label": "ReplicaLag",
        "Datapoints": [{"Timestamp": minute(n), "Maximum": value, "Unit": "Seconds"} for n, value in points]},
        {"Namespace": "AWS/RDS", "MetricName": "ReplicaLag",
         "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": member}],
         "StartTime": datetime.fromtimestamp(start, timezone.utc), "EndTime": ANY,
         "Period": 60, "Statistics": ["Maximum"]})


@pytest.fixture
def reader(monkeypatch, tmp_path):
    said = []
    with stubbed_client(monkeypatch, "cloudwatch", CONFIG, lag_cloudwatch) as stubber:
        lag = lag_cloudwatch.lag_reader({"shop-db-cluster": {"writer": "shop-db-cluster-instance-1",
                                                             "zones": MEMBERS}},
                                        CONFIG, {}, tmp_path, START + 12, say=said.append)
        yield lag, stubber, said, tmp_path / run_files.REPLICA_LAG


def test_each_members_minutes_are_written_once_in_the_lab_samplers_shape(reader):
    lag, stubber, said, out = reader
    expect(stubber, "shop-db-cluster-instance-1", [])  # the writer publishes no lag
    expect(stubber, "shop-db-cluster-instance-2", [(0, 0.0), (1, 4.0)])
    expect(stubber, "shop-db-cluster-instance-1", [(2, 1.0)])  # a reader after the failover
    expect(stubber, "shop-db-cluster-instance-2", [(0, 0.0), (1, 4.0), (2, -1.0)])
    assert lag.sample(now=START + 130) == 2
    assert lag.sample(now=START + 190) == 2  # minutes 0 and 1 of instance-2 not written again
    lines = records(str(out))
    assert [(r["member"][-1], r["t"] - START, r["lag_seconds"]) for r in lines] == [
        ("2", 0, 0.0), ("2", 60, 4.0), ("1", 120, 1.0), ("2", 120, None)]
    assert lines[-1]["why"] == "ReplicaLag -1.0: replication not running"
    assert {r["source"] for r in lines} == {"cloudwatch"} and lines[0]["az"] == "us-east-1b"
    assert said == []


def test_a_denied_reading_writes_nothing_and_is_said_once(reader):
    lag, stubber, said, out = reader
    for _ in range(2):
        stubber.add_client_error("get_metric_statistics", "AccessDenied", "not authorized to perform "
                                 "cloudwatch:GetMetricStatistics", http_status_code=403)
    assert lag.sample(now=START + 70) == 0 and lag.sample(now=START + 130) == 0
    assert not out.exists()
    assert len(said) == 1 and "AccessDenied" in said[0] and "CloudWatch" in said[0]


def test_the_sampler_reads_at_the_start_and_once_more_after_the_run(reader):
    lag, stubber, said, out = reader
    expect(stubber, "shop-db-cluster-instance-1", [])
    expect(stubber, "shop-db-cluster-instance-2", [(0, 2.0)])
    expect(stubber, "shop-db-cluster-instance-1", [])
    expect(stubber, "shop-db-cluster-instance-2", [(0, 2.0), (1, 9.0)])  # the run's last minute
    with lag_sampler.sampling("aws", None, out.parent, aws=lag) as sampled:
        assert sampled
    summary = summarize_lag(str(out.parent))
    assert summary["max_lag_seconds"] == 9.0 and "CloudWatch metric ReplicaLag" in summary["source"]
    instance = summary["readers"]["shop-db-cluster-instance-2"]
    assert instance["samples"] == 2 and instance["max_transactions_behind"] is None


def test_no_reader_without_a_db_cluster(tmp_path):
    assert lag_cloudwatch.lag_reader({}, CONFIG, {}, tmp_path, START) is None
    assert safety.aws_lag_reader({}, {}, "run", {"clusters": {}}, tmp_path, START) is None
    with lag_sampler.sampling("aws", None, tmp_path, aws=None) as sampled:
        assert sampled is False


def test_a_window_is_widened_to_whole_cloudwatch_periods_and_a_boundary_stays_put():
    from groundfloor.timefmt import period_boundary
    assert period_boundary(START + 1, 60, up=False) == minute(0)
    assert period_boundary(START + 1, 60, up=True) == minute(1)
    assert period_boundary(START, 60, up=True) == period_boundary(START, 60, up=False) == minute(0)
    assert period_boundary(minute(2), 300, up=True) == minute(5)  # a datetime too, any period
