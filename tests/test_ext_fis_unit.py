"""chaosext.fis against botocore's Stubber: the AWS-only paths (a given template id, a failed or
skipped experiment, an interruption that must stop the experiment, guardrails before any call).
Any call not queued fails the test, so "nothing was created" is checked, not assumed."""
from datetime import datetime, timezone

import pytest
from aws_helpers import stubbed_client
from botocore.stub import ANY
from chaoslib.exceptions import InterruptExecution

import chaosext.fis.actions as fis_actions
import chaosext.fis.experiment as fis_experiment
import chaosext.fis.live as fis_live
import chaosext.fis.probes as fis_probes
import chaosext.recovery as recovery
from chaosext.errors import ActivityError, GuardrailRefused
from chaosext.fis import templates

CONFIG = {"aws_region": "us-east-1", "fis_role_arn": "arn:aws:iam::123456789012:role/fis"}
FAST = {"poll_interval": 0.01, "timeout": 5, "measure_data_plane": False}
T0 = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def fis(monkeypatch):
    with stubbed_client(monkeypatch, "fis", CONFIG, fis_actions, fis_experiment, fis_probes) as stubber:
        yield stubber


def experiment(status, reason=None, error=None, actions=None):
    state = {"status": status, **({"reason": reason} if reason else {}), **({"error": error} if error else {})}
    return {"experiment": {
        "id": "EXP1", "experimentTemplateId": "EXT1", "state": state, "creationTime": T0, "startTime": T0,
        "targets": {"DBInstances": {"resourceType": "aws:rds:db", "resourceTags": {"chaos:allowed": "true"},
                                    "selectionMode": "ALL"}},
        "actions": actions or {"RebootDBInstances": {"actionId": "aws:rds:reboot-db-instances",
                                                     "state": {"status": "completed"}, "startTime": T0}}}}


def given_template(targets=None):
    return {"experimentTemplate": {"id": "EXT1", "roleArn": CONFIG["fis_role_arn"], "actions": {
        "RebootDBInstances": {"actionId": "aws:rds:reboot-db-instances", "targets": {"DBInstances": "DBInstances"}}},
        "targets": targets or {"DBInstances": {"resourceType": "aws:rds:db", "selectionMode": "ALL",
                                               "resourceTags": {"chaos:allowed": "true"}}}}}


def test_run_experiment_from_a_template_id_waits_for_completed_and_reports_it(fis):
    fis.add_response("get_experiment_template", given_template(), {"id": "EXT1"})
    fis.add_response("start_experiment", experiment("pending"), {"clientToken": ANY, "experimentTemplateId": "EXT1"})
    fis.add_response("get_experiment", experiment("running"), {"id": "EXP1"})
    fis.add_response("get_experiment", experiment("completed", "Experiment completed."), {"id": "EXP1"})
    result = fis_actions.run_experiment(experiment_template_id="EXT1", configuration=CONFIG, **FAST)
    assert result["fault"] == "fis-experiment" and result["target"] == "EXT1"
    assert result["fis"]["state"] == "completed" and result["fis"]["experiment_id"] == "EXP1"
    assert result["fis"]["started_at"] == "2026-11-30T12:00:00.000Z"
    assert result["fis"]["targets"]["DBInstances"]["resource_tags"] == {"chaos:allowed": "true"}
    assert result["fis"]["actions"]["RebootDBInstances"]["state"] == "completed"
    assert fis_live.live_experiments() == {}


def test_a_failed_experiment_fails_the_activity_with_its_code_and_reason(fis):
    fis.add_response("create_experiment_template", {"experimentTemplate": {"id": "EXT1"}},
                     {"clientToken": ANY, "description": ANY, "targets": ANY, "actions": ANY,
                      "stopConditions": [{"source": "none"}], "roleArn": CONFIG["fis_role_arn"]})
    fis.add_response("start_experiment", experiment("initiating"), {"clientToken": ANY, "experimentTemplateId": "EXT1"})
    fis.add_response("get_experiment", experiment("failed", "Target resolution returned no resources.",
                                                  {"code": "InvalidTarget"}), {"id": "EXP1"})
    with pytest.raises(ActivityError, match=r"EXP1 \(template EXT1\) ended failed \[InvalidTarget\]: "
                                            r"Target resolution returned no resources") as err:
        fis_actions.reboot_db_instances(configuration=CONFIG, **FAST)
    assert err.value.code == "InvalidTarget"


def test_an_experiment_whose_every_action_was_skipped_fails_the_activity(fis):
    skipped = {"RebootDBInstances": {"actionId": "aws:rds:reboot-db-instances", "state": {"status": "skipped"}}}
    fis.add_response("create_experiment_template", {"experimentTemplate": {"id": "EXT1"}}, None)
    fis.add_response("start_experiment", experiment("pending"), None)
    fis.add_response("get_experiment", experiment("completed", actions=skipped), {"id": "EXP1"})
    with pytest.raises(ActivityError, match="every action was skipped"):
        fis_actions.az_power_interruption("us-east-1a", configuration=CONFIG, poll_interval=0.01, timeout=5)


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, SystemExit, InterruptExecution])
def test_an_interrupted_wait_stops_the_fis_experiment_before_propagating(fis, monkeypatch, interruption):
    """Ctrl-C (KeyboardInterrupt), a safeguard (SIGUSR1 -> SystemExit), SIGTERM (InterruptExecution)."""
    fis.add_response("get_experiment_template", given_template(), {"id": "EXT1"})
    fis.add_response("start_experiment", experiment("pending"), None)
    fis.add_response("get_experiment", experiment("running"), {"id": "EXP1"})
    fis.add_response("get_experiment", experiment("running"), {"id": "EXP1"})
    fis.add_response("stop_experiment", experiment("stopping"), {"id": "EXP1"})

    def interrupted(_seconds):
        raise interruption()
    monkeypatch.setattr(recovery.time, "sleep", interrupted)
    with pytest.raises(interruption):
        fis_actions.run_experiment(experiment_template_id="EXT1", configuration=CONFIG, **FAST)
    assert fis_live.live_experiments() == {}


def test_guardrail_refuses_tags_without_the_allow_tag_before_any_call(fis):
    with pytest.raises(GuardrailRefused, match="does not carry the allow tag chaos:allowed=true"):
        fis_actions.interrupt_cache_az_power("us-east-1a", tags={"team": "shop"}, configuration=CONFIG, **FAST)


def test_guardrail_checks_a_given_template_s_targets_too(fis):
    fis.add_response("get_experiment_template", given_template(
        {"DBInstances": {"resourceType": "aws:rds:db", "selectionMode": "ALL", "resourceTags": {"env": "prod"}}}),
        {"id": "EXT1"})
    with pytest.raises(GuardrailRefused, match="nothing was changed"):
        fis_actions.run_experiment(experiment_template_id="EXT1", configuration=CONFIG, **FAST)


def test_dry_run_describes_the_experiment_and_creates_nothing(fis):
    result = fis_actions.az_power_interruption("us-east-1a", configuration=dict(CONFIG, gameday_dry_run=True))
    assert result["dry_run"] is True
    assert "FailoverDBClusters" in result["would"] and "InterruptAzPower" in result["would"]


def test_missing_role_is_one_clear_line(fis):
    with pytest.raises(ActivityError, match="fis_role_arn"):
        fis_actions.reboot_db_instances(configuration={"aws_region": "us-east-1"}, **FAST)


def test_stop_experiment_rollback_leaves_an_ended_experiment_alone(fis):
    fis.add_response("get_experiment", experiment("completed"), {"id": "EXP1"})
    assert fis_actions.stop_experiment("EXP1", configuration=CONFIG) == {"stopped": {"EXP1": None}}


def test_az_power_interruption_template_is_the_documented_scenario_part():
    template = templates.az_power_interruption_template({"chaos:allowed": "true"}, "us-east-1a", "PT2M")
    assert template["experimentOptions"] == {"emptyTargetResolutionMode": "skip"}
    assert template["targets"]["DBInstances"]["parameters"] == {"availabilityZoneIdentifiers": "us-east-1a"}
    assert template["targets"]["Clusters"]["parameters"] == {"writerAvailabilityZoneIdentifiers": "us-east-1a"}
    assert template["targets"]["ReplicationGroups"]["parameters"] == {"availabilityZoneIdentifier": "us-east-1a"}
    assert template["actions"]["RebootDBInstances"]["parameters"] == {"forceFailover": "true"}
    assert template["actions"]["InterruptAzPower"]["parameters"] == {"duration": "PT2M"}
    assert not any(a.get("startAfter") for a in template["actions"].values())  # all start together


def test_guardrail_reads_the_tags_of_targets_named_by_arn_and_refuses_untagged_ones(fis, monkeypatch):
    import chaosext.fis.tags as fis_tags
    arn = "arn:aws:rds:us-east-1:123456789012:db:shop-db"
    with stubbed_client(monkeypatch, "rds", CONFIG, fis_tags) as rds:
        rds.add_response("list_tags_for_resource", {"TagList": [{"Key": "env", "Value": "prod"}]},
                         {"ResourceName": arn})
        with pytest.raises(GuardrailRefused, match=f"aws:rds:db {arn} refused"):
            fis_actions.reboot_db_instances(db_instance_arns=[arn], configuration=CONFIG, **FAST)


def test_an_experiment_started_without_waiting_is_awaited_by_the_probe(fis):
    fis.add_response("get_experiment_template", given_template(), {"id": "EXT1"})
    fis.add_response("start_experiment", experiment("pending"), None)
    fis.add_response("get_experiment", experiment("running"), {"id": "EXP1"})
    started = fis_actions.run_experiment(experiment_template_id="EXT1", wait=False, configuration=CONFIG)
    assert started["fis"]["state"] == "running" and "EXP1" in fis_live.live_experiments()
    fis.add_response("get_experiment", experiment("running"), {"id": "EXP1"})
    fis.add_response("get_experiment", experiment("completed", "Experiment completed."), {"id": "EXP1"})
    ended = fis_probes.wait_for_experiments(poll_interval=0.01, timeout=5, configuration=CONFIG)
    assert ended["experiments"]["EXP1"]["state"] == "completed"
    assert fis_live.live_experiments() == {}


def test_a_fault_started_without_waiting_is_announced_recovered_when_its_experiment_completes():
    from chaosext.alerts import faults as fault_log
    from chaosext.fis.probes import announce_recoveries
    heard = []
    fault_log.forget()
    fault_log.listen(lambda event, result: heard.append((event, result)))
    try:
        fault = {"fault": "fis-az-power-interruption", "injected_at": "2026-12-01T10:00:00.000Z",
                 "services": ["rds", "elasticache"],
                 "fis": {"experiment_id": "EXP1", "state": "running"}}
        other = dict(fault, fault="other", injected_at="2026-12-01T10:00:05.000Z",
                     fis={"experiment_id": "EXP2"})
        fault_log.remember(fault)
        fault_log.remember(other)
        fault_log.remember_writable({"kind": "mysql", "writable_again_at": "2026-12-01T09:59:00.000Z"})
        fault_log.remember_writable({"kind": "mysql", "writable_again_at": "2026-12-01T10:00:02.500Z"})
        fault_log.remember_writable({"kind": "redis", "writable_again_at": "2026-12-01T10:00:04.250Z"})
        ended = {"EXP1": {"state": "completed", "ended_at": "2026-12-01T10:01:01.000Z"},
                 "EXP2": {"state": "stopped", "ended_at": "2026-12-01T10:00:30.000Z"}}
        announce_recoveries(ended)
        announce_recoveries(ended)  # a second wait announces nothing twice
    finally:
        fault_log.listen(None)
        fault_log.forget()
    assert [(event, result["fault"]) for event, result in heard] == [
        ("recovered", "fis-az-power-interruption")]
    recovered = heard[0][1]
    assert recovered["rto_seconds"] == 4.25  # the last endpoint writable again after injection
    assert {s: r["rto_seconds"] for s, r in recovered["recovery"].items()} == \
        {"rds": 2.5, "elasticache": 4.25}  # one figure per service, the earlier write ignored
    assert recovered["fis"]["state"] == "completed"  # the experiment's final state
    assert recovered["control_plane_seconds"] == 61.0
    assert recovered["control_plane_completed_at"] == "2026-12-01T10:01:01.000Z"
