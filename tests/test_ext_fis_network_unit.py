"""The FIS network faults of chaosext.fis against botocore's Stubber (FIS and EC2 service models):
the templates they create, the impairment fault they return (window = the experiment's run),
bad input refused before any call, the blast-radius probe. Any call not queued fails the test."""
import json
from datetime import datetime, timedelta, timezone

import pytest
from aws_helpers import stubbed_client
from botocore.stub import ANY
from chaoslib.exceptions import InterruptExecution

import chaosext.fis.actions as fis_actions
import chaosext.fis.experiment as fis_experiment
import chaosext.fis.live as fis_live
import chaosext.fis.probes as fis_probes
import chaosext.recovery as recovery
from chaosext.errors import ActivityError, GuardrailRefused

CONFIG = {"aws_region": "us-east-1", "fis_role_arn": "arn:aws:iam::123456789012:role/fis"}
FAST = {"poll_interval": 0.01, "timeout": 5, "measure_data_plane": False}
T0 = datetime(2026, 12, 6, 15, 0, 0, tzinfo=timezone.utc)
TAGS = {"chaos:allowed": "true"}
LOSS_ARN = "arn:aws:ssm:us-east-1::document/AWSFIS-Run-Network-Packet-Loss-Sources"


@pytest.fixture
def fis(monkeypatch):
    with stubbed_client(monkeypatch, "fis", CONFIG, fis_actions, fis_experiment, fis_probes) as stubber:
        yield stubber


def _experiment(status, action_id="aws:network:disrupt-connectivity", name="DisruptConnectivity", ended=None):
    state = {"status": "completed" if status == "completed" else status}
    return {"experiment": {
        "id": "EXP1", "experimentTemplateId": "EXT1", "state": {"status": status}, "creationTime": T0,
        "startTime": T0, **({"endTime": ended} if ended else {}),
        "actions": {name: {"actionId": action_id, "state": state, "startTime": T0}}}}


def _queue_run(fis, expected_template, action_id="aws:network:disrupt-connectivity", name="DisruptConnectivity"):
    fis.add_response("create_experiment_template", {"experimentTemplate": {"id": "EXT1"}},
                     {"clientToken": ANY, "roleArn": CONFIG["fis_role_arn"], **expected_template})
    fis.add_response("start_experiment", _experiment("initiating", action_id, name),
                     {"clientToken": ANY, "experimentTemplateId": "EXT1"})
    fis.add_response("get_experiment", _experiment("running", action_id, name), {"id": "EXP1"})
    fis.add_response("get_experiment", _experiment("completed", action_id, name, T0 + timedelta(seconds=61)),
                     {"id": "EXP1"})


def test_disrupt_az_connectivity_creates_the_documented_template_and_returns_an_impairment(fis):
    expected = {
        "description": "Disrupt connectivity (all) of the subnets in us-east-1a for PT1M",
        "targets": {"Subnets": {"resourceType": "aws:ec2:subnet", "selectionMode": "ALL", "resourceTags": TAGS,
                                "parameters": {"availabilityZoneIdentifier": "us-east-1a"}}},
        "actions": {"DisruptConnectivity": {"actionId": "aws:network:disrupt-connectivity",
                                            "parameters": {"duration": "PT1M", "scope": "all"},
                                            "targets": {"Subnets": "Subnets"}}},
        "stopConditions": [{"source": "none"}]}
    _queue_run(fis, expected)
    result = fis_actions.disrupt_az_connectivity("us-east-1a", configuration=CONFIG, **FAST)
    assert (result["fault"], result["kind"], result["services"]) == (
        "fis-az-connectivity-disruption", "impairment", ["rds", "elasticache"])
    impairment = result["impairment"]
    assert (impairment["availability_zone"], impairment["blackhole"], impairment["partition"]) == (
        "us-east-1a", True, None)
    assert impairment["duration_seconds"] == 60 and impairment["direction"] == "both"
    assert impairment["flows"] == "every flow into and out of the subnets of us-east-1a"
    assert impairment["started_at"] == result["injected_at"]
    assert impairment["ended_at"] == "2026-12-06T15:01:01.000Z"  # the experiment's end
    assert result["fis"]["state"] == "completed" and fis_live.live_experiments() == {}


def test_the_ledger_carries_the_impairment_with_its_end(fis, monkeypatch, tmp_path):
    monkeypatch.setenv("GAMEDAY_RUN_DIR", str(tmp_path))
    _queue_run(fis, {"description": ANY, "targets": ANY, "actions": ANY, "stopConditions": ANY})
    fis_actions.disrupt_az_connectivity("us-east-1b", scope="availability-zone", configuration=CONFIG, **FAST)
    ledger = [json.loads(line) for line in (tmp_path / "faults.jsonl").read_text().splitlines()]
    injected = next(r for r in ledger if r["record"] == "injected")
    ended = next(r for r in ledger if r["record"] == "ended")
    assert injected["kind"] == "impairment" and injected["impairment"]["partition"] == "*"
    assert injected["impairment"]["started_at"] is not None
    assert ended["impairment"]["ended_at"] == "2026-12-06T15:01:01.000Z"


# numbers, or the strings an experiment's environment configuration gives (the -fis experiments)
@pytest.mark.parametrize("delay_ms, duration_seconds", [(200, 20), ("200", "20"), (200.0, "20.0")])
def test_az_application_slowdown_runs_the_latency_document_on_the_instances_of_the_az(
        fis, delay_ms, duration_seconds):
    document = {"DelayMilliseconds": "200", "JitterMilliseconds": "0", "Sources": "us-east-1a",
                "TrafficType": "egress", "FlowsPercent": "100", "DurationSeconds": "20", "InstallDependencies": "True"}
    expected = {
        "description": ANY, "stopConditions": [{"source": "none"}],
        "experimentOptions": {"emptyTargetResolutionMode": "skip"},
        "targets": {"Instances": {"resourceType": "aws:ec2:instance", "selectionMode": "ALL", "resourceTags": TAGS,
                                  "filters": [{"path": "Placement.AvailabilityZone", "values": ["us-east-1a"]},
                                              {"path": "State.Name", "values": ["running"]}]}},
        "actions": {"LatencyForEC2": {
            "actionId": "aws:ssm:send-command", "targets": {"Instances": "Instances"},
            "parameters": {"documentArn": "arn:aws:ssm:us-east-1::document/AWSFIS-Run-Network-Latency-Sources",
                           "documentParameters": json.dumps(document), "duration": "PT60S"}}}}
    _queue_run(fis, expected, "aws:ssm:send-command", "LatencyForEC2")
    result = fis_actions.az_application_slowdown("us-east-1a", delay_ms=delay_ms, duration_seconds=duration_seconds,
                                                 configuration=CONFIG, **FAST)
    impairment = result["impairment"]
    assert (impairment["delay_ms"], impairment["direction"], impairment["duration_seconds"]) == (200, "to", 20.0)
    assert result["fault"] == "fis-az-application-slowdown"


def test_cross_az_traffic_slowdown_sends_loss_toward_the_other_azs(fis):
    document = {"LossPercent": "15", "Sources": "us-east-1b,us-east-1c", "TrafficType": "egress",
                "FlowsPercent": "100", "DurationSeconds": "1800", "InstallDependencies": "True"}
    expected = {"description": ANY, "stopConditions": ANY, "experimentOptions": ANY, "targets": ANY,
                "actions": {"PacketLossForEC2": {
                    "actionId": "aws:ssm:send-command", "targets": {"Instances": "Instances"},
                    "parameters": {"documentArn": LOSS_ARN,
                                   "documentParameters": json.dumps(document), "duration": "PT1800S"}}}}
    _queue_run(fis, expected, "aws:ssm:send-command", "PacketLossForEC2")
    result = fis_actions.cross_az_traffic_slowdown(
        "us-east-1a", source_availability_zones=["us-east-1a", "us-east-1b", "us-east-1c"],
        configuration=CONFIG, **FAST)
    assert result["impairment"]["loss_percent"] == 15
    assert result["impairment"]["flows"] == ("egress of the shop's instances in us-east-1a toward "
                                             "us-east-1b, us-east-1c (15 % loss)")


@pytest.mark.parametrize("call, words", [
    (lambda: fis_actions.disrupt_az_connectivity("us-east-1a", duration="PT30S", configuration=CONFIG),
     "between PT1M and PT12H"),
    (lambda: fis_actions.disrupt_az_connectivity("us-east-1a", duration="PT13H", configuration=CONFIG),
     "between PT1M and PT12H"),
    (lambda: fis_actions.disrupt_az_connectivity("us-east-1a", scope="s3", configuration=CONFIG),
     "scope 's3'"),
    (lambda: fis_actions.az_application_slowdown("us-east-1a", delay_ms=0, configuration=CONFIG),
     "delay_ms must be a number above 0"),
    (lambda: fis_actions.az_application_slowdown("us-east-1a", delay_ms="slow", configuration=CONFIG),
     "delay_ms must be a number above 0, not 'slow'"),
    (lambda: fis_actions.cross_az_traffic_slowdown("us-east-1a", duration_seconds="nan", configuration=CONFIG),
     "duration_seconds must be a number above 0, not 'nan'"),
    (lambda: fis_actions.cross_az_traffic_slowdown("us-east-1a", loss_percent=True, configuration=CONFIG),
     "loss_percent must be a number above 0, not True"),
    (lambda: fis_actions.az_application_slowdown("us-east-1a", duration_seconds=50_000, configuration=CONFIG),
     "more than FIS's 12 h"),
    (lambda: fis_actions.cross_az_traffic_slowdown("us-east-1a", loss_percent=150, configuration=CONFIG),
     "loss_percent 150 is more than 100"),
    (lambda: fis_actions.cross_az_traffic_slowdown("us-east-1a", source_availability_zones=["us-east-1a"],
                                                   configuration=CONFIG), "no other AZ"),
])
def test_bad_input_is_one_line_before_any_aws_call(fis, call, words):
    with pytest.raises(ActivityError, match=words) as refused:
        call()
    assert "\n" not in str(refused.value)


def test_guardrail_refuses_subnet_tags_without_the_allow_tag_before_any_call(fis):
    with pytest.raises(GuardrailRefused, match="does not carry the allow tag chaos:allowed=true"):
        fis_actions.disrupt_az_connectivity("us-east-1a", tags={"team": "shop"}, configuration=CONFIG, **FAST)


def test_dry_run_shows_the_impairment_plan_and_creates_nothing(fis):
    result = fis_actions.az_application_slowdown("us-east-1b", delay_ms=300, duration_seconds=90,
                                                 configuration=dict(CONFIG, gameday_dry_run=True))
    assert result["dry_run"] is True and "LatencyForEC2" in result["would"]
    assert result["impairment"]["availability_zone"] == "us-east-1b"
    assert result["impairment"]["flows"] == "egress of the shop's instances in us-east-1b toward us-east-1b (+300 ms)"
    assert result["impairment"]["started_at"] is None


def test_sigterm_during_the_impairment_stops_the_experiment_which_lifts_it(fis, monkeypatch):
    fis.add_response("create_experiment_template", {"experimentTemplate": {"id": "EXT1"}}, None)
    fis.add_response("start_experiment", _experiment("initiating"), None)
    fis.add_response("get_experiment", _experiment("running"), {"id": "EXP1"})
    fis.add_response("get_experiment", _experiment("running"), {"id": "EXP1"})
    fis.add_response("stop_experiment", _experiment("stopping"), {"id": "EXP1"})

    def interrupted(_seconds):
        raise InterruptExecution("SIGTERM")
    monkeypatch.setattr(recovery.time, "sleep", interrupted)
    with pytest.raises(InterruptExecution):
        fis_actions.disrupt_az_connectivity("us-east-1a", configuration=CONFIG, **FAST)
    assert fis_live.live_experiments() == {}


def test_blast_radius_lists_the_tagged_subnets_and_running_instances_of_the_az(monkeypatch):
    zone = [{"Name": "tag:chaos:allowed", "Values": ["true"]}, {"Name": "availability-zone", "Values": ["us-east-1a"]}]
    with stubbed_client(monkeypatch, "ec2", CONFIG, fis_probes) as ec2:
        ec2.add_response("describe_subnets", {"Subnets": [
            {"SubnetId": "subnet-0a", "CidrBlock": "10.0.0.0/20", "VpcId": "vpc-1", "AvailabilityZone": "us-east-1a"}]},
            {"Filters": zone})
        ec2.add_response("describe_instances", {"Reservations": [{"Instances": [
            {"InstanceId": "i-0a", "SubnetId": "subnet-0a"}]}]},
            {"Filters": zone + [{"Name": "instance-state-name", "Values": ["running"]}]})
        radius = fis_probes.network_blast_radius("us-east-1a", configuration=CONFIG)
    assert radius["subnets"] == [{"subnet_id": "subnet-0a", "cidr": "10.0.0.0/20", "vpc_id": "vpc-1"}]
    assert radius["instances"] == [{"instance_id": "i-0a", "subnet_id": "subnet-0a"}]


def test_the_load_bound_counts_the_impairment_s_length_before_its_recovery_wait():
    from chaosext import thresholds
    method = [{"type": "action", "name": "cut", "provider": {
        "type": "python", "module": "chaosext.fis.actions", "func": "disrupt_az_connectivity",
        "arguments": {"duration": "PT10M"}}}]
    slow = [{"type": "action", "name": "slow", "provider": {
        "type": "python", "module": "chaosext.fis.actions", "func": "az_application_slowdown",
        "arguments": {"duration_seconds": 120}}}]
    cut, base = thresholds.experiment_seconds({"method": method}), thresholds.experiment_seconds(
        {"method": [dict(method[0], provider=dict(method[0]["provider"], arguments={"duration": "PT1M"}))]})
    assert cut - base == 540
    assert thresholds.experiment_seconds({"method": slow}) >= 120


class _PlanContext:
    """The preflight's view of one FIS network action: resolved arguments, the primaries' AZs read."""

    def __init__(self, func, arguments, primary_azs=None):
        self.actions = [{"phase": "method", "func": f"chaosext.fis.actions.{func}", "arguments": arguments,
                         "background": False}]
        self.facts = {"primary_azs": primary_azs or {}}
        self.spec, self.run_id = {}, "run-1"

    def setting(self, key, default=None):
        return {"db_instance_id": "shop-db", "replication_group_id": "shop-cache"}.get(key, default)

    def load_arguments(self):
        return None


def test_the_preflight_plans_each_fis_network_fault_or_fails_on_its_bad_input():
    from gameday.preflight import plan as preflight_plan
    from gameday.preflight.table import FAIL, INFO
    both_in_b = {"shop-db": "us-east-1b", "shop-cache": "us-east-1b"}
    cut = _PlanContext("disrupt_az_connectivity", {"availability_zone": "primary", "duration": "PT1M",
                                                   "scope": "all"}, both_in_b)
    [row] = [r for r in preflight_plan.plan_rows(cut, "http://shop") if r.item == "impairment 1"]
    assert row.status == INFO
    assert row.detail.startswith("fis-az-connectivity-disruption on us-east-1b now (the AZ of the primaries "
                                 "of shop-db and shop-cache, resolved again when it starts): every flow into "
                                 "and out of the tagged subnets of us-east-1b for PT1M, through AWS FIS")
    slow = _PlanContext("az_application_slowdown", {"availability_zone": "us-east-1a", "delay_ms": "200",
                                                    "duration_seconds": "20"})
    row = preflight_plan._impairment_row(1, slow.actions[0], slow)
    assert row.detail.startswith("fis-az-application-slowdown on us-east-1a: +200 ms on what the tagged "
                                 "instances in us-east-1a send toward us-east-1a for 20 s")
    unread = _PlanContext("cross_az_traffic_slowdown", {"availability_zone": "primary", "loss_percent": "15",
                                                        "duration_seconds": "20"})
    row = preflight_plan._impairment_row(1, unread.actions[0], unread)
    assert "on an AZ to resolve" in row.detail and "15 % loss on what the tagged instances in that AZ" in row.detail
    for func, arguments, words in (
            ("disrupt_az_connectivity", {"duration": "PT30S"}, "between PT1M and PT12H"),
            ("az_application_slowdown", {"duration_seconds": "abc"}, "duration_seconds must be a number above 0"),
            ("cross_az_traffic_slowdown", {"loss_percent": "150"}, "loss_percent 150 is more than 100")):
        bad = _PlanContext(func, arguments, both_in_b)
        row = preflight_plan._impairment_row(1, bad.actions[0], bad)
        assert row.status == FAIL and words in row.detail, row.detail
