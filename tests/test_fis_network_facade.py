"""FIS network actions and the lab's subnets through real boto3 clients against the facade's HTTP
server, backed by the in-memory double of the Lab: EC2/RDS/ElastiCache subnet reads agree,
templates are accepted or refused as FIS would, and the actions ask the lab's network layer for
the right impairment and lift it when the experiment ends. The real network layer is in
test_fis_network_lab.py."""
import json
import random
import threading

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from test_fis_facade import FisFakeLab, run_to_end

from groundfloor.supervisor import poll_until
from woolab.facade import server

ROLE = "arn:aws:iam::123456789012:role/fis"
TAGS = {"chaos:allowed": "true"}
LATENCY = "arn:aws:ssm:us-east-1::document/AWSFIS-Run-Network-Latency-Sources"
LOSS = "arn:aws:ssm:us-east-1::document/AWSFIS-Run-Network-Packet-Loss-Sources"


@pytest.fixture
def lab(tmp_path):
    return FisFakeLab(tmp_path)


@pytest.fixture
def clients(lab):
    httpd = server.serve(lab)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    made = {name: boto3.client(name, endpoint_url=url, region_name="us-east-1",
                               config=Config(retries={"max_attempts": 1}))
            for name in ("fis", "ec2", "rds", "elasticache")}
    yield made
    httpd.shutdown()
    httpd.server_close()


def _subnet_target(az="us-east-1a", tags=None):
    return {"resourceType": "aws:ec2:subnet", "resourceTags": tags or TAGS, "selectionMode": "ALL",
            "parameters": {"availabilityZoneIdentifier": az}}


def _disrupt(scope="all", duration="PT1M"):
    return {"actionId": "aws:network:disrupt-connectivity", "parameters": {"duration": duration, "scope": scope},
            "targets": {"Subnets": "subnets"}}


def _send_command(document=LATENCY, duration="PT1M", **parameters):
    given = {"DelayMilliseconds": "200", "Sources": "us-east-1a", "TrafficType": "egress", "FlowsPercent": "100",
             "DurationSeconds": "1", **parameters}
    if document == LOSS:
        given.pop("DelayMilliseconds")
        given.setdefault("LossPercent", "15")
    return {"actionId": "aws:ssm:send-command", "targets": {"Instances": "instances"},
            "parameters": {"documentArn": document, "documentParameters": json.dumps(given), "duration": duration}}


def _instances(az="us-east-1a"):
    return {"resourceType": "aws:ec2:instance", "resourceTags": {"AZApplicationSlowdown": "LatencyForEC2"},
            "selectionMode": "ALL", "filters": [{"path": "Placement.AvailabilityZone", "values": [az]}]}


def _create(fis, targets, actions):
    return fis.create_experiment_template(clientToken=str(random.random()), description="network", roleArn=ROLE,
                                          stopConditions=[{"source": "none"}], targets=targets,
                                          actions=actions)["experimentTemplate"]["id"]


def _refusal(fis, targets, actions) -> str:
    with pytest.raises(ClientError) as refused:
        _create(fis, targets, actions)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert not fis.list_experiment_templates()["experimentTemplates"]  # nothing was stored
    return refused.value.response["Error"]["Message"]


def test_subnets_are_one_per_az_and_agree_with_the_db_and_cache_subnet_groups(clients):
    ec2, rds, cache = clients["ec2"], clients["rds"], clients["elasticache"]
    subnets = ec2.describe_subnets()["Subnets"]
    assert sorted(s["AvailabilityZone"] for s in subnets) == ["us-east-1a", "us-east-1b", "us-east-1c"]
    by_id = {s["SubnetId"]: s["AvailabilityZone"] for s in subnets}
    db_group = rds.describe_db_subnet_groups()["DBSubnetGroups"][0]
    assert {s["SubnetIdentifier"]: s["SubnetAvailabilityZone"]["Name"] for s in db_group["Subnets"]} == by_id
    instance = rds.describe_db_instances()["DBInstances"][0]
    assert instance["DBSubnetGroup"]["DBSubnetGroupName"] == db_group["DBSubnetGroupName"]
    assert {instance["AvailabilityZone"], instance["SecondaryAvailabilityZone"]} <= set(by_id.values())
    cache_group = cache.describe_cache_subnet_groups()["CacheSubnetGroups"][0]
    assert {s["SubnetIdentifier"] for s in cache_group["Subnets"]} == set(by_id)
    node = cache.describe_cache_clusters()["CacheClusters"][0]
    assert node["CacheSubnetGroupName"] == cache_group["CacheSubnetGroupName"]


def test_describe_subnets_filters_by_tag_and_az_and_refuses_unknown_ids_and_filters(clients):
    ec2 = clients["ec2"]
    found = ec2.describe_subnets(Filters=[{"Name": "tag:chaos:allowed", "Values": ["true"]},
                                          {"Name": "availability-zone", "Values": ["us-east-1b"]}])["Subnets"]
    assert [s["AvailabilityZone"] for s in found] == ["us-east-1b"]
    assert {"Key": "chaos:allowed", "Value": "true"} in found[0]["Tags"]
    assert ec2.describe_subnets(Filters=[{"Name": "tag:chaos:allowed", "Values": ["false"]}])["Subnets"] == []
    wildcard = ec2.describe_subnets(Filters=[{"Name": "tag:Name", "Values": ["shop-private-*"]}])["Subnets"]
    assert len(wildcard) == 3
    assert ec2.describe_subnets(SubnetIds=[found[0]["SubnetId"]])["Subnets"][0]["SubnetId"] == found[0]["SubnetId"]
    with pytest.raises(ClientError) as missing:
        ec2.describe_subnets(SubnetIds=["subnet-0123456789abcdef0"])
    assert missing.value.response["Error"]["Code"] == "InvalidSubnetID.NotFound"
    with pytest.raises(ClientError) as bad:
        ec2.describe_subnets(Filters=[{"Name": "colour", "Values": ["blue"]}])
    assert bad.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_describe_instances_shows_one_shop_instance_per_az(clients):
    reservations = clients["ec2"].describe_instances(
        Filters=[{"Name": "tag:AZApplicationSlowdown", "Values": ["LatencyForEC2"]},
                 {"Name": "availability-zone", "Values": ["us-east-1c"]}])["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    assert [(i["Placement"]["AvailabilityZone"], i["State"]["Name"]) for i in instances] == [("us-east-1c", "running")]
    subnet = clients["ec2"].describe_subnets(SubnetIds=[instances[0]["SubnetId"]])["Subnets"][0]
    assert subnet["AvailabilityZone"] == "us-east-1c"


def test_disrupt_connectivity_all_black_holes_the_subnets_az_until_stopped(clients, lab):
    fis = clients["fis"]
    template_id = _create(fis, {"subnets": _subnet_target("us-east-1b")}, {"cut": _disrupt("all")})
    experiment = fis.start_experiment(clientToken="x", experimentTemplateId=template_id)["experiment"]
    assert poll_until(lambda: lab.network_impairments(), 5.0, 0.05)
    assert lab.network_impairments() == [{"az": "us-east-1b", "blackhole": "1", "seconds": 60.0}]
    fis.stop_experiment(id=experiment["id"])
    ended = poll_until(lambda: _final(fis, experiment["id"]), 5.0, 0.05)
    assert ended["state"]["status"] == "stopped" and ended["actions"]["cut"]["state"]["status"] == "stopped"
    assert lab.network_impairments() == [] and ("clear", "us-east-1b") in lab.calls


def test_disrupt_connectivity_availability_zone_scope_cuts_the_az_from_the_others(clients, lab):
    fis = clients["fis"]
    template_id = _create(fis, {"subnets": _subnet_target("us-east-1a")}, {"cut": _disrupt("availability-zone")})
    experiment = fis.start_experiment(clientToken="y", experimentTemplateId=template_id)["experiment"]
    assert poll_until(lambda: lab.network_impairments(), 5.0, 0.05)
    assert lab.network_impairments()[0] == {"az": "us-east-1a", "partition": "*", "seconds": 60.0}
    fis.stop_experiment(id=experiment["id"])
    assert poll_until(lambda: _final(fis, experiment["id"]), 5.0, 0.05)


def _final(fis, experiment_id):
    experiment = fis.get_experiment(id=experiment_id)["experiment"]
    return experiment if experiment["state"]["status"] in ("completed", "stopped", "failed") else None


@pytest.mark.parametrize("scope", ["s3", "dynamodb", "vpc", "prefix-list", "s3express"])
def test_scopes_the_lab_does_not_model_are_refused_at_template_creation(clients, scope):
    message = _refusal(clients["fis"], {"subnets": _subnet_target()}, {"cut": _disrupt(scope)})
    assert f"scope '{scope}' is valid on AWS, but the failover-gameday lab does not model it" in message


def test_an_undocumented_scope_is_refused_naming_the_documented_ones(clients):
    message = _refusal(clients["fis"], {"subnets": _subnet_target()}, {"cut": _disrupt("region")})
    assert "FIS documents all, availability-zone, dynamodb" in message


@pytest.mark.parametrize("duration", ["PT30S", "PT12H1M", "1 minute"])
def test_a_duration_outside_one_minute_to_12_hours_is_refused(clients, duration):
    message = _refusal(clients["fis"], {"subnets": _subnet_target()}, {"cut": _disrupt(duration=duration)})
    assert "between 1 min and 12 h" in message


def test_an_unknown_network_action_is_refused(clients):
    action = {"actionId": "aws:network:route-table-disrupt-cross-region-connectivity",
              "parameters": {"duration": "PT1M"}, "targets": {"Subnets": "subnets"}}
    message = _refusal(clients["fis"], {"subnets": _subnet_target()}, {"cut": action})
    assert "action type aws:network:route-table-disrupt-cross-region-connectivity is not supported" in message


def test_a_subnet_target_that_matches_nothing_fails_the_experiment_and_impairs_nothing(clients, lab):
    fis = clients["fis"]
    template_id = _create(fis, {"subnets": _subnet_target("us-east-1a", {"team": "nobody"})}, {"cut": _disrupt()})
    ended = run_to_end(fis, template_id)
    assert ended["state"]["status"] == "failed" and ended["state"]["error"]["code"] == "InvalidTarget"
    assert ended["actions"]["cut"]["state"]["status"] == "cancelled"
    assert not [c for c in lab.calls if c[0] == "impair"]


def test_latency_document_delays_flows_to_the_source_az_for_its_duration_then_lifts(clients, lab):
    fis = clients["fis"]
    slow = _send_command(JitterMilliseconds="20")
    template_id = _create(fis, {"instances": _instances("us-east-1a")}, {"slow": slow})
    ended = run_to_end(fis, template_id)
    assert ended["state"]["status"] == "completed" and ended["actions"]["slow"]["state"]["status"] == "completed"
    impaired = [c[1] for c in lab.calls if c[0] == "impair"]
    assert impaired == [{"az": "us-east-1a", "delay_ms": 200.0, "jitter_ms": 20.0, "direction": "to", "seconds": 1.0}]
    assert lab.network_impairments() == []


def test_packet_loss_document_drops_packets_toward_every_source_az(clients, lab):
    fis = clients["fis"]
    action = _send_command(LOSS, Sources="us-east-1b,us-east-1c", TrafficType="ingress")
    ended = run_to_end(fis, _create(fis, {"instances": _instances("us-east-1a")}, {"loss": action}))
    assert ended["state"]["status"] == "completed"
    impaired = [c[1] for c in lab.calls if c[0] == "impair"]
    assert [(i["az"], i["loss_percent"], i["direction"]) for i in impaired] == [
        ("us-east-1b", 15.0, "from"), ("us-east-1c", 15.0, "from")]


@pytest.mark.parametrize("change, words", [
    ({"documentArn": "arn:aws:ssm:us-east-1::document/AWSFIS-Run-CPU-Stress"}, "runs only the SSM documents"),
    ({"FlowsPercent": "50"}, "FlowsPercent 50 is not modelled"),
    ({"Sources": "10.0.0.0/16"}, "models Availability Zone sources"),
    ({"DelayMilliseconds": "-5"}, "DelayMilliseconds -5 must be more than 0"),
    ({"Colour": "blue"}, "has no parameter 'Colour'"),
])
def test_send_command_refuses_what_the_lab_cannot_run(clients, change, words):
    action = _send_command(**{k: v for k, v in change.items() if k != "documentArn"})
    if "documentArn" in change:
        action["parameters"]["documentArn"] = change["documentArn"]
    assert words in _refusal(clients["fis"], {"instances": _instances()}, {"slow": action})


@pytest.mark.parametrize("former, current", [
    ("aws:elasticache:interrupt-cluster-az-power", "aws:elasticache:replicationgroup-interrupt-az-power"),
])
def test_former_elasticache_action_id_is_refused_naming_the_current_one(clients, former, current):
    target = {"resourceType": "aws:elasticache:replicationgroup", "resourceTags": TAGS, "selectionMode": "ALL",
              "parameters": {"availabilityZoneIdentifier": "us-east-1a"}}
    action = {"actionId": former, "parameters": {"duration": "PT1M"}, "targets": {"ReplicationGroups": "rg"}}
    message = _refusal(clients["fis"], {"rg": target}, {"power": action})
    assert f"{former} is the former name of {current}" in message


def test_former_elasticache_target_type_is_refused_naming_the_current_one(clients):
    target = {"resourceType": "aws:elasticache:redis-replicationgroup", "resourceTags": TAGS, "selectionMode": "ALL"}
    action = {"actionId": "aws:fis:wait", "parameters": {"duration": "PT1M"}}
    message = _refusal(clients["fis"], {"rg": target}, {"wait": action})
    assert "aws:elasticache:redis-replicationgroup is the former name of aws:elasticache:replicationgroup" in message


@pytest.mark.parametrize("action_id", ["aws:ecs:task-network-latency", "aws:eks:pod-network-packet-loss"])
def test_the_scenarios_container_actions_are_refused_naming_the_ec2_form(clients, action_id):
    action = {"actionId": action_id, "parameters": {"duration": "PT1M"}, "targets": {"Instances": "instances"}}
    message = _refusal(clients["fis"], {"instances": _instances()}, {"slow": action})
    assert "which the failover-gameday lab does not have" in message and "aws:ssm:send-command" in message
