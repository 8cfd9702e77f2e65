"""The lab's FIS API through a real boto3 ``fis`` client against the facade's HTTP server, backed
by the in-memory test double of the Lab (``ShapeOnlyFakeLab``): states, ordering, stop,
refusals and target resolution. Real failovers through FIS are in test_fis_lab.py."""
import random
import threading

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from test_facade_handlers import ShapeOnlyFakeLab

from groundfloor.supervisor import poll_until
from woolab.facade import fis_targets, server

ROLE = "arn:aws:iam::123456789012:role/fis"
TAGS = {"chaos:allowed": "true"}
DB_TARGET = {"resourceType": "aws:rds:db", "resourceTags": TAGS, "selectionMode": "ALL"}
REBOOT = {"actionId": "aws:rds:reboot-db-instances", "parameters": {"forceFailover": "true"},
          "targets": {"DBInstances": "db"}}


class FisFakeLab(ShapeOnlyFakeLab):
    """The shape-only double, plus a reboot that settles by itself and optional AZ power calls."""

    def start_db_reboot(self, instance_id, force_failover):
        super().start_db_reboot(instance_id, force_failover)
        threading.Timer(0.3, self.finish).start()





def _serve(lab):
    httpd = server.serve(lab)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    client = boto3.client("fis", endpoint_url=f"http://127.0.0.1:{httpd.server_address[1]}",
                          region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
    rds = boto3.client("rds", endpoint_url=f"http://127.0.0.1:{httpd.server_address[1]}",
                       region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
    return httpd, client, rds


@pytest.fixture
def lab(tmp_path):
    return FisFakeLab(tmp_path)


@pytest.fixture
def fis(lab):
    httpd, client, _ = _serve(lab)
    yield client
    httpd.shutdown()
    httpd.server_close()


def template(fis, targets=None, actions=None, **extra):
    return fis.create_experiment_template(
        clientToken=str(random.random()), description="test", roleArn=ROLE,
        stopConditions=[{"source": "none"}], targets={"db": DB_TARGET} if targets is None else targets,
        actions={"reboot": REBOOT} if actions is None else actions, **extra)["experimentTemplate"]


def run_to_end(fis, template_id, timeout=10.0):
    experiment = fis.start_experiment(clientToken=str(random.random()),
                                      experimentTemplateId=template_id)["experiment"]
    ended = poll_until(lambda: _ended(fis, experiment["id"]), timeout)
    assert ended, f"experiment {experiment['id']} did not end within {timeout:g} s"
    return ended


def _ended(fis, experiment_id):
    """The experiment once it has ended, else None."""
    experiment = fis.get_experiment(id=experiment_id)["experiment"]
    return experiment if experiment["state"]["status"] in ("completed", "stopped", "failed") else None


def _status(fis, experiment_id, action=None):
    experiment = fis.get_experiment(id=experiment_id)["experiment"]
    return (experiment["actions"][action] if action else experiment)["state"]["status"]


def code_of(err):
    return err.value.response["Error"]["Code"], err.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_fis_template_create_get_list_tag_delete_round_trip(fis):
    created = template(fis, tags={"team": "sre"})
    assert created["id"].startswith("EXT") and created["arn"].endswith(f":experiment-template/{created['id']}")
    assert created["targets"]["db"]["resourceTags"] == TAGS
    assert created["experimentOptions"]["emptyTargetResolutionMode"] == "fail"
    assert fis.get_experiment_template(id=created["id"])["experimentTemplate"]["actions"]["reboot"] == REBOOT
    assert [t["id"] for t in fis.list_experiment_templates()["experimentTemplates"]] == [created["id"]]
    fis.tag_resource(resourceArn=created["arn"], tags={"owner": "me"})
    assert fis.list_tags_for_resource(resourceArn=created["arn"])["tags"] == {"team": "sre", "owner": "me"}
    fis.delete_experiment_template(id=created["id"])
    with pytest.raises(ClientError) as err:
        fis.get_experiment_template(id=created["id"])
    assert code_of(err) == ("ResourceNotFoundException", 404)


def test_fis_experiment_runs_actions_in_start_after_order_to_completed(fis, lab):
    created = template(fis, actions={
        "reboot": REBOOT,
        "pause": {"actionId": "aws:fis:wait", "parameters": {"duration": "PT1S"}, "startAfter": ["reboot"]}})
    experiment = run_to_end(fis, created["id"])
    assert experiment["state"] == {"status": "completed", "reason": "Experiment completed."}
    reboot, pause = experiment["actions"]["reboot"], experiment["actions"]["pause"]
    assert reboot["state"]["status"] == pause["state"]["status"] == "completed"
    assert pause["startTime"] >= reboot["endTime"]  # startAfter: the wait began after the reboot ended
    assert lab.calls == [("reboot", "shop-db", True)]
    assert experiment["startTime"] <= reboot["startTime"] and experiment["endTime"] >= pause["endTime"]
    listed = fis.list_experiments(experimentTemplateId=created["id"])["experiments"]
    assert [(e["id"], e["state"]["status"]) for e in listed] == [(experiment["id"], "completed")]


def test_fis_stop_mid_run_stops_the_running_action_and_cancels_the_rest(fis):
    created = template(fis, targets={}, actions={
        "long": {"actionId": "aws:fis:wait", "parameters": {"duration": "PT1M"}},
        "after": {"actionId": "aws:fis:wait", "parameters": {"duration": "PT1S"}, "startAfter": ["long"]}})
    started = fis.start_experiment(clientToken="t1", experimentTemplateId=created["id"])["experiment"]
    assert poll_until(lambda: _status(fis, started["id"], "long") == "running", 5)
    stopping = fis.stop_experiment(id=started["id"])["experiment"]
    assert stopping["state"]["status"] in ("stopping", "stopped")
    assert poll_until(lambda: _status(fis, started["id"]) == "stopped", 5)
    ended = fis.get_experiment(id=started["id"])["experiment"]
    assert ended["actions"]["long"]["state"]["status"] == "stopped"
    assert ended["actions"]["after"]["state"]["status"] == "cancelled"
    assert (ended["endTime"] - ended["startTime"]).total_seconds() < 10  # not the 60 s of the wait
    with pytest.raises(ClientError) as err:
        fis.stop_experiment(id=started["id"])
    assert code_of(err) == ("ValidationException", 400)


@pytest.mark.parametrize("targets, actions, words", [
    ({"db": DB_TARGET}, {"x": {"actionId": "aws:rds:explode-db", "targets": {"DBInstances": "db"}}},
     "aws:rds:explode-db is not supported"),
    ({"db": DB_TARGET}, {"x": {**REBOOT, "targets": {"Clusters": "db"}}}, "has no target 'Clusters'"),
    ({"db": dict(DB_TARGET, resourceType="aws:rds:cluster")}, {"x": REBOOT}, "needs aws:rds:db"),
    ({}, {"x": {"actionId": "aws:fis:wait", "parameters": {"duration": "1 minute"}}}, "ISO-8601"),
    ({"rg": {"resourceType": "aws:elasticache:replicationgroup", "resourceTags": TAGS, "selectionMode": "ALL"}},
     {"x": {"actionId": "aws:elasticache:replicationgroup-interrupt-az-power",
            "parameters": {"duration": "PT1M"}, "targets": {"ReplicationGroups": "rg"}}},
     "'availabilityZoneIdentifier' is required"),
    ({"rg": {"resourceType": "aws:elasticache:replicationgroup", "resourceTags": TAGS, "selectionMode": "ALL",
             "parameters": {"availabilityZoneIdentifier": "us-east-1a"}}},
     {"x": {"actionId": "aws:elasticache:replicationgroup-interrupt-az-power",
            "parameters": {"duration": "PT30S"}, "targets": {"ReplicationGroups": "rg"}}}, "between 1 min and 12 h"),
    ({"db": dict(DB_TARGET, selectionMode="SOME")}, {"x": REBOOT}, "selectionMode"),
    ({"db": dict(DB_TARGET, resourceArns=["arn:aws:rds:us-east-1:123456789012:db:shop-db"])}, {"x": REBOOT},
     "cannot be combined"),
    ({"db": DB_TARGET}, {"x": dict(REBOOT, startAfter=["nope"])}, "startAfter"),
])
def test_fis_invalid_template_is_validation_exception_and_creates_nothing(fis, targets, actions, words):
    with pytest.raises(ClientError) as err:
        template(fis, targets=targets, actions=actions)
    assert code_of(err) == ("ValidationException", 400)
    assert words in err.value.response["Error"]["Message"]
    assert fis.list_experiment_templates()["experimentTemplates"] == []


def test_fis_targets_matching_nothing_fail_the_experiment_with_invalid_target_and_mutate_nothing(fis, lab):
    created = template(fis, targets={"db": dict(DB_TARGET, resourceTags={"team": "nobody"})})
    experiment = run_to_end(fis, created["id"])
    assert experiment["state"]["status"] == "failed"
    assert experiment["state"]["error"]["code"] == "InvalidTarget"
    assert "no aws:rds:db resource matched its resourceTags team=nobody" in experiment["state"]["reason"]
    assert experiment["actions"]["reboot"]["state"]["status"] == "cancelled"
    assert lab.calls == []


def test_fis_empty_target_with_skip_mode_skips_the_action(fis, lab):
    created = template(fis, targets={"db": dict(DB_TARGET, parameters={"availabilityZoneIdentifiers": "us-east-1c"})},
                       experimentOptions={"emptyTargetResolutionMode": "skip"})
    experiment = run_to_end(fis, created["id"])
    assert experiment["state"]["status"] == "completed"
    assert experiment["actions"]["reboot"]["state"]["status"] == "skipped"
    assert lab.calls == []


def test_fis_unknown_template_and_experiment_are_resource_not_found(fis):
    with pytest.raises(ClientError) as err:
        fis.start_experiment(clientToken="x", experimentTemplateId="EXTnope")
    assert code_of(err) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as err:
        fis.get_experiment(id="EXPnope")
    assert code_of(err) == ("ResourceNotFoundException", 404)


AZ_POWER = {"rg": {"resourceType": "aws:elasticache:replicationgroup", "resourceTags": TAGS, "selectionMode": "ALL",
                   "parameters": {"availabilityZoneIdentifier": "us-east-1a"}}}
AZ_ACTION = {"power": {"actionId": "aws:elasticache:replicationgroup-interrupt-az-power",
                       "parameters": {"duration": "PT1M"}, "targets": {"ReplicationGroups": "rg"}}}


def test_fis_interrupt_az_power_powers_off_the_target_az_and_restores_it_when_stopped(tmp_path):
    lab = FisFakeLab(tmp_path)
    httpd, fis, _ = _serve(lab)
    try:
        created = template(fis, targets=AZ_POWER, actions=AZ_ACTION)
        started = fis.start_experiment(clientToken="p", experimentTemplateId=created["id"])["experiment"]
        assert poll_until(lambda: ("power-off", "us-east-1a", 60.0) in lab.calls, 5)
        fis.stop_experiment(id=started["id"])
        assert poll_until(lambda: _status(fis, started["id"]) == "stopped", 5)
        assert lab.calls == [("power-off", "us-east-1a", 60.0), ("power-on", "us-east-1a")]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_fis_and_the_query_apis_share_the_facade_port(tmp_path):
    lab = FisFakeLab(tmp_path)
    httpd, fis, rds = _serve(lab)
    try:
        template(fis)
        assert rds.describe_db_instances()["DBInstances"][0]["DBInstanceIdentifier"] == "shop-db"
        assert len(fis.list_experiment_templates()["experimentTemplates"]) == 1
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_fis_target_resolution_by_arn_count_and_percent(lab):
    snapshot = lab.snapshot()
    arn = "arn:aws:rds:us-east-1:123456789012:db:shop-db"
    by_arn = fis_targets.resolve(snapshot, "t", {"resourceType": "aws:rds:db", "resourceArns": [arn],
                                                 "selectionMode": "ALL"})
    assert [r.id for r in by_arn] == ["shop-db"]
    with pytest.raises(fis_targets.TargetNotResolved, match="shop-db-2 was not found"):
        fis_targets.resolve(snapshot, "t", {"resourceType": "aws:rds:db", "selectionMode": "ALL",
                                            "resourceArns": [arn + "-2"]})
    snapshot["db_instances"]["other"] = dict(snapshot["db_instances"]["shop-db"], id="other")
    tagged = {"resourceType": "aws:rds:db", "resourceTags": TAGS}
    assert len(fis_targets.resolve(snapshot, "t", dict(tagged, selectionMode="COUNT(1)"))) == 1
    assert len(fis_targets.resolve(snapshot, "t", dict(tagged, selectionMode="PERCENT(50)"))) == 1
    assert len(fis_targets.resolve(snapshot, "t", dict(tagged, selectionMode="ALL"))) == 2
    in_b = dict(tagged, selectionMode="ALL", filters=[{"path": "AvailabilityZone", "values": ["us-east-1b"]}])
    with pytest.raises(fis_targets.TargetNotResolved):
        fis_targets.resolve(snapshot, "t", in_b)


def test_every_fis_operation_of_the_model_has_a_route_and_raw_errors_are_rest_json(lab):
    import json
    import urllib.error
    import urllib.request

    from woolab.facade import protocol, restjson
    model = protocol.service_model("fis")
    for name in model.operation_names:
        http = model.operation_model(name).http
        path = http["requestUri"].split("?")[0].replace("{", "x").replace("}", "").replace("+", "")
        found = restjson.route("fis", http["method"], path)
        assert found and found[0].name == name, name
    httpd, _, _ = _serve(lab)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        def call(method, path, body=None):
            request = urllib.request.Request(base + path, data=body, method=method,
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=5) as reply:
                    return reply.status, reply.headers, json.loads(reply.read())
            except urllib.error.HTTPError as err:
                return err.code, err.headers, json.loads(err.read())
        status, headers, body = call("POST", "/experimentTemplates", b'{"clientToken": 5}')
        assert (status, headers["x-amzn-ErrorType"]) == (400, "ValidationException")
        assert "clientToken" in body["message"]
        status, headers, _ = call("POST", "/experimentTemplates", b"not json")
        assert (status, headers["x-amzn-ErrorType"]) == (400, "ValidationException")
        status, headers, _ = call("GET", "/experiments/EXP1/nothing")
        assert (status, headers["x-amzn-ErrorType"]) == (404, "UnknownOperationException")
    finally:
        httpd.shutdown()
        httpd.server_close()
