"""Run notifications over real HTTP on loopback: the lab's webhook receiver gets the Slack and
the generic payloads, through Chaos Toolkit's own control and notification-plugin machinery."""
import json
import logging
import socket
import textwrap
import time
import urllib.request

import pytest
from chaoslib.notification import RunFlowEvent
from chaoslib.notification import notify as chaos_notify
from chaoslib.run import Runner
from chaoslib.types import Strategy

from chaosext.alerts import faults as fault_log
from chaosext.alerts import notify
from woolab.errors import LabStartError
from woolab.webhook import WebhookReceiver, read_received

FAULT = {"fault": "rds-force-failover", "target": "shop-db",
         "method": "RebootDBInstance(ForceFailover=True)",
         "injected_at": "2026-11-26T06:00:00.000Z",
         "control_plane_completed_at": "2026-11-26T06:00:04.000Z",
         "data_plane_writable_at": "2026-11-26T06:00:02.500Z", "rto_seconds": 2.5,
         "control_plane_seconds": 4.0, "before": {"az": "us-east-1a"},
         "after": {"az": "us-east-1b"},
         "events": [], "data_plane": {"endpoint": "mysql", "password": "s3cret-in-result"}}
SECRET = "s3cret"


@pytest.fixture
def receiver(tmp_path, monkeypatch):
    with WebhookReceiver(0, tmp_path / "webhook") as server:
        monkeypatch.setenv("GAMEDAY_WEBHOOK_URL", f"{server.url}/hook")
        monkeypatch.setenv("GAMEDAY_SLACK_WEBHOOK_URL", f"{server.url}/slack/T000/B000/XXXX")
        monkeypatch.setenv("GAMEDAY_TARGET", "lab")
        fault_log.forget()
        yield server
    fault_log.forget()


def bodies(server, path):
    return [item["body"] for item in server.received(path)]


def slack_texts(message):
    return json.dumps(message["blocks"])


# -- the receiver ----------------------------------------------------------------------------
def test_receiver_stores_every_post_as_a_json_line_and_lists_them(tmp_path):
    with WebhookReceiver(0, tmp_path) as server:
        for body in (b'{"a": 1}', b"plain text"):
            urllib.request.urlopen(urllib.request.Request(f"{server.url}/x", data=body,
                                                          method="POST"), timeout=5)
        listed = json.load(urllib.request.urlopen(f"{server.url}/received", timeout=5))
        only_x = json.load(urllib.request.urlopen(f"{server.url}/received?path=/y", timeout=5))
    assert [i["body"] for i in listed] == [{"a": 1}, "plain text"]
    assert {i["path"] for i in listed} == {"/x"} and only_x == []
    assert [i["body"] for i in read_received(tmp_path)] == [{"a": 1}, "plain text"]
    assert len((tmp_path / "received.jsonl").read_text().splitlines()) == 2


def test_receiver_on_a_port_in_use_says_so(tmp_path):
    with WebhookReceiver(0, tmp_path) as server:
        with pytest.raises(LabStartError, match=f"cannot listen on 127.0.0.1:{server.port}"):
            WebhookReceiver(server.port, tmp_path / "other").start()


def test_receiver_forgets_on_delete(tmp_path):
    with WebhookReceiver(0, tmp_path) as server:
        notify.post_json(f"{server.url}/hook", {"x": 1})
        urllib.request.urlopen(urllib.request.Request(f"{server.url}/received",
                                                      method="DELETE"), timeout=5)
        assert server.received() == []


# -- the control, hook by hook ---------------------------------------------------------------
def test_control_announces_start_fault_recovery_and_verdict_with_rto(receiver):
    config = {"mysql_password": SECRET, "aws_region": "us-east-1"}
    secrets = {"gameday": {"mysql_password": SECRET}}
    experiment = {"title": "RDS failover under load"}
    notify.configure_control(configuration=config, secrets=secrets, experiment=experiment)
    notify.before_experiment_control(experiment, configuration=config, secrets=secrets)
    notify.after_activity_control({"name": "force-failover"}, state={"output": FAULT},
                                  configuration=config, secrets=secrets, experiment=experiment)
    notify.after_activity_control({"name": "probe"}, state={"output": {"status": "ok"}},
                                  configuration=config, secrets=secrets, experiment=experiment)
    journal = {"status": "completed", "deviated": False, "run": [{"output": FAULT}, {"output": {
        "met": True, "expected": ["started", "completed"], "missing": [],
        "resource_id": "shop-db", "latency_seconds": {"completed": 4.0}}}]}
    notify.after_experiment_control(experiment, state=journal, configuration=config,
                                    secrets=secrets)

    generic = bodies(receiver, "/hook")
    assert [b["event"] for b in generic] == ["run-started", "fault-injected", "recovered",
                                             "run-completed"]
    recovered = generic[2]
    assert recovered["fault"]["rto_seconds"] == 2.5
    assert recovered["fault"]["control_plane_seconds"] == 4.0
    assert recovered["fault"]["az_before"] == "us-east-1a"
    assert recovered["experiment"] == "RDS failover under load"
    assert recovered["target_env"] == "lab"
    verdict = generic[3]
    assert verdict["status"] == "completed" and verdict["deviated"] is False
    assert verdict["faults"][0]["rto_seconds"] == 2.5
    assert verdict["alerts"] == [{"resource_id": "shop-db", "met": True, "missing": [],
                                  "latency_seconds": {"completed": 4.0}}]

    slack = bodies(receiver, "/slack/T000/B000/XXXX")
    assert len(slack) == 4 and all(set(m) == {"text", "blocks"} for m in slack)
    assert slack[1]["text"].startswith(":boom: Fault injected: rds-force-failover on shop-db")
    assert "2.5 s" in slack[2]["text"] and "4.0 s" in slack[2]["text"]
    assert slack[2]["blocks"][0] == {"type": "header", "text": {
        "type": "plain_text", "text": ":white_check_mark: Recovered", "emoji": True}}
    assert "*RTO (data plane)*\\n2.5 s" in slack_texts(slack[2])

    everything = (receiver.directory / "received.jsonl").read_text()
    assert SECRET not in everything and "password" not in everything
    assert fault_log.last_fault("shop-db")["rto_seconds"] == 2.5
    assert journal["extensions"][0]["name"] == "gameday-notifications"
    assert [s["event"] for s in journal["extensions"][0]["sent"]][-1] == "run-completed"


def test_deviated_run_sends_one_deviated_verdict(receiver):
    notify.after_experiment_control({"title": "cache failover"},
                                    state={"status": "completed", "deviated": True, "run": []})
    assert [b["event"] for b in bodies(receiver, "/hook")] == ["run-deviated"]
    assert bodies(receiver, "/hook")[0]["summary"] == ("cache failover: steady state NOT met "
                                                       "after the fault")


def test_events_argument_limits_what_is_sent(receiver):
    notify.before_experiment_control({"title": "t"}, events=["run-failed"])
    notify.after_experiment_control({"title": "t"}, state={"status": "aborted", "run": []},
                                    events=["run-failed"])
    sent = bodies(receiver, "/hook")
    assert [b["event"] for b in sent] == ["run-failed"] and sent[0]["status"] == "aborted"


def test_dry_run_results_are_not_announced_as_faults(receiver):
    notify.after_activity_control({}, state={"output": {**FAULT, "dry_run": True}})
    assert receiver.received() == [] and fault_log.last_fault() is None


# -- delivery never breaks the run -----------------------------------------------------------
def test_unreachable_webhook_is_logged_without_the_secret_path(caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/services/T000/B000/SECRETPATH"
    with caplog.at_level(logging.WARNING, logger="chaostoolkit"):
        assert notify.post_json(url, {"x": 1}) is False
    assert f"127.0.0.1:{port}" in caplog.text and "SECRETPATH" not in caplog.text


def test_silent_webhook_times_out_quickly():
    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        started = time.monotonic()
        delivered = notify.post_json(f"http://127.0.0.1:{silent.getsockname()[1]}/", {"x": 1},
                                     timeout=0.5)
    assert delivered is False and time.monotonic() - started < 3


def test_non_http_url_is_refused_without_raising():
    assert notify.post_json("file:///etc/passwd", {"x": 1}) is False


def test_no_destination_configured_sends_nothing(monkeypatch):
    for name in ("GAMEDAY_WEBHOOK_URL", "GAMEDAY_SLACK_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    assert notify.destinations() == {}
    notify.before_experiment_control({"title": "t"})  # no error, nothing to do


def test_destination_order_argument_secret_configuration_environment(monkeypatch):
    monkeypatch.setenv("GAMEDAY_WEBHOOK_URL", "http://env")
    assert notify.destinations({}, {"gameday_webhook_url": "http://conf"})["webhook"] == \
        "http://conf"
    assert notify.destinations({}, {"gameday_webhook_url": "http://conf"},
                               {"gameday": {"webhook_url": "http://secret"}})["webhook"] == \
        "http://secret"
    assert notify.destinations({"webhook_url": "http://arg"}, {}, {})["webhook"] == "http://arg"


# -- through Chaos Toolkit itself ------------------------------------------------------------
def test_chaostoolkit_run_with_the_control_posts_every_notification(receiver, tmp_path,
                                                                    monkeypatch):
    (tmp_path / "fakefault.py").write_text(textwrap.dedent(f"""
        def force_failover():
            return {FAULT!r}
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    experiment = {
        "title": "notify through chaostoolkit", "description": "d",
        "controls": [{"name": "gameday-notify", "provider": {
            "type": "python", "module": "chaosext.alerts.notify"}}],
        "method": [{"type": "action", "name": "failover", "provider": {
            "type": "python", "module": "fakefault", "func": "force_failover"}}],
    }
    with Runner(Strategy.DEFAULT) as runner:
        journal = runner.run(experiment, settings={})
    assert journal["status"] == "completed"
    assert [b["event"] for b in bodies(receiver, "/hook")] == [
        "run-started", "fault-injected", "recovered", "run-completed"]
    assert any(e["name"] == "gameday-notifications" for e in journal.get("extensions", []))


def test_chaostoolkit_notification_plugin_posts_start_and_verdict(receiver):
    settings = {"notifications": [{"type": "plugin", "module": "chaosext.alerts.notify",
                                   "webhook_url": f"{receiver.url}/plugin"}]}
    chaos_notify(settings, RunFlowEvent.RunStarted, {"title": "plugin run"})
    journal = {"experiment": {"title": "plugin run"}, "status": "failed", "deviated": True,
               "run": [{"output": FAULT}]}
    chaos_notify(settings, RunFlowEvent.RunFailed, journal)
    chaos_notify(settings, RunFlowEvent.RunDeviated, journal)
    sent = bodies(receiver, "/plugin")
    assert [b["event"] for b in sent] == ["run-started", "run-deviated"]
    assert sent[1]["faults"][0]["rto_seconds"] == 2.5 and sent[1]["experiment"] == "plugin run"


def test_a_fault_of_two_services_is_announced_with_one_rto_per_service():
    from chaosext.alerts.notify import _fault_facts, build_notification
    result = {"fault": "fis-az-power-interruption", "target": "TPL1", "rto_seconds": 4.5,
              "control_plane_seconds": 61.0, "services": ["rds", "elasticache"],
              "recovery": {"rds": {"rto_seconds": 1.9, "writable_at": "x"},
                           "elasticache": {"rto_seconds": 4.5, "writable_at": "y"}}}
    note = build_notification("recovered", "AZ power", result)
    assert note["fault"]["rto_by_service"] == {"rds": 1.9, "elasticache": 4.5}
    assert note["summary"].startswith("TPL1 writable again rds after 1.9 s, elasticache after 4.5 s")
    single = _fault_facts({"fault": "rds-force-failover", "services": ["rds"],
                           "recovery": {"rds": {"rto_seconds": 1.2}}, "rto_seconds": 1.2})
    assert "rto_by_service" not in single
