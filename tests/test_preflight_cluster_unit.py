"""The preflight's DB cluster rows against botocore's Stubber: the target row (writer, readers and
their AZs), its refusals as FAIL rows, the instance-versus-cluster mix-ups, and the plan row of a
cluster failover (API and FIS)."""
import pytest
from botocore.stub import Stubber

from chaosext.aws import aws_client
from gameday.preflight import cloud, plan
from gameday.preflight.context import Context
from gameday.preflight.table import FAIL, INFO, OK, WARN

ACCOUNT = "111122223333"
CLUSTER_ARN = f"arn:aws:rds:eu-west-1:{ACCOUNT}:cluster:stage-cluster"
ALLOW = [{"Key": "chaos:allowed", "Value": "true"}]
MEMBERS = {"Filters": [{"Name": "db-cluster-id", "Values": ["stage-cluster"]}]}
EVENTS = {"SourceIdentifier": "stage-cluster", "SourceType": "db-cluster", "Duration": 60, "MaxRecords": 20}
FIS = "chaosext.fis.actions.failover_db_cluster"


@pytest.fixture
def rds(monkeypatch):
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    client = aws_client("rds", {"aws_region": "eu-west-1"})
    monkeypatch.setattr(cloud, "aws_client", lambda *a, **k: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def context(resources, actions=()):
    ctx = Context("aws", {"AWS_REGION": "eu-west-1"}, {}, {"aws_region": "eu-west-1"}, {}, "run-1", False,
                  list(resources))
    ctx.actions = [{"phase": "method", "name": func, "func": func, "arguments": args, "background": False}
                   for func, args in actions]
    return ctx


def expect_cluster(rds, zones=("eu-west-1a", "eu-west-1b", "eu-west-1c")):
    members = [{"DBInstanceIdentifier": f"stage-{n}", "IsClusterWriter": n == 1} for n in (1, 2, 3)]
    rds.add_response("describe_db_clusters", {"DBClusters": [{
        "DBClusterIdentifier": "stage-cluster", "DBClusterArn": CLUSTER_ARN, "Status": "available", "MultiAZ": True,
        "Endpoint": "stage-cluster.cluster-x.eu-west-1.rds.amazonaws.com", "Port": 3306,
        "DBClusterMembers": members, "TagList": ALLOW}]}, {"DBClusterIdentifier": "stage-cluster"})
    rds.add_response("describe_events", {"Events": []}, EVENTS)
    rds.add_response("describe_db_instances", {"DBInstances": [
        {"DBInstanceIdentifier": f"stage-{n}", "AvailabilityZone": az, "DBClusterIdentifier": "stage-cluster"}
        for n, az in enumerate(zones, 1)]}, MEMBERS)


def test_cluster_row_names_the_writer_and_the_readers_with_their_azs(rds):
    expect_cluster(rds)
    ctx = context([("db-cluster", "stage-cluster")])
    [row] = cloud.target_rows(ctx)
    assert row.status == OK
    assert "writer stage-1 (eu-west-1a), readers stage-2 (eu-west-1b), stage-3 (eu-west-1c)" in row.detail
    assert ctx.facts["clusters"]["stage-cluster"]["writer"] == "stage-1"


def test_cluster_in_one_az_fails_the_preflight(rds):
    expect_cluster(rds, ("eu-west-1a",) * 3)
    [row] = cloud.target_rows(context([("db-cluster", "stage-cluster")]))
    assert row.status == FAIL and "fewer than two AZs" in row.detail


def test_cluster_experiment_naming_an_instance_fails_with_the_right_experiment(rds):
    rds.add_client_error("describe_db_clusters", "DBClusterNotFoundFault", "not found", 404)
    rds.add_response("describe_db_instances", {"DBInstances": [{"DBInstanceIdentifier": "stage-cluster"}]},
                     {"DBInstanceIdentifier": "stage-cluster"})
    [row] = cloud.target_rows(context([("db-cluster", "stage-cluster")]))
    assert row.status == FAIL and "is a DB instance, not a DB cluster" in row.detail
    assert "rds-force-failover" in row.detail


def test_instance_experiment_naming_a_cluster_member_fails(rds):
    rds.add_response("describe_db_instances", {"DBInstances": [{
        "DBInstanceIdentifier": "stage-2", "DBClusterIdentifier": "stage-cluster", "MultiAZ": False,
        "DBInstanceStatus": "available", "TagList": ALLOW,
        "DBInstanceArn": f"arn:aws:rds:eu-west-1:{ACCOUNT}:db:stage-2"}]}, {"DBInstanceIdentifier": "stage-2"})
    rds.add_response("describe_events", {"Events": []}, {
        "SourceIdentifier": "stage-2", "SourceType": "db-instance", "Duration": 60, "MaxRecords": 20})
    [row] = cloud.target_rows(context([("db-instance", "stage-2")]))
    assert row.status == FAIL and "it is a member of DB cluster stage-cluster" in row.detail


def test_plan_row_says_where_the_writer_goes_and_how_fis_selects_the_cluster(rds):
    expect_cluster(rds)
    ctx = context([("db-cluster", "stage-cluster")], [(FIS, {"db_cluster_identifier": "stage-cluster"})])
    cloud.target_rows(ctx)
    [row] = [r for r in plan.plan_rows(ctx, "http://shop") if r.item == "cluster failover 1"]
    assert row.status == INFO
    assert row.detail.startswith("AWS FIS aws:rds:failover-db-cluster on DB cluster stage-cluster: writer "
                                 "stage-1 (eu-west-1a) -> one of stage-2 (eu-west-1b), stage-3 (eu-west-1c)")
    assert "by the tag chaos:allowed=true and DBClusterIdentifier stage-cluster" in row.detail


def test_plan_row_warns_when_fis_would_select_every_tagged_cluster():
    ctx = context([], [(FIS, {})])
    [row] = [r for r in plan.plan_rows(ctx, "http://shop") if r.item == "cluster failover 1"]
    assert row.status == WARN and "FIS selects all of them" in row.detail


def cluster_spec(default: str) -> dict:
    return {"title": "cluster failover", "configuration": {
        "aws_region": "eu-west-1",
        "db_cluster_id": {"type": "env", "key": "GAMEDAY_DB_CLUSTER_ID", "default": default},
        "shop_url": {"type": "env", "key": "GAMEDAY_SHOP_URL", "default": "http://127.0.0.1:15301"}},
        "method": [{"type": "action", "name": "fail-over", "provider": {
            "type": "python", "module": "chaosext.rds.actions", "func": "failover_db_cluster",
            "arguments": {"db_cluster_identifier": "${db_cluster_id}"}}}]}


def test_on_aws_the_cluster_id_must_be_set_when_the_experiment_defaults_to_the_lab_s():
    from gameday.preflight import _required_rows
    from gameday.preflight.context import build_context
    env = {"AWS_REGION": "eu-west-1", "GAMEDAY_SHOP_URL": "https://staging.shop.example"}
    rows = {r.item: r for r in _required_rows(build_context(cluster_spec("shop-db-cluster"), "aws", env, "run-1"))}
    assert rows["GAMEDAY_DB_CLUSTER_ID"].status == FAIL and rows["GAMEDAY_DB_CLUSTER_ID"].fix == "set GAMEDAY_DB_CLUSTER_ID"
    optional = {r.item for r in _required_rows(build_context(cluster_spec(""), "aws", env, "run-1"))}
    assert "GAMEDAY_DB_CLUSTER_ID" not in optional  # an empty default: the step is skipped without one
