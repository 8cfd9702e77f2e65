"""Guardrails of a DB cluster failover (API and FIS) against botocore's Stubber: each refusal is
one line and comes before any mutating call (a call not queued fails the test), so "nothing was
changed" is checked, not assumed."""
import contextlib

import pytest
from botocore.stub import ANY, Stubber

import chaosext.fis.actions as fis_actions
import chaosext.fis.experiment as fis_experiment
import chaosext.fis.live as fis_live
import chaosext.fis.probes as fis_probes
import chaosext.rds.actions as rds_actions
from chaosext.aws import aws_client
from chaosext.errors import ActivityError, GuardrailRefused

CONFIG = {"aws_region": "us-east-1", "fis_role_arn": "arn:aws:iam::123456789012:role/fis"}
CLUSTER_ARN = "arn:aws:rds:us-east-1:123456789012:cluster:shop-cluster"
ALLOWED = (("chaos:allowed", "true"),)
BY_ID = {"DBClusterIdentifier": "shop-cluster"}
MEMBERS = {"Filters": [{"Name": "db-cluster-id", "Values": ["shop-cluster"]}]}


@pytest.fixture
def aws(monkeypatch):
    """Real RDS and FIS clients under Stubbers, handed to every module that builds clients."""
    clients = {service: aws_client(service, CONFIG) for service in ("rds", "fis")}
    for module in (rds_actions, fis_actions, fis_experiment, fis_probes):
        monkeypatch.setattr(module, "aws_client", lambda service, *a, **k: clients[service])
    with contextlib.ExitStack() as stack:
        stubbers = {s: stack.enter_context(Stubber(c)) for s, c in clients.items()}
        yield stubbers
        for stubber in stubbers.values():
            stubber.assert_no_pending_responses()


def cluster(status="available", tags=ALLOWED, writer="db-1"):
    members = [{"DBInstanceIdentifier": f"db-{n}", "IsClusterWriter": f"db-{n}" == writer} for n in (1, 2, 3)]
    return {"DBClusters": [{"DBClusterIdentifier": "shop-cluster", "Status": status, "MultiAZ": True,
                            "DBClusterMembers": members, "DBClusterArn": CLUSTER_ARN,
                            "TagList": [{"Key": k, "Value": v} for k, v in tags]}]}


def members(zones=("us-east-1a", "us-east-1b", "us-east-1c")):
    return {"DBInstances": [{"DBInstanceIdentifier": f"db-{n}", "DBClusterIdentifier": "shop-cluster",
                             "AvailabilityZone": az, "DBInstanceStatus": "available"}
                            for n, az in enumerate(zones, 1)]}


def instance(name="shop-db", cluster_id=None):
    found = {"DBInstanceIdentifier": name, "DBInstanceStatus": "available", "MultiAZ": True,
             "AvailabilityZone": "us-east-1a", "SecondaryAvailabilityZone": "us-east-1b",
             "DBInstanceArn": f"arn:aws:rds:us-east-1:123456789012:db:{name}",
             "TagList": [{"Key": "chaos:allowed", "Value": "true"}]}
    if cluster_id:
        found["DBClusterIdentifier"] = cluster_id
    return {"DBInstances": [found]}


def one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message and message.endswith("nothing was changed")
    return message


def test_cluster_failover_refuses_writer_and_readers_in_one_az(aws):
    aws["rds"].add_response("describe_db_clusters", cluster(), BY_ID)
    aws["rds"].add_response("describe_db_instances", members(("us-east-1a",) * 3), MEMBERS)
    with pytest.raises(GuardrailRefused) as err:
        rds_actions.failover_db_cluster("shop-cluster", configuration=CONFIG)
    assert "in fewer than two AZs (db-1 in us-east-1a, db-2 in us-east-1a, db-3 in us-east-1a)" in one_line(err)


def test_cluster_failover_refuses_a_cluster_without_the_allow_tag(aws):
    aws["rds"].add_response("describe_db_clusters", cluster(tags=(("team", "shop"),)), BY_ID)
    with pytest.raises(GuardrailRefused) as err:
        rds_actions.failover_db_cluster("shop-cluster", configuration=CONFIG)
    assert "DB cluster shop-cluster refused: it does not carry the allow tag chaos:allowed=true" in one_line(err)


def test_cluster_failover_refuses_a_cluster_not_on_the_resource_allow_list(aws):
    aws["rds"].add_response("describe_db_clusters", cluster(), BY_ID)
    with pytest.raises(GuardrailRefused) as err:
        rds_actions.failover_db_cluster("shop-cluster", configuration={
            **CONFIG, "aws_allowed_resources": "other-cluster"})
    assert "it is not in the resource allow-list ['other-cluster']" in one_line(err)


def test_cluster_failover_refuses_a_cluster_that_is_not_available(aws):
    aws["rds"].add_response("describe_db_clusters", cluster(status="failing-over"), BY_ID)
    aws["rds"].add_response("describe_db_instances", members(), MEMBERS)
    with pytest.raises(GuardrailRefused) as err:
        rds_actions.failover_db_cluster("shop-cluster", configuration=CONFIG)
    assert "it is failing-over, not available" in one_line(err)


def test_cluster_failover_on_an_instance_id_names_the_instance_experiment(aws):
    aws["rds"].add_client_error("describe_db_clusters", "DBClusterNotFoundFault", "DBCluster shop-db not found", 404)
    aws["rds"].add_response("describe_db_instances", instance(), {"DBInstanceIdentifier": "shop-db"})
    with pytest.raises(GuardrailRefused) as err:
        rds_actions.failover_db_cluster("shop-db", configuration=CONFIG)
    assert "shop-db is a DB instance, not a DB cluster" in one_line(err) and "rds-force-failover" in str(err.value)


def test_cluster_failover_on_a_member_instance_id_asks_for_the_cluster(aws):
    aws["rds"].add_client_error("describe_db_clusters", "DBClusterNotFoundFault", "DBCluster db-2 not found", 404)
    aws["rds"].add_response("describe_db_instances", instance("db-2", "shop-cluster"), {"DBInstanceIdentifier": "db-2"})
    with pytest.raises(GuardrailRefused) as err:
        rds_actions.failover_db_cluster("db-2", configuration=CONFIG)
    assert "db-2 is a DB instance, not a DB cluster (it is a member of DB cluster shop-cluster: name the " \
           "cluster)" in one_line(err)


def test_an_unknown_cluster_id_stays_not_found(aws):
    aws["rds"].add_client_error("describe_db_clusters", "DBClusterNotFoundFault", "DBCluster nope not found", 404)
    aws["rds"].add_client_error("describe_db_instances", "DBInstanceNotFound", "DBInstance nope not found", 404)
    with pytest.raises(ActivityError, match="DescribeDBClusters on DB cluster nope refused: no such DB cluster") as err:
        rds_actions.failover_db_cluster("nope", configuration=CONFIG)
    assert not isinstance(err.value, GuardrailRefused)


def test_instance_failover_on_a_cluster_id_names_the_cluster_experiment(aws):
    aws["rds"].add_client_error("describe_db_instances", "DBInstanceNotFound", "DBInstance not found", 404)
    aws["rds"].add_response("describe_db_clusters", cluster(), BY_ID)
    with pytest.raises(GuardrailRefused) as err:
        rds_actions.force_failover("shop-cluster", configuration=CONFIG)
    assert "shop-cluster is a DB cluster, not a DB instance" in one_line(err) and "rds-cluster-failover" in str(err.value)


def test_instance_failover_refuses_a_member_of_a_cluster(aws):
    aws["rds"].add_response("describe_db_instances", instance("db-1", "shop-cluster"), {"DBInstanceIdentifier": "db-1"})
    with pytest.raises(GuardrailRefused) as err:
        rds_actions.force_failover("db-1", configuration=CONFIG)
    assert "it is a member of DB cluster shop-cluster" in one_line(err)


def test_fis_cluster_failover_refuses_one_az_before_any_fis_call(aws):
    aws["rds"].add_response("describe_db_clusters", cluster(), BY_ID)
    aws["rds"].add_response("describe_db_instances", members(("us-east-1b",) * 3), MEMBERS)
    with pytest.raises(GuardrailRefused) as err:
        fis_actions.failover_db_cluster(db_cluster_identifier="shop-cluster", configuration=CONFIG)
    assert one_line(err).startswith("FIS aws:rds:failover-db-cluster on DB cluster shop-cluster refused")


def test_fis_cluster_failover_selects_the_tagged_cluster_of_that_id_only(aws):
    aws["rds"].add_response("describe_db_clusters", cluster(), BY_ID)
    aws["rds"].add_response("describe_db_instances", members(), MEMBERS)
    target = {"resourceType": "aws:rds:cluster", "selectionMode": "ALL", "resourceTags": {"chaos:allowed": "true"},
              "filters": [{"path": "DBClusterIdentifier", "values": ["shop-cluster"]}]}
    aws["fis"].add_response("create_experiment_template", {"experimentTemplate": {"id": "EXT1"}}, {
        "clientToken": ANY, "description": "Fail over DB cluster shop-cluster", "targets": {"Clusters": target},
        "actions": {"FailoverDBClusters": {"actionId": "aws:rds:failover-db-cluster",
                                           "targets": {"Clusters": "Clusters"}}},
        "stopConditions": [{"source": "none"}], "roleArn": CONFIG["fis_role_arn"]})
    aws["fis"].add_response("start_experiment", {"experiment": {"id": "EXP1", "state": {"status": "pending"}}},
                            {"clientToken": ANY, "experimentTemplateId": "EXT1"})
    aws["fis"].add_response("get_experiment", {"experiment": {"id": "EXP1", "state": {"status": "running"}}},
                            {"id": "EXP1"})
    result = fis_actions.failover_db_cluster(db_cluster_identifier="shop-cluster", wait=False,
                                             measure_data_plane=False, configuration=CONFIG)
    assert result["fis"]["experiment_id"] == "EXP1" and result["fault"] == "fis-rds-failover-db-cluster"
    assert "EXP1" in fis_live.live_experiments()  # started without waiting: the rollback stops it
    fis_live.forget("EXP1")
