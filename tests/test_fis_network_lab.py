"""FIS network actions against the real lab: a boto3 ``fis`` client starts them through the facade,
the lab's network layer shows the impairment while the experiment runs (and round trips through
the relay feel it), and nothing is left once the experiment's states are final."""
import json
import socket
import time
import uuid

import boto3
import pytest
import redis

from groundfloor.supervisor import poll_until
from network_helpers import fully_redundant

pytestmark = pytest.mark.lab

ROLE = "arn:aws:iam::123456789012:role/failover-gameday-fis"
TAGS = {"chaos:allowed": "true"}
FINAL = ("completed", "stopped", "failed")


@pytest.fixture
def fis(lab_env, lab):
    lab.call("/_lab/network?clear=1")
    yield boto3.client("fis", region_name="us-east-1")
    lab.call("/_lab/network?clear=1")
    assert poll_until(lambda: fully_redundant(lab.config), 90, interval=0.25), "the lab did not heal"


def _impairments(lab) -> list:
    return lab.call("/_lab/network", method="GET")["impairments"]


def _start(fis, targets, actions) -> str:
    template_id = fis.create_experiment_template(
        clientToken=str(uuid.uuid4()), description="network", roleArn=ROLE, stopConditions=[{"source": "none"}],
        targets=targets, actions=actions)["experimentTemplate"]["id"]
    return fis.start_experiment(clientToken=str(uuid.uuid4()), experimentTemplateId=template_id)["experiment"]["id"]


def _final(fis, experiment_id):
    experiment = fis.get_experiment(id=experiment_id)["experiment"]
    return experiment if experiment["state"]["status"] in FINAL else None


def _ping_ms(lab, address: str) -> float:
    client = redis.Redis(host=address, port=lab.config.cache_primary_port, password=lab.secrets["redis_password"],
                         socket_timeout=5)
    try:
        client.ping()
        start = time.perf_counter()
        client.ping()
        return (time.perf_counter() - start) * 1000
    finally:
        client.close()


def test_az_application_slowdown_delays_the_az_while_it_runs_and_not_after(fis, lab):
    address = lab.config.cache_node_address(1)  # shop-cache-001 in us-east-1a
    instances = {"resourceType": "aws:ec2:instance", "resourceTags": {"AZApplicationSlowdown": "LatencyForEC2"},
                 "selectionMode": "ALL", "filters": [{"path": "Placement.AvailabilityZone", "values": ["us-east-1a"]}]}
    document = {"DelayMilliseconds": "200", "Sources": "us-east-1a", "TrafficType": "egress", "FlowsPercent": "100",
                "DurationSeconds": "3", "InstallDependencies": "True"}
    action = {"actionId": "aws:ssm:send-command", "targets": {"Instances": "instances"},
              "parameters": {"documentArn": "arn:aws:ssm:us-east-1::document/AWSFIS-Run-Network-Latency-Sources",
                             "documentParameters": json.dumps(document), "duration": "PT1M"}}
    experiment_id = _start(fis, {"instances": instances}, {"slow": action})
    assert poll_until(lambda: _impairments(lab), 5, 0.05), "no impairment while the experiment runs"
    [impairment] = _impairments(lab)
    assert (impairment["az"], impairment["delay_ms"], impairment["direction"]) == ("us-east-1a", 200.0, "to")
    assert fis.get_experiment(id=experiment_id)["experiment"]["state"]["status"] == "running"
    assert 180 <= _ping_ms(lab, address) <= 260
    ended = poll_until(lambda: _final(fis, experiment_id), 15, 0.1)
    assert ended and ended["state"]["status"] == "completed"
    assert ended["actions"]["slow"]["state"]["status"] == "completed"
    assert 2.5 <= (ended["endTime"] - ended["startTime"]).total_seconds() <= 6
    assert _impairments(lab) == [] and _ping_ms(lab, address) < 50


def test_disrupt_connectivity_black_holes_the_subnet_az_until_the_experiment_is_stopped(fis, lab):
    address = lab.config.cache_node_address(2)  # shop-cache-002 in us-east-1b
    subnets = {"resourceType": "aws:ec2:subnet", "resourceTags": TAGS, "selectionMode": "ALL",
               "parameters": {"availabilityZoneIdentifier": "us-east-1b"}}
    action = {"actionId": "aws:network:disrupt-connectivity", "parameters": {"duration": "PT1M", "scope": "all"},
              "targets": {"Subnets": "subnets"}}
    since = time.time()
    experiment_id = _start(fis, {"subnets": subnets}, {"cut": action})
    assert poll_until(lambda: _impairments(lab), 5, 0.05), "no impairment while the experiment runs"
    assert [(i["az"], i["blackhole"]) for i in _impairments(lab)] == [("us-east-1b", True)]
    sock = socket.create_connection((address, lab.config.cache_primary_port), timeout=2)
    sock.settimeout(1.0)
    sock.sendall(b"PING\r\n")
    with pytest.raises(socket.timeout):  # black-holed: accepted, then nothing
        sock.recv(10)
    sock.close()
    fis.stop_experiment(id=experiment_id)
    ended = poll_until(lambda: _final(fis, experiment_id), 10, 0.05)
    assert ended and ended["state"]["status"] == "stopped"
    assert ended["actions"]["cut"]["state"]["status"] == "stopped"
    assert _impairments(lab) == []
    assert poll_until(lambda: _ping_ms(lab, address) < 50, 5, 0.1)
    messages = [e["message"] for e in lab.events(since) if "network" in e.get("categories", [])]
    assert any(m.startswith("network impairment started on us-east-1b: black hole") for m in messages)
    assert any(m.startswith("network impairment ended on us-east-1b (cleared)") for m in messages)


def test_the_extension_s_slowdown_is_an_impairment_whose_window_matches_the_lab(fis, lab, lab_env):
    """chaosext's az_application_slowdown on the lab: the experiment's run is the impairment
    window, and it matches the lab's ground truth (its network events) to within a second."""
    import chaosext.fis.actions as fis_actions
    from groundfloor.timefmt import parse_time
    conf = {"aws_region": "us-east-1", "fis_role_arn": ROLE, "db_instance_id": "shop-db",
            "replication_group_id": "shop-cache",
            **{key: lab_env[f"GAMEDAY_{key.upper()}"] for key in (
                "mysql_host", "mysql_port", "mysql_user", "mysql_password", "mysql_database",
                "redis_host", "redis_port", "redis_password")}}
    db = lab.snapshot()["db_instances"]["shop-db"]
    primary_az = db["nodes"][db["primary"]]["az"]  # earlier tests may have moved the cache's primary
    since = time.time()
    result = fis_actions.az_application_slowdown(primary_az, delay_ms=200, duration_seconds=3, configuration=conf,
                                                 poll_interval=0.2)
    impairment = result["impairment"]
    assert (result["kind"], result["fis"]["state"], impairment["availability_zone"]) == (
        "impairment", "completed", primary_az)
    assert set(result["recovery"]) == {"rds", "elasticache"}
    assert all(r["time_to_recover_seconds"] >= 0 for r in result["recovery"].values())
    events = [e for e in lab.events(since) if "network" in e.get("categories", [])]
    started = next(e["time"] for e in events if e["message"].startswith(f"network impairment started on {primary_az}"))
    ended = next(e["time"] for e in events if e["message"].startswith(f"network impairment ended on {primary_az}"))
    assert abs(parse_time(impairment["started_at"]).timestamp() - started) <= 1.0
    assert abs(parse_time(impairment["ended_at"]).timestamp() - ended) <= 1.0
    assert 2.5 <= ended - started <= 4.0
    assert _impairments(lab) == []
