"""The FIS and STS read calls users make first, through real boto3 clients against the lab's facade
(backed by the in-memory double): what they list is exactly the lab's FIS catalogue."""
import pytest
from botocore.exceptions import ClientError
from test_fis_facade import FisFakeLab, _serve

from woolab.facade.fis_catalog import ACTIONS


@pytest.fixture
def clients(tmp_path):
    httpd, fis, _rds = _serve(FisFakeLab(tmp_path))
    import boto3
    sts = boto3.client("sts", endpoint_url=f"http://127.0.0.1:{httpd.server_address[1]}", region_name="us-east-1")
    yield fis, sts
    httpd.shutdown()
    httpd.server_close()


def test_list_actions_pages_through_exactly_the_lab_catalogue(clients):
    fis, _ = clients
    listed = [a for page in fis.get_paginator("list_actions").paginate(PaginationConfig={"PageSize": 2})
              for a in page["actions"]]
    assert sorted(a["id"] for a in listed) == sorted(ACTIONS)
    reboot = next(a for a in listed if a["id"] == "aws:rds:reboot-db-instances")
    assert reboot["targets"] == {"DBInstances": {"resourceType": "aws:rds:db"}}
    assert reboot["arn"].endswith(":action/aws:rds:reboot-db-instances")


def test_get_action_names_its_parameters_and_which_are_required(clients):
    fis, _ = clients
    action = fis.get_action(id="aws:elasticache:replicationgroup-interrupt-az-power")["action"]
    assert action["parameters"]["duration"]["required"] is True
    assert action["targets"] == {"ReplicationGroups": {"resourceType": "aws:elasticache:replicationgroup"}}
    assert fis.get_action(id="aws:rds:reboot-db-instances")["action"]["parameters"]["forceFailover"]["required"] is False


def test_an_action_the_lab_does_not_have_is_not_found(clients):
    fis, _ = clients
    with pytest.raises(ClientError) as refused:
        fis.get_action(id="aws:elasticache:interrupt-cluster-az-power")
    assert refused.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_target_resource_types_are_those_the_actions_target(clients):
    fis, _ = clients
    listed = {t["resourceType"] for t in fis.list_target_resource_types()["targetResourceTypes"]}
    assert listed == {spec.resource_type for spec in ACTIONS.values() if spec.resource_type}
    db = fis.get_target_resource_type(resourceType="aws:rds:db")["targetResourceType"]
    assert db["resourceType"] == "aws:rds:db" and db["description"]
    with pytest.raises(ClientError) as refused:
        fis.get_target_resource_type(resourceType="aws:ecs:task")
    assert refused.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_get_caller_identity_answers_the_lab_account(clients):
    _, sts = clients
    identity = sts.get_caller_identity()
    assert identity["Account"] == "123456789012" and identity["Arn"].startswith("arn:aws:iam::123456789012:")
