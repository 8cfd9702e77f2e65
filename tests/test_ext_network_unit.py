"""chaosext.network without a lab: argument checks (one line, nothing changed), the fault each
shape of impairment is, the flows it names, the AZ of the primaries, the refusal on AWS, and
the preflight's blast-radius row."""
import pytest
from botocore.stub import Stubber

from chaosext.aws import aws_client
from chaosext.errors import ActivityError
from chaosext.fault_model import CATALOGUE
from chaosext.network import actions
from chaosext.network.plan import ask
from gameday.preflight import plan as preflight_plan
from gameday.preflight.table import FAIL, INFO

CONFIG = {"aws_region": "us-east-1", "db_instance_id": "shop-db", "replication_group_id": "shop-cache"}


@pytest.fixture
def on_the_lab(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")  # nothing listens: no call may happen
    monkeypatch.delenv("GAMEDAY_TARGET", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "lab")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "lab")


@pytest.mark.parametrize("kwargs, why", [
    ({"availability_zone": "mars-1", "delay_ms": 200}, "must be an Availability Zone name"),
    ({"availability_zone": 7, "delay_ms": 200}, "must be an Availability Zone name"),
    ({"delay_ms": -1}, "delay_ms must be between 0 and 60000"),
    ({"delay_ms": "fast"}, "delay_ms must be a number"),
    ({"delay_ms": float("nan")}, "delay_ms must be between"),
    ({"loss_percent": 101}, "loss_percent must be between 0 and 100"),
    ({"delay_ms": 10, "jitter_ms": 20}, "jitter_ms 20 is more than delay_ms 10"),
    ({"delay_ms": 200, "duration_seconds": 0}, "duration_seconds must be more than 0"),
    ({"delay_ms": 200, "duration_seconds": 50_000}, "duration_seconds must be between 0 and 43200"),
    ({"delay_ms": 200, "duration_seconds": None}, "duration_seconds is required"),
    ({"delay_ms": 200, "direction": "sideways"}, "direction must be one of both, to, from"),
    ({"delay_ms": 200, "service": "web"}, "service must be one of db, cache"),
    ({"blackhole": True, "partition": "*"}, "contradict"),
    ({"partition": "primaries"}, "partition names the other side of the cut"),
    ({"partition": "moon"}, "partition must be an Availability Zone name"),
    ({}, "nothing to impair"),
    ({"delay_ms": 200, "fault": "az-network-nap"}, "fault must be one of"),
    ({"delay_ms": 200, "fault": "cache-latency"}, "give service=\"cache\""),
])
def test_bad_arguments_are_refused_in_one_line_before_any_call(on_the_lab, kwargs, why):
    kwargs = {"duration_seconds": 10, **kwargs}
    with pytest.raises(ActivityError, match=why) as refused:
        actions.impair_az_network(configuration=CONFIG, **kwargs)
    message = str(refused.value)
    assert "\n" not in message and message.endswith("nothing was changed")
    assert actions.STARTED == []


@pytest.mark.parametrize("kwargs, fault", [
    ({"delay_ms": 200}, "az-network-slowdown"),
    ({"blackhole": True}, "az-network-isolation"),
    ({"loss_percent": 15}, "cross-az-packet-loss"),
    ({"partition": "*"}, "cross-az-packet-loss"),
    ({"delay_ms": 300, "service": "cache"}, "cache-latency"),
    ({"delay_ms": 200, "loss_percent": 5, "fault": "cross-az-packet-loss"}, "cross-az-packet-loss"),
])
def test_each_shape_of_impairment_is_a_declared_impairment_fault(kwargs, fault):
    wanted = ask(duration_seconds=10, **kwargs)
    assert wanted.fault == fault
    assert CATALOGUE[fault].kind == "impairment"
    assert CATALOGUE["cache-latency"].services == ("elasticache",)


def test_the_query_and_the_flows_say_what_is_impaired_where_and_for_how_long():
    wanted = ask(delay_ms=200, jitter_ms=20, duration_seconds=20, service="cache", direction="to")
    assert wanted.query("us-east-1a") == {"az": "us-east-1a", "direction": "to", "delay_ms": "200",
                                          "jitter_ms": "20", "service": "cache", "seconds": "20"}
    flows = wanted.flows("us-east-1a", ["shop-cache-001 primary"])
    assert flows.startswith("every connection toward us-east-1a's cache nodes (shop-cache-001 primary)")
    assert "delay 200±20 ms" in flows and flows.endswith("for 20 s")
    cut = ask(partition="us-east-1b", duration_seconds=5).flows("us-east-1a", [])
    assert "replication" in cut and "clients still reach both sides" in cut
    record = wanted.record("us-east-1a", flows)
    assert set(record) >= {"availability_zone", "direction", "delay_ms", "jitter_ms", "loss_percent",
                           "bandwidth_kbps", "blackhole", "partition", "flows", "duration_seconds",
                           "started_at", "ended_at"}
    assert record["bandwidth_kbps"] is None and record["ended_at"] is None


def test_on_aws_it_refuses_in_one_line_naming_the_fis_variant(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://rds.eu-west-1.amazonaws.com")
    with pytest.raises(ActivityError, match="aws:network:disrupt-connectivity") as refused:
        actions.impair_az_network(blackhole=True, duration_seconds=60, configuration=CONFIG)
    assert "\n" not in str(refused.value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("GAMEDAY_TARGET", "aws")
    with pytest.raises(ActivityError, match="AZ Application Slowdown"):
        actions.impair_az_network(delay_ms=200, duration_seconds=60, configuration=CONFIG)


def test_lifting_when_this_run_started_nothing_calls_nothing(monkeypatch):
    monkeypatch.setattr(actions, "STARTED", [])
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://rds.eu-west-1.amazonaws.com")  # not even the lab
    assert actions.clear_network_impairments(configuration=CONFIG) == {"cleared": [], "in_force": []}


def _instance(az, standby):
    return {"DBInstances": [{"DBInstanceIdentifier": "shop-db", "AvailabilityZone": az,
                             "SecondaryAvailabilityZone": standby, "MultiAZ": True,
                             "DBInstanceStatus": "available"}]}


def _group(primary_az):
    members = [{"CacheClusterId": "shop-cache-001", "CurrentRole": "primary",
                "PreferredAvailabilityZone": primary_az},
               {"CacheClusterId": "shop-cache-002", "CurrentRole": "replica",
                "PreferredAvailabilityZone": "us-east-1c"}]
    return {"ReplicationGroups": [{"ReplicationGroupId": "shop-cache", "Status": "available",
                                   "NodeGroups": [{"NodeGroupId": "0001", "Status": "available",
                                                   "NodeGroupMembers": members}]}]}


def _resources(monkeypatch, db_az, cache_az):
    clients = {service: aws_client(service, CONFIG) for service in ("rds", "elasticache")}
    monkeypatch.setattr(actions, "aws_client", lambda service, *a, **k: clients[service])
    with Stubber(clients["rds"]) as rds, Stubber(clients["elasticache"]) as cache:
        rds.add_response("describe_db_instances", _instance(db_az, "us-east-1b"),
                         {"DBInstanceIdentifier": "shop-db"})
        cache.add_response("describe_replication_groups", _group(cache_az),
                           {"ReplicationGroupId": "shop-cache"})
        found = actions.Resources(None, None, CONFIG, None)
        rds.assert_no_pending_responses()
        cache.assert_no_pending_responses()
    return found


def test_the_primaries_az_is_resolved_from_both_services(monkeypatch):
    resources = _resources(monkeypatch, "us-east-1a", "us-east-1a")
    assert actions.resolve_az(ask(delay_ms=200, duration_seconds=5), resources) == "us-east-1a"
    assert resources.nodes_in("us-east-1b", None) == ["shop-db standby"]
    assert resources.nodes_in("us-east-1c", "cache") == ["shop-cache-002 replica"]
    assert actions.resolve_az(ask(availability_zone="us-east-1c", delay_ms=1, duration_seconds=5),
                              resources) == "us-east-1c"


def test_primaries_split_across_azs_are_refused_unless_one_service_is_asked(monkeypatch):
    resources = _resources(monkeypatch, "us-east-1a", "us-east-1b")
    with pytest.raises(ActivityError, match="not in one AZ .shop-db in us-east-1a, shop-cache in us-east-1b"):
        actions.resolve_az(ask(delay_ms=200, duration_seconds=5), resources)
    cache_only = ask(delay_ms=300, service="cache", duration_seconds=5)
    assert actions.resolve_az(cache_only, resources) == "us-east-1b"


class _Context:
    def __init__(self, arguments, primary_azs=None):
        self.actions = [{"phase": "method", "func": preflight_plan.IMPAIRMENT, "arguments": arguments}]
        self.facts = {"primary_azs": primary_azs or {}}

    def setting(self, key, default=None):
        return CONFIG.get(key, default)


def test_the_preflight_shows_the_blast_radius_or_fails_on_bad_arguments():
    good = preflight_plan._impairment_row(1, _Context({"availability_zone": "primaries", "delay_ms": "200",
                                                       "duration_seconds": "20"}).actions[0],
                                          _Context({}))
    assert good.status == INFO
    assert "az-network-slowdown on an AZ to resolve (the AZ of the primaries of shop-db and shop-cache" in good.detail
    assert "delay 200 ms" in good.detail and "for 20 s" in good.detail
    read = _Context({}, {"shop-db": "us-east-1b", "shop-cache": "us-east-1b"})
    found = preflight_plan._impairment_row(1, {"arguments": {"blackhole": True, "duration_seconds": "8"}}, read)
    assert found.detail.startswith("az-network-isolation on us-east-1b now (the AZ of the primaries")
    split = _Context({}, {"shop-db": "us-east-1a", "shop-cache": "us-east-1b"})
    cache = preflight_plan._impairment_row(1, {"arguments": {"delay_ms": 500, "service": "cache",
                                                             "duration_seconds": "8"}}, split)
    assert cache.detail.startswith("cache-latency on us-east-1b now (the AZ of the primaries of shop-cache")
    bad = preflight_plan._impairment_row(1, {"arguments": {"delay_ms": "-5", "duration_seconds": "20"}},
                                         _Context({}))
    assert bad.status == FAIL and "delay_ms must be between" in bad.detail
