"""FIS against the real lab: a boto3 ``fis`` client drives real failovers through the facade, and
the lab's ground-truth event log says what really happened."""
import time
import uuid

import boto3
import pytest

import chaosext.fis.actions as fis_actions

pytestmark = pytest.mark.lab

ROLE = "arn:aws:iam::123456789012:role/failover-gameday-fis"
TAGS = {"chaos:allowed": "true"}


def _template(fis, targets, actions, **extra):
    return fis.create_experiment_template(clientToken=str(uuid.uuid4()), description="lab test", roleArn=ROLE,
                                          stopConditions=[{"source": "none"}], targets=targets,
                                          actions=actions, **extra)["experimentTemplate"]["id"]


def _wait_end(fis, experiment_id, timeout=120.0):
    deadline = time.monotonic() + timeout
    while True:
        experiment = fis.get_experiment(id=experiment_id)["experiment"]
        if experiment["state"]["status"] in ("completed", "stopped", "failed"):
            return experiment
        assert time.monotonic() < deadline, experiment["state"]
        time.sleep(0.2)


@pytest.fixture
def fis(lab_env):
    return boto3.client("fis", region_name="us-east-1")


def test_fis_reboot_with_force_failover_fails_the_lab_db_over_and_completes(fis, lab):
    lab.wait_idle()
    before = lab.snapshot()["db_instances"]["shop-db"]["primary"]
    template_id = _template(
        fis, {"db": {"resourceType": "aws:rds:db", "resourceTags": TAGS, "selectionMode": "ALL"}},
        {"reboot": {"actionId": "aws:rds:reboot-db-instances", "parameters": {"forceFailover": "true"},
                    "targets": {"DBInstances": "db"}}})
    started_at = time.time()
    experiment_id = fis.start_experiment(clientToken=str(uuid.uuid4()),
                                         experimentTemplateId=template_id)["experiment"]["id"]
    experiment = _wait_end(fis, experiment_id)
    assert experiment["state"]["status"] == "completed", experiment["state"]
    db = lab.snapshot()["db_instances"]["shop-db"]
    assert db["primary"] != before and db["status"] == "available"
    messages = [e["message"] for e in lab.events(started_at) if e["source_type"] == "db-instance"]
    assert "Multi-AZ instance failover started." in messages
    assert "Multi-AZ instance failover completed" in messages
    # The action ended only once RDS reported the instance available again.
    assert experiment["actions"]["reboot"]["endTime"].timestamp() >= max(
        e["time"] for e in lab.events(started_at) if e["source_type"] == "db-instance")
    markers = [e["message"] for e in lab.events(started_at) if e["source_id"] == experiment_id]
    assert markers[0].startswith(f"FIS experiment {experiment_id} started") and markers[-1].startswith("completed")


def test_fis_experiment_stopped_mid_run_ends_stopped(fis, lab):
    template_id = _template(fis, {}, {"pause": {"actionId": "aws:fis:wait", "parameters": {"duration": "PT1M"}}})
    experiment_id = fis.start_experiment(clientToken=str(uuid.uuid4()),
                                         experimentTemplateId=template_id)["experiment"]["id"]
    time.sleep(0.5)
    assert fis.stop_experiment(id=experiment_id)["experiment"]["state"]["status"] in ("stopping", "stopped")
    experiment = _wait_end(fis, experiment_id, timeout=10)
    assert experiment["state"]["status"] == "stopped"
    assert experiment["actions"]["pause"]["state"]["status"] == "stopped"


def test_fis_targets_matching_nothing_fail_with_invalid_target_and_change_nothing(fis, lab):
    lab.wait_idle()
    before = lab.snapshot()
    started_at = time.time()
    template_id = _template(
        fis, {"rg": {"resourceType": "aws:elasticache:replicationgroup", "resourceTags": {"team": "nobody"},
                     "selectionMode": "ALL", "parameters": {"availabilityZoneIdentifier": "us-east-1a"}}},
        {"power": {"actionId": "aws:elasticache:replicationgroup-interrupt-az-power",
                   "parameters": {"duration": "PT1M"}, "targets": {"ReplicationGroups": "rg"}}})
    experiment = _wait_end(fis, fis.start_experiment(clientToken=str(uuid.uuid4()),
                                                     experimentTemplateId=template_id)["experiment"]["id"])
    assert experiment["state"]["status"] == "failed"
    assert experiment["state"]["error"]["code"] == "InvalidTarget"
    assert [e for e in lab.events(started_at) if e["source_type"] != "lab"] == []
    after = lab.snapshot()
    assert after["replication_groups"] == before["replication_groups"]
    assert after["db_instances"]["shop-db"]["primary"] == before["db_instances"]["shop-db"]["primary"]


def test_chaosext_fis_reboot_action_runs_against_the_lab(lab_env, lab):
    lab.wait_idle()
    before = lab.snapshot()["db_instances"]["shop-db"]["primary"]
    result = fis_actions.reboot_db_instances(
        configuration={"aws_region": "us-east-1", "fis_role_arn": ROLE}, poll_interval=0.5, timeout=120,
        measure_data_plane=False)
    assert result["fis"]["state"] == "completed"
    assert result["fis"]["actions"]["RebootDBInstances"]["state"] == "completed"
    assert result["fis"]["targets"]["DBInstances"]["resource_tags"] == TAGS
    assert result["control_plane_seconds"] > 0
    assert lab.snapshot()["db_instances"]["shop-db"]["primary"] != before
