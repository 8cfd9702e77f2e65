"""The preflight's AWS calls, against botocore's Stubber (parameters checked against the real
service models): identity, targets with tags and placement, IAM via the policy simulator."""
import json
from pathlib import Path

import pytest
from botocore.stub import Stubber

from chaosext.aws import aws_client
from chaosext.errors import GamedayError
from gameday import safety
from gameday.preflight import cloud
from gameday.preflight.context import Context
from gameday.preflight.table import FAIL, OK, WARN

ACCOUNT = "111122223333"
DB_ARN = f"arn:aws:rds:eu-west-1:{ACCOUNT}:db:stage-db"
GROUP_ARN = f"arn:aws:elasticache:eu-west-1:{ACCOUNT}:replicationgroup:stage-cache"
CALLER = f"arn:aws:sts::{ACCOUNT}:assumed-role/failover-gameday/ci-123"
ALLOW = [{"Key": "chaos:allowed", "Value": "true"}]


@pytest.fixture(scope="module")
def clients():
    """Built once (a client costs ~0.4 s of CPU); each test gets fresh Stubbers over them."""
    with pytest.MonkeyPatch.context() as patch:
        for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
            patch.delenv(key, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_CONFIG_FILE", "/dev/null")
        return {s: aws_client(s, {"aws_region": "eu-west-1"}) for s in ("sts", "rds", "elasticache", "iam")}


@pytest.fixture
def stubs(monkeypatch, clients):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    stubbers = {s: Stubber(c) for s, c in clients.items()}
    monkeypatch.setattr(cloud, "aws_client", lambda service, *a, **k: clients[service])
    for stubber in stubbers.values():
        stubber.activate()
    yield stubbers
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()
        stubber.deactivate()


def context(resources, actions=(), env=None):
    ctx = Context("aws", {"AWS_REGION": "eu-west-1", **(env or {})}, {}, {"aws_region": "eu-west-1"}, {},
                  "run-1", False, list(resources))
    ctx.actions = [{"phase": "method", "name": f, "func": f, "arguments": {}, "background": False}
                   for f in actions]
    return ctx


def instance(tags=ALLOW, multi_az=True):
    return {"DBInstanceIdentifier": "stage-db", "DBInstanceArn": DB_ARN, "DBInstanceStatus": "available",
            "MultiAZ": multi_az, "AvailabilityZone": "eu-west-1a", "SecondaryAvailabilityZone": "eu-west-1b",
            "Endpoint": {"Address": "stage-db.x.eu-west-1.rds.amazonaws.com", "Port": 3306}, "TagList": tags}


def expect_instance(stubs, **kwargs):
    stubs["rds"].add_response("describe_db_instances", {"DBInstances": [instance(**kwargs)]},
                              {"DBInstanceIdentifier": "stage-db"})
    stubs["rds"].add_response("describe_events", {"Events": []}, {
        "SourceIdentifier": "stage-db", "SourceType": "db-instance", "Duration": 60, "MaxRecords": 20})


def test_identity_resolves_account_and_endpoints(stubs):
    stubs["sts"].add_response("get_caller_identity", {"UserId": "AROA:ci", "Account": ACCOUNT, "Arn": CALLER}, {})
    ctx = context([])
    rows = cloud.credential_rows(ctx)
    assert [r.status for r in rows] == [OK, OK]
    assert ACCOUNT in rows[0].detail and ctx.facts["account"] == ACCOUNT
    assert ctx.facts["endpoints"]["rds"] == "https://rds.eu-west-1.amazonaws.com"


def test_invalid_credentials_are_one_fail_row_with_the_fix(stubs):
    stubs["sts"].add_client_error("get_caller_identity", "InvalidClientTokenId", "bad key", 403)
    rows = cloud.credential_rows(context([]))
    assert rows[0].status == FAIL and "access key is not valid" in rows[0].detail and rows[0].fix


def test_db_instance_is_resolved_with_placement_and_tags(stubs):
    expect_instance(stubs)
    ctx = context([("db-instance", "stage-db")])
    [row] = cloud.target_rows(ctx)
    assert row.status == OK
    assert "Multi-AZ yes" in row.detail and "writer eu-west-1a standby eu-west-1b" in row.detail
    assert "chaos:allowed=true" in row.detail
    assert ctx.facts["original"]["stage-db"] == {"kind": "db-instance", "az": "eu-west-1a"}
    assert ctx.facts["account"] == ACCOUNT


@pytest.mark.parametrize("kwargs,why", [({"tags": []}, "allow tag"), ({"multi_az": False}, "not Multi-AZ")])
def test_untagged_or_single_az_instance_fails_the_preflight(stubs, kwargs, why):
    expect_instance(stubs, **kwargs)
    [row] = cloud.target_rows(context([("db-instance", "stage-db")]))
    assert row.status == FAIL and why in row.detail


def test_missing_instance_names_the_setting_to_fix(stubs):
    stubs["rds"].add_client_error("describe_db_instances", "DBInstanceNotFound", "nope", 404)
    [row] = cloud.target_rows(context([("db-instance", "stage-db")]))
    assert row.status == FAIL and "GAMEDAY_DB_INSTANCE_ID" in row.fix


def test_replication_group_shows_primaries_replicas_and_encryption(stubs):
    group = {"ReplicationGroupId": "stage-cache", "ARN": GROUP_ARN, "Status": "available",
             "AutomaticFailover": "enabled", "MultiAZ": "enabled", "TransitEncryptionEnabled": True,
             "NodeGroups": [{"NodeGroupId": "0001", "Status": "available", "NodeGroupMembers": [
                 {"CacheClusterId": "stage-cache-001", "CurrentRole": "primary", "PreferredAvailabilityZone": "eu-west-1a"},
                 {"CacheClusterId": "stage-cache-002", "CurrentRole": "replica", "PreferredAvailabilityZone": "eu-west-1b"}]}]}
    stubs["elasticache"].add_response("describe_replication_groups", {"ReplicationGroups": [group]},
                                      {"ReplicationGroupId": "stage-cache"})
    stubs["elasticache"].add_response("describe_events", {"Events": []}, {
        "SourceIdentifier": "stage-cache", "SourceType": "replication-group", "Duration": 60, "MaxRecords": 20})
    stubs["elasticache"].add_response("list_tags_for_resource", {"TagList": ALLOW}, {"ResourceName": GROUP_ARN})
    ctx = context([("replication-group", "stage-cache")])
    [row] = cloud.target_rows(ctx)
    assert row.status == OK, row.detail
    assert "0001: primary stage-cache-001 (eu-west-1a), replicas stage-cache-002" in row.detail
    assert "in-transit encryption on" in row.detail and ctx.facts["cache_tls"] is True
    assert ctx.facts["original"]["stage-cache"]["primaries"] == {"0001": "stage-cache-001"}


def simulate_params(actions):
    return {"PolicySourceArn": f"arn:aws:iam::{ACCOUNT}:role/failover-gameday", "ActionNames": actions,
            "ResourceArns": [DB_ARN], "ContextEntries": [{"ContextKeyName": "aws:ResourceTag/chaos:allowed",
                                                           "ContextKeyValues": ["true"], "ContextKeyType": "string"}]}


def iam_context():
    ctx = context([("db-instance", "stage-db")], ["chaosext.rds.actions.force_failover"])
    ctx.facts.update(principal=CALLER, arns={"stage-db": DB_ARN})
    return ctx


@pytest.mark.parametrize("decision,status", [("allowed", OK), ("implicitDeny", FAIL)])
def test_fault_actions_are_checked_with_the_policy_simulator(stubs, decision, status):
    stubs["iam"].add_response("simulate_principal_policy", {"EvaluationResults": [
        {"EvalActionName": "rds:RebootDBInstance", "EvalDecision": decision}]},
        simulate_params(["rds:RebootDBInstance"]))
    rows = {r.item: r for r in cloud.iam_rows(iam_context())}
    assert rows["read actions"].status == OK and "rds:DescribeDBInstances" in rows["read actions"].detail
    assert rows["fault actions"].status == status
    if status == FAIL:
        assert "rds:RebootDBInstance" in rows["fault actions"].detail
        assert "gameday-policy.json" in rows["fault actions"].fix


def test_fault_actions_not_checked_without_simulator_permission(stubs):
    stubs["iam"].add_client_error("simulate_principal_policy", "AccessDenied", "not allowed", 403)
    rows = {r.item: r for r in cloud.iam_rows(iam_context())}
    assert rows["fault actions"].status == WARN and "iam:SimulatePrincipalPolicy" in rows["fault actions"].fix


@pytest.mark.parametrize("caller,expected", [
    (CALLER, f"arn:aws:iam::{ACCOUNT}:role/failover-gameday"),
    (f"arn:aws:iam::{ACCOUNT}:user/alice", f"arn:aws:iam::{ACCOUNT}:user/alice"),
    (f"arn:aws:sts::{ACCOUNT}:federated-user/bob", None)])
def test_caller_arn_to_simulator_principal(caller, expected):
    assert cloud.role_arn(caller) == expected


SPEC = {"title": "RDS failover", "configuration": {  # lab defaults, as in the shipped experiments
            "aws_region": "eu-west-1",
            "db_instance_id": {"type": "env", "key": "GAMEDAY_DB_INSTANCE_ID", "default": "shop-db"},
            "shop_url": {"type": "env", "key": "GAMEDAY_SHOP_URL", "default": "http://127.0.0.1:15301"}},
        "method": [{"type": "action", "name": "fail-over", "provider": {
            "type": "python", "module": "chaosext.rds.actions", "func": "force_failover",
            "arguments": {"db_instance_identifier": "${db_instance_id}"}}}]}


def test_aws_run_without_account_allow_list_is_refused_in_one_line(stubs, monkeypatch, capsys):
    stubs["sts"].add_response("get_caller_identity", {"UserId": "AROA:ci", "Account": ACCOUNT, "Arn": CALLER}, {})
    expect_instance(stubs)
    stubs["iam"].add_response("simulate_principal_policy", {"EvaluationResults": [
        {"EvalActionName": "rds:RebootDBInstance", "EvalDecision": "allowed"}]}, simulate_params(["rds:RebootDBInstance"]))
    env = {"AWS_REGION": "eu-west-1", "GAMEDAY_SHOP_URL": "https://127.0.0.1:9", "GAMEDAY_DB_INSTANCE_ID": "stage-db",
           "GAMEDAY_ALLOWED_SHOP_URLS": "https://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}
    asked = []
    monkeypatch.setattr("gameday.preflight.guards.confirm", lambda *a, **k: asked.append(a))
    with pytest.raises(GamedayError) as refused:
        safety.gate_aws_run(dict(SPEC), env, "run-1", yes=True)
    message = str(refused.value)
    assert "\n" not in message and "not ready" in message and "GAMEDAY_ALLOWED_ACCOUNTS" in message
    assert asked == []  # refused before the confirmation, so before any side effect
    table = capsys.readouterr().out
    assert "allow-lists  account" in table and "NOT READY" in table


def test_a_shop_off_the_allow_list_is_not_even_contacted(stubs, monkeypatch):
    from gameday.preflight import reach
    stubs["sts"].add_response("get_caller_identity", {"UserId": "AROA:ci", "Account": ACCOUNT, "Arn": CALLER}, {})
    expect_instance(stubs)
    stubs["iam"].add_client_error("simulate_principal_policy", "AccessDenied", "no", 403)
    monkeypatch.setattr(reach, "shop_rows", lambda *a: pytest.fail("the shop was contacted"))
    env = {"AWS_REGION": "eu-west-1", "GAMEDAY_SHOP_URL": "https://www.shop.example", "GAMEDAY_DB_INSTANCE_ID": "stage-db",
           "GAMEDAY_ALLOWED_ACCOUNTS": ACCOUNT, "GAMEDAY_ALLOWED_SHOP_URLS": "https://staging.shop.example"}
    result = safety.preflight_for(dict(SPEC), "aws", env, "run-1")
    rows = {(r.section, r.item): r for r in result.rows}
    assert rows[("allow-lists", "shop URL")].status == FAIL and not result.ready
    assert "not contacted" in rows[("reach", "shop")].detail


def test_missing_required_setting_on_aws_is_named_with_its_variable():
    from gameday.preflight import _required_rows
    from gameday.preflight.context import build_context
    ctx = build_context(dict(SPEC), "aws", {"AWS_REGION": "eu-west-1"}, "run-1")
    rows = {r.item: r for r in _required_rows(ctx)}
    assert rows["GAMEDAY_SHOP_URL"].status == FAIL and rows["GAMEDAY_SHOP_URL"].fix == "set GAMEDAY_SHOP_URL"
    assert rows["GAMEDAY_DB_INSTANCE_ID"].status == FAIL  # the experiment uses ${db_instance_id}
    assert "GAMEDAY_REPLICATION_GROUP_ID" not in rows  # it names no replication group


def test_a_waived_tag_guardrail_is_said_in_the_preflight_the_confirmation_and_the_report(
        stubs, monkeypatch, capsys, run_dir):
    """An untagged instance passes only through chaos_waive_tag_guardrail, and says so three times."""
    from gameday.preflight import guards, reach
    from gameday.report import write_report
    stubs["sts"].add_response("get_caller_identity", {"UserId": "AROA:ci", "Account": ACCOUNT, "Arn": CALLER}, {})
    expect_instance(stubs, tags=[])
    stubs["iam"].add_response("simulate_principal_policy", {"EvaluationResults": [
        {"EvalActionName": "rds:RebootDBInstance", "EvalDecision": "allowed"}]}, simulate_params(["rds:RebootDBInstance"]))
    monkeypatch.setattr(reach, "shop_rows", lambda *a: [])
    monkeypatch.setattr(guards, "interactive", lambda: True)
    prompts = []
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or "yes")
    env = {"AWS_REGION": "eu-west-1", "GAMEDAY_SHOP_URL": "https://staging.shop.example",
           "GAMEDAY_DB_INSTANCE_ID": "stage-db", "GAMEDAY_ALLOWED_ACCOUNTS": ACCOUNT,
           "GAMEDAY_ALLOWED_SHOP_URLS": "https://staging.shop.example"}
    spec = dict(SPEC, configuration=dict(SPEC["configuration"], chaos_waive_tag_guardrail=True))
    result = safety.gate_aws_run(spec, env, "run-1", yes=False)
    out = capsys.readouterr().out
    rows = {(r.section, r.item): r for r in result.rows}
    assert rows[("waivers", "chaos_waive_tag_guardrail")].status == WARN
    assert rows[("target", "DB instance stage-db")].status == WARN
    assert "allow tag missing, WAIVED" in rows[("target", "DB instance stage-db")].detail
    confirmation = out.split("preflight: READY", 1)[1]
    assert "WAIVED chaos_waive_tag_guardrail: resources without the allow tag" in confirmation
    assert prompts == [guards.RUN_PROMPT]
    (run_dir / "target.json").write_text(json.dumps(safety.target_info("aws", env, result.facts)))
    paths = write_report(str(run_dir))
    assert "WAIVED chaos_waive_tag_guardrail" in Path(paths["report.md"]).read_text()
    assert json.loads(Path(paths["summary.json"]).read_text())["target"]["waivers"] == result.facts["waivers"]
