"""The AWS monitoring the pack ships: the CloudFormation template passes cfn-lint, routes the
right RDS event ids, its Slack Lambda formats real alert shapes, and the IAM policy covers every
boto3 operation the extension calls — with mutations only on tagged resources."""
import ast
import fnmatch
import json
from pathlib import Path

import botocore.session
import pytest

from groundfloor.aws_events import EVENT_TABLE

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "infra" / "cloudformation" / "monitoring.yaml"
POLICY = ROOT / "infra" / "iam" / "gameday-policy.json"
# botocore service name -> IAM action prefix (CloudWatch's endpoint prefix is "monitoring").
IAM_PREFIX = {"rds": "rds", "elasticache": "elasticache", "cloudwatch": "cloudwatch",
              "sts": "sts", "fis": "fis", "ec2": "ec2"}
# Not a call: CreateExperimentTemplate hands FIS the experiment role (its roleArn).
IMPLIED_BY_CALLS = {"iam:PassRole"}
# Granted to the identity that *assumes* the pack's role (its trust policy), not to the role.
NOT_THE_PACKS_ROLE = {"sts:AssumeRole"}
MUTATIONS = {"rds:RebootDBInstance", "rds:FailoverDBCluster", "elasticache:TestFailover",
             "elasticache:DeleteCacheCluster", "elasticache:IncreaseReplicaCount"}
ALLOW_TAG = "aws:ResourceTag/chaos:allowed"


@pytest.fixture(scope="module")
def template():
    cfn_yaml = pytest.importorskip("cfnlint.decode.cfn_yaml", reason="pip install cfn-lint")
    return cfn_yaml.load(str(TEMPLATE))


@pytest.fixture(scope="module")
def policy():
    return json.loads(POLICY.read_text())


# -- CloudFormation --------------------------------------------------------------------------
def test_monitoring_template_passes_cfn_lint():
    api = pytest.importorskip("cfnlint.api", reason="pip install cfn-lint (setup.cfg test extras)")
    matches = api.lint_file(TEMPLATE)  # errors, warnings and informational findings
    assert not matches, "\n".join(str(m) for m in matches)


def test_rds_rule_routes_the_failover_event_ids_not_the_often_quoted_ones(template):
    rule = template["Resources"]["RdsFailoverRule"]["Properties"]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.rds"]
    assert pattern["detail-type"] == ["RDS DB Instance Event"]
    routed = set(pattern["detail"]["EventID"])
    known = {e.event_id: e.kind for e in EVENT_TABLE if e.service == "rds" and e.event_id}
    assert routed == {"RDS-EVENT-0013", "RDS-EVENT-0049", "RDS-EVENT-0015", "RDS-EVENT-0034",
                      "RDS-EVENT-0006"}
    assert routed <= set(known), "every routed id is in groundfloor.aws_events.EVENT_TABLE"
    assert "RDS-EVENT-0005" not in routed  # "instance created", an often-quoted mistake
    assert rule["Targets"][0]["Arn"] == {"Ref": "AlertTopic"}


def test_topic_policy_lets_eventbridge_cloudwatch_and_elasticache_publish(template):
    statements = template["Resources"]["AlertTopicPolicy"]["Properties"]["PolicyDocument"][
        "Statement"]
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["EventBridgeRdsFailoverRule"]["Principal"] == {"Service": "events.amazonaws.com"}
    assert "aws:SourceArn" in by_sid["EventBridgeRdsFailoverRule"]["Condition"]["ArnEquals"]
    assert "aws:SourceOwner" in by_sid["ElastiCacheNotifications"]["Condition"]["StringEquals"]
    assert all(s["Action"] == "sns:Publish" for s in statements)


def test_slack_webhook_url_is_not_in_the_template(template):
    text = TEMPLATE.read_text()
    assert "hooks.slack.com" not in text
    param = template["Parameters"]["SlackWebhookParameterName"]
    assert param["Default"].startswith("/")  # a parameter *name*; the URL is a SecureString


def _lambda_module(template):
    code = template["Resources"]["SlackPoster"]["Properties"]["Code"]["ZipFile"]
    namespace = {}
    exec(compile(str(code), "index.py", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("message, expected", [
    ({"source": "aws.rds", "detail-type": "RDS DB Instance Event",
      "detail": {"EventID": "RDS-EVENT-0049", "SourceIdentifier": "shop-db",
                 "Message": "Multi-AZ instance failover completed"}},
     ":rotating_light: RDS shop-db: RDS-EVENT-0049 Multi-AZ instance failover completed"),
    ({"AlarmName": "gameday-rds-cpu-high", "NewStateValue": "ALARM",
      "NewStateReason": "Threshold Crossed"},
     ":bell: Alarm gameday-rds-cpu-high is ALARM: Threshold Crossed"),
    ({"ElastiCache:FailoverComplete": "shop-cache-002"},
     ":rotating_light: ElastiCache:FailoverComplete: shop-cache-002"),
])
def test_slack_lambda_describes_each_alert_source(template, message, expected):
    describe = _lambda_module(template)["describe"]
    assert describe("subject", json.dumps(message)) == expected


def test_slack_lambda_passes_plain_text_through(template):
    assert _lambda_module(template)["describe"]("Hi", "plain") == "Hi: plain"


# -- IAM -------------------------------------------------------------------------------------
def _file_calls(tree):
    """(services named in client factories, operation names called) in one module."""
    services, operations = set(), set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        first = node.args[0] if node.args else None
        second = node.args[1] if len(node.args) > 1 else None
        if name in ("aws_client", "client") and first is not None:
            services |= {c.value for c in ast.walk(first)  # also "rds" if x else "elasticache"
                         if isinstance(c, ast.Constant) and isinstance(c.value, str)}
        elif name in ("aws_call", "paginate") and isinstance(second, ast.Constant):
            operations.add(second.value)
        elif name == "get_paginator" and isinstance(first, ast.Constant):
            operations.add(first.value)
        elif isinstance(func, ast.Attribute):
            operations.add(func.attr)  # direct client.<operation>(...) calls
    return services, operations


def _required_actions():
    """IAM actions for every boto3 operation called in chaosext, per module's own clients
    (a module that builds no client is matched against every service the pack uses)."""
    modules = [_file_calls(ast.parse(p.read_text())) for p in (ROOT / "chaosext").rglob("*.py")]
    everywhere = set().union(*(services for services, _ in modules))
    session = botocore.session.get_session()
    required = set()
    for services, operations in modules:
        for service in services or everywhere:
            assert service in IAM_PREFIX, f"add the IAM prefix of boto3 service {service!r}"
            model = session.get_service_model(service)
            by_method = {botocore.xform_name(op): op for op in model.operation_names}
            required |= {f"{IAM_PREFIX[service]}:{by_method[op]}" for op in operations
                         if op in by_method}
    return required - NOT_THE_PACKS_ROLE


def _allowed(policy):
    for statement in policy["Statement"]:
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            yield action, statement


def test_scan_finds_the_calls_the_extension_is_known_to_make():
    required = _required_actions()
    assert {"rds:RebootDBInstance", "rds:DescribeEvents", "elasticache:TestFailover",
            "elasticache:DescribeEvents", "cloudwatch:DescribeAlarmHistory",
            "cloudwatch:GetMetricStatistics"} <= required


def test_iam_policy_covers_every_boto3_operation_the_code_calls(policy):
    granted = [action for action, _ in _allowed(policy)]
    missing = sorted(a for a in _required_actions()
                     if not any(fnmatch.fnmatchcase(a, g) for g in granted))
    assert not missing, f"infra/iam/gameday-policy.json lacks {missing}"


def test_iam_policy_is_least_privilege(policy):
    assert policy["Version"] == "2012-10-17"
    # CreateCacheCluster(Tags=...) also authorizes elasticache:AddTagsToResource (tag on create)
    required = _required_actions() | {"elasticache:AddTagsToResource"}
    for action, statement in _allowed(policy):
        assert statement["Effect"] == "Allow" and "*" not in action
        assert action in required | IMPLIED_BY_CALLS, f"{action} is granted but the code never calls it"


def test_failover_actions_only_on_resources_carrying_the_allow_tag(policy):
    for action, statement in _allowed(policy):
        if action in MUTATIONS:
            assert statement["Resource"] != "*"
            assert statement["Condition"]["StringEquals"][ALLOW_TAG] == "true", action
