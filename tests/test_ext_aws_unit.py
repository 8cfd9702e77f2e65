"""Unit tests of the boto3 client factory, AWS error sentences, events table and guardrails."""
import botocore.exceptions
import pytest
from chaoslib.exceptions import ActivityFailed

from chaosext.aws import aws_call, aws_client, explain_aws_error
from chaosext.errors import ActivityError, GamedayError, GuardrailRefused
from groundfloor.aws_events import classify, describe_event
from chaosext.guardrails import Target, check_target, is_dry_run


@pytest.fixture
def aws_env(monkeypatch):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL",
                 "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


def test_client_refuses_without_region(aws_env):
    with pytest.raises(ActivityError, match="no AWS region: set the configuration key `aws_region`"):
        aws_client("rds")


def test_client_region_from_configuration_beats_environment(aws_env):
    aws_env.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert aws_client("rds", {"aws_region": "us-east-2"}).meta.region_name == "us-east-2"
    assert aws_client("rds").meta.region_name == "eu-west-1"


def test_client_takes_credentials_from_secrets(aws_env):
    client = aws_client("rds", {"aws_region": "us-east-1"},
                        {"aws_access_key_id": "AKIDSECRETS", "aws_secret_access_key": "s"})
    assert client._request_signer._credentials.access_key == "AKIDSECRETS"


def test_client_honours_standard_endpoint_variable(aws_env):
    aws_env.setenv("AWS_ENDPOINT_URL_ELASTICACHE", "http://127.0.0.1:9")
    client = aws_client("elasticache", {"aws_region": "us-east-1"})
    assert client.meta.endpoint_url == "http://127.0.0.1:9"


def test_unknown_profile_is_one_clear_error(aws_env):
    with pytest.raises(ActivityError, match="check `aws_profile_name`"):
        aws_client("rds", {"aws_region": "us-east-1", "aws_profile_name": "nope"})


def test_missing_credentials_explained(aws_env):
    client = aws_client("rds", {"aws_region": "us-east-1"})
    with pytest.raises(ActivityError, match="no AWS credentials found") as caught:
        aws_call(client, "describe_db_instances", "DB instance shop-db")
    assert "DescribeDBInstances on DB instance shop-db failed" in str(caught.value)


def test_unreachable_endpoint_explained(aws_env):
    aws_env.setenv("AWS_ACCESS_KEY_ID", "testing")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws_env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    aws_env.setenv("AWS_MAX_ATTEMPTS", "1")
    client = aws_client("rds", {"aws_region": "us-east-1"})
    with pytest.raises(ActivityError, match=r"cannot reach the AWS endpoint http://127.0.0.1:9"):
        aws_call(client, "describe_db_instances", "DB instance shop-db")


def test_known_and_unknown_error_codes_become_sentences():
    def client_error(code):
        return botocore.exceptions.ClientError(
            {"Error": {"Code": code, "Message": "detail"}}, "RebootDBInstance")
    known = explain_aws_error(client_error("InvalidDBInstanceState"), "RebootDBInstance on shop-db")
    assert known.startswith("RebootDBInstance on shop-db refused: the DB instance is not in a state")
    assert "(InvalidDBInstanceState: detail)" in known
    unknown = explain_aws_error(client_error("SomethingNew"), "X on y")
    assert unknown == "X on y refused: AWS refused it (SomethingNew: detail)"


def test_activity_errors_are_both_gameday_and_chaostoolkit_failures():
    assert issubclass(GuardrailRefused, ActivityFailed)
    assert issubclass(GuardrailRefused, GamedayError)


@pytest.mark.parametrize("message,event_id,kind", [
    ("Multi-AZ instance failover started.", "RDS-EVENT-0013", "failover-started"),
    ("Multi-AZ instance failover completed", "RDS-EVENT-0049", "failover-completed"),
    ("Multi-AZ failover to standby complete - DNS may take several minutes.",
     "RDS-EVENT-0015", "failover-completed"),
    ("DB instance restarted", "RDS-EVENT-0006", "restarted"),
    ("DB instance shutdown", "RDS-EVENT-0004", "shutdown"),
    ("Amazon RDS is not attempting a requested failover because a failover recently occurred "
     "on the DB instance.", "RDS-EVENT-0034", "failover-not-attempted"),
    ("Completed failover to DB instance: db-2", "RDS-EVENT-0071", "failover-completed"),
    ("Test Failover API called for node group 0001", None, "failover-started"),
    ("Failover from primary node shop-cache-001 to replica node shop-cache-002 completed",
     None, "failover-completed"),
    ("Recovering cache nodes 0001", None, "recovery-started"),
    ("Finished recovery for cache nodes 0001", None, "recovery-completed"),
])
def test_event_messages_classify_to_ids_and_kinds(message, event_id, kind):
    entry = classify(message)
    assert (entry.event_id, entry.kind) == (event_id, kind)


def test_instance_created_is_not_a_failover_event():
    assert classify("DB instance created") is None
    assert describe_event({"Message": "DB instance created"})["kind"] is None


TARGET = Target("DB instance", "shop-db", "arn:aws:rds:us-east-1:123456789012:db:shop-db",
                "us-east-1", {"chaos:allowed": "true"})


def test_guardrail_accepts_tagged_target_in_allowed_region_and_account():
    check_target(TARGET, "X", {"aws_allowed_regions": "us-east-1, eu-west-1",
                               "aws_allowed_accounts": ["123456789012"]})


def test_guardrail_refuses_untagged_target_unless_waived():
    untagged = Target("DB instance", "db", TARGET.arn, "us-east-1", {})
    with pytest.raises(GuardrailRefused, match="does not carry the allow tag chaos:allowed=true"):
        check_target(untagged, "RebootDBInstance", {})
    check_target(untagged, "RebootDBInstance", {"chaos_waive_tag_guardrail": "true"})


def test_guardrail_uses_configured_allow_tag():
    with pytest.raises(GuardrailRefused, match="gameday=yes"):
        check_target(TARGET, "X", {"chaos_allow_tag": "gameday=yes"})
    check_target(TARGET, "X", {"chaos_allow_tag": "chaos:allowed"})


def test_guardrail_refuses_other_region_and_account():
    with pytest.raises(GuardrailRefused, match="region us-east-1 is not in aws_allowed_regions"):
        check_target(TARGET, "X", {"aws_allowed_regions": ["eu-west-1"]})
    with pytest.raises(GuardrailRefused, match="account 123456789012 is not in"):
        check_target(TARGET, "X", {"aws_allowed_accounts": "999999999999"})


def test_dry_run_argument_overrides_configuration():
    assert is_dry_run({"gameday_dry_run": "true"}) is True
    assert is_dry_run({"gameday_dry_run": True}, dry_run=False) is False
    assert is_dry_run({}) is False
