"""FIS against the real lab: a boto3 ``fis`` client drives real failovers through the facade, and
the lab's ground-truth event log says what really happened."""
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest

import chaosext.fis.actions as fis_actions
from groundfloor.supervisor import poll_until
from groundfloor.timefmt import parse_time
from test_experiments import primaries_in_one_az

pytestmark = pytest.mark.lab

ROLE = "arn:aws:iam::123456789012:role/failover-gameday-fis"
TAGS = {"chaos:allowed": "true"}


def _template(fis, targets, actions, **extra):
    return fis.create_experiment_template(clientToken=str(uuid.uuid4()), description="lab test", roleArn=ROLE,
                                          stopConditions=[{"source": "none"}], targets=targets,
                                          actions=actions, **extra)["experimentTemplate"]["id"]


def _experiment(fis, experiment_id):
    return fis.get_experiment(id=experiment_id)["experiment"]


def _ended(fis, experiment_id):
    """The experiment once it has ended, else None."""
    experiment = _experiment(fis, experiment_id)
    return experiment if experiment["state"]["status"] in ("completed", "stopped", "failed") else None


def _wait_end(fis, experiment_id, timeout=120.0):
    ended = poll_until(lambda: _ended(fis, experiment_id), timeout, 0.2)
    assert ended, _experiment(fis, experiment_id)["state"]
    return ended


def _action_running(fis, experiment_id, action):
    return _experiment(fis, experiment_id)["actions"][action]["state"]["status"] == "running"


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
    assert poll_until(lambda: _action_running(fis, experiment_id, "pause"), 10, 0.1)
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


def _chaos(lab, tmp_path, experiment):
    path = tmp_path / "fis-experiment.json"
    path.write_text(json.dumps(experiment))
    env = {**os.environ, **lab.env, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    chaos = Path(sys.executable).parent / "chaos"
    return subprocess.Popen([str(chaos), "run", "--rollback-strategy", "always", "--journal-path",
                             str(tmp_path / "journal.json"), str(path)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


CONFIG = {"aws_region": "us-east-1", "fis_role_arn": ROLE}
STOP = {"type": "action", "name": "stop-fis", "provider": {
    "type": "python", "module": "chaosext.fis.actions", "func": "stop_experiment"}}


def test_a_real_chaos_run_journals_the_fis_experiment(lab, tmp_path):
    lab.wait_idle()
    experiment = {"title": "FIS reboot through chaos run", "description": "journal check", "configuration": CONFIG,
                  "method": [{"type": "action", "name": "fis-reboot", "provider": {
                      "type": "python", "module": "chaosext.fis.actions", "func": "reboot_db_instances",
                      "arguments": {"poll_interval": 0.5, "timeout": 120}}}],
                  "rollbacks": [STOP]}
    proc = _chaos(lab, tmp_path, experiment)
    output, _ = proc.communicate(timeout=180)
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["status"] == "completed", output[-2000:]
    fis = journal["run"][0]["output"]["fis"]
    assert fis["state"] == "completed" and fis["template_id"].startswith("EXT")
    assert fis["actions"]["RebootDBInstances"]["state"] == "completed"
    assert journal["rollbacks"][0]["output"] == {"stopped": {}}  # nothing was left running


def test_ctrl_c_during_a_chaos_run_stops_the_fis_experiment(lab, tmp_path):
    started_at = time.time()
    experiment = {"title": "FIS wait interrupted", "description": "Ctrl-C check", "configuration": CONFIG,
                  "method": [{"type": "action", "name": "fis-wait", "provider": {
                      "type": "python", "module": "chaosext.fis.actions", "func": "run_experiment",
                      "arguments": {"template": {"description": "a long wait", "actions": {"pause": {
                          "actionId": "aws:fis:wait", "parameters": {"duration": "PT5M"}}}},
                          "poll_interval": 0.5}}}]}
    proc = _chaos(lab, tmp_path, experiment)

    def pause_running():
        assert proc.poll() is None, proc.stdout.read()[-2000:]
        return [e for e in lab.events(started_at) if e["source_type"] == "lab"
                and e["message"] == "action pause (aws:fis:wait) running"]
    running = poll_until(pause_running, 60, 0.2)
    assert running, "the FIS wait action never ran"
    experiment_id = running[0]["source_id"]
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    markers = [e["message"] for e in lab.events(started_at) if e["source_id"] == experiment_id]
    assert "stop requested" in markers
    assert markers[-1] == "stopped: Experiment stopped by user."


def test_fis_interrupt_az_power_stopped_mid_run_gives_the_power_back_early(fis, lab):
    lab.wait_idle()
    started_at = time.time()
    template_id = _template(
        fis, {"rg": {"resourceType": "aws:elasticache:replicationgroup", "resourceTags": TAGS,
                     "selectionMode": "ALL", "parameters": {"availabilityZoneIdentifier": "us-east-1a"}}},
        {"power": {"actionId": "aws:elasticache:replicationgroup-interrupt-az-power",
                   "parameters": {"duration": "PT1M"}, "targets": {"ReplicationGroups": "rg"}}})
    experiment_id = fis.start_experiment(clientToken=str(uuid.uuid4()),
                                         experimentTemplateId=template_id)["experiment"]["id"]
    assert poll_until(lambda: any(e["message"].startswith("power interrupted in us-east-1a")
                                  for e in lab.events(started_at)), 10, 0.1)
    assert poll_until(lambda: _action_running(fis, experiment_id, "power"), 10, 0.1)
    fis.stop_experiment(id=experiment_id)
    experiment = _wait_end(fis, experiment_id, timeout=120)
    assert experiment["state"]["status"] == "stopped"
    assert experiment["actions"]["power"]["state"]["status"] == "stopped"
    restored = [e["time"] for e in lab.events(started_at) if e["message"] == "power restored in us-east-1a"]
    assert restored and restored[0] - started_at < 30  # long before the 60 s duration
    lab.wait_idle(timeout=120)


def _first_writable(lab, source_id, since):
    """Ground truth: when the lab first took a write through the endpoint of `source_id`."""
    return next(e["time"] for e in lab.events(since) if e["source_id"] == source_id
                and e["message"].startswith("endpoint writable on"))


def test_the_az_power_interruption_measures_each_services_rto_like_ground_truth(lab_env, lab):
    """One FIS experiment fails both services over: one RTO per service, each one the lab's."""
    lab.wait_idle()
    primaries_in_one_az(lab)
    conf = {**CONFIG, "db_instance_id": "shop-db", "replication_group_id": "shop-cache",
            **{key: lab_env[f"GAMEDAY_{key.upper()}"] for key in (
                "mysql_host", "mysql_port", "mysql_user", "mysql_password", "mysql_database",
                "redis_host", "redis_port", "redis_password")}}
    result = fis_actions.az_power_interruption("primary", "PT1M", configuration=conf,
                                               poll_interval=0.5, timeout=180)
    assert result["services"] == ["rds", "elasticache"] and result["kind"] == "outage"
    assert result["fis"]["state"] == "completed"
    assert {a["state"] for a in result["fis"]["actions"].values()} >= {"completed"}
    injected = parse_time(result["injected_at"]).timestamp()
    for service, source_id in (("rds", "shop-db"), ("elasticache", "shop-cache")):
        figure = result["recovery"][service]
        assert figure["data_plane"]["first_failure_at"] is not None, service  # it did fail
        truth = _first_writable(lab, source_id, injected - 0.5)
        low, high = (parse_time(t).timestamp() for t in figure["data_plane"]["writable_again_between"])
        assert low - 0.05 <= truth <= high + 0.05, service  # the lab's probe polls every 20 ms
        assert abs(parse_time(figure["writable_at"]).timestamp() - truth) <= 0.25, service
    assert result["rto_seconds"] == max(r["rto_seconds"] for r in result["recovery"].values())
    lab.wait_idle(timeout=180)
