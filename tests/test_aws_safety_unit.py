"""AWS-run safety without AWS and without a lab: target mixing, allow-lists, confirmation,
connection settings from the environment, the one IAM policy, order marks, skipped checks."""
import json
import re
import socket
import ssl
import threading
from pathlib import Path

import pytest

from chaosext import dataplane, settings, unmeasured
from chaosext.alerts import faults as fault_log
from chaosext.errors import GamedayError
from chaosext.fault_model import FaultSpec
from chaosext.recovery import Fault, run_fault
from chaosext.shop.marker import is_marked, order_note
from gameday import cli, iam
from gameday.preflight import guards
from gameday.preflight.context import Context
from gameday.preflight.table import FAIL, OK, WARN

ROOT = Path(__file__).resolve().parents[1]


class CountingServer:
    """A loopback TCP listener that counts connections: proof that nothing was sent."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port, self.connections, self._stop = self.sock.getsockname()[1], 0, threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener():
    server = CountingServer()
    yield server
    server.close()


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_RDS", "GAMEDAY_SHOP_URL"])
def test_aws_target_with_lab_environment_is_refused_before_any_request(listener, monkeypatch, capsys,
                                                                     tmp_path, variable):
    monkeypatch.setenv("GAMEDAY_REPORTS_DIR", str(tmp_path))
    monkeypatch.setenv(variable, f"http://127.0.0.1:{listener.port}")
    code = cli.main(["run", "rds-force-failover", "--target", "aws", "--region", "us-east-1", "--dry-run"])
    err = capsys.readouterr().err.strip()
    assert code == 3 and len(err.splitlines()) == 1
    assert f"{variable}=http://127.0.0.1:{listener.port}" in err and "--target aws refused" in err
    assert listener.connections == 0 and list(tmp_path.iterdir()) == []


def test_aws_target_refused_when_lab_env_was_evaluated(monkeypatch, capsys):
    monkeypatch.setenv("GAMEDAY_TARGET", "lab")
    code = cli.main(["run", "rds-force-failover", "--target", "aws", "--region", "us-east-1"])
    err = capsys.readouterr().err.strip()
    assert code == 3 and "GAMEDAY_TARGET=lab" in err and len(err.splitlines()) == 1


def context(env=None, target="aws", accept_any_account=False, resources=(("db-instance", "stage-db"),)):
    return Context(target, dict(env or {}, AWS_REGION="eu-west-1"), {}, {}, {}, "run-1",
                   accept_any_account, list(resources))


def rows_by_item(rows):
    return {r.item: r for r in rows}


def test_no_account_allow_list_is_refused_unless_any_account_is_accepted():
    rows = rows_by_item(guards.allow_list_rows(context(), "111122223333", "https://shop.example"))
    assert rows["account"].status == FAIL and "GAMEDAY_ALLOWED_ACCOUNTS" in rows["account"].fix
    rows = rows_by_item(guards.allow_list_rows(context(accept_any_account=True), "111122223333", None))
    assert rows["account"].status == WARN


def test_account_region_resources_and_shop_url_must_be_on_their_lists():
    env = {"GAMEDAY_ALLOWED_ACCOUNTS": "111122223333", "GAMEDAY_ALLOWED_REGIONS": "eu-west-1",
           "GAMEDAY_ALLOWED_RESOURCES": "stage-db", "GAMEDAY_ALLOWED_SHOP_URLS": "https://staging.shop.example"}
    good = rows_by_item(guards.allow_list_rows(context(env), "111122223333", "https://staging.shop.example/"))
    assert [r.status for r in good.values()] == [OK, OK, OK, OK]
    bad = rows_by_item(guards.allow_list_rows(
        context(dict(env, GAMEDAY_ALLOWED_REGIONS="us-east-1", GAMEDAY_ALLOWED_RESOURCES="other-db")),
        "999988887777", "https://www.shop.example"))
    assert [r.status for r in bad.values()] == [FAIL, FAIL, FAIL, FAIL]
    assert "999988887777 is not in" in bad["account"].detail
    assert "GAMEDAY_ALLOWED_SHOP_URLS" in bad["shop URL"].fix


@pytest.mark.parametrize("url,allowed", [
    ("https://staging.shop.example", True), ("https://staging.shop.example/store", True),
    ("https://staging.shop.example.evil.example", False), ("http://staging.shop.example", False),
    ("https://staging.shop.example:8443", False)])
def test_shop_url_allow_list_matches_scheme_host_and_port_exactly(url, allowed):
    assert guards.shop_url_allowed(url, ["https://staging.shop.example"]) is allowed


def test_confirmation_needs_a_terminal_or_yes():
    with pytest.raises(GamedayError, match="pass --yes"):
        guards.confirm("plan", yes=False, is_terminal=lambda: False)
    with pytest.raises(GamedayError, match="not confirmed"):
        guards.confirm("plan", yes=False, ask=lambda _: "no", is_terminal=lambda: True)
    guards.confirm("plan", yes=False, ask=lambda _: "yes", is_terminal=lambda: True)
    guards.confirm("plan", yes=True, is_terminal=lambda: False)


def test_connection_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("GAMEDAY_REDIS_USERNAME", "gameday")
    monkeypatch.setenv("GAMEDAY_REDIS_TLS", "true")
    monkeypatch.setenv("GAMEDAY_REDIS_HOST", "cache.example")
    client = dataplane.redis_client({}, {})
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["username"] == "gameday" and kwargs["ssl_cert_reqs"] == "required"
    assert client.connection_pool.connection_class.__name__ == "SSLConnection"
    assert settings.lookup("redis_username", {"redis_username": "from-config"}) == "from-config"


def test_mysql_tls_is_verified_by_default_and_off_on_loopback(monkeypatch):
    assert dataplane._mysql_tls("127.0.0.1", {}, {}) == {"ssl_disabled": True}
    context = dataplane._mysql_tls("db.example", {}, {})["ssl"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    monkeypatch.setenv("GAMEDAY_MYSQL_TLS_VERIFY", "false")
    assert dataplane._mysql_tls("db.example", {}, {})["ssl"].verify_mode == ssl.CERT_NONE
    monkeypatch.setenv("GAMEDAY_MYSQL_TLS", "true")
    assert "ssl" in dataplane._mysql_tls("127.0.0.1", {}, {})
    assert dataplane._mysql_tls("db.example", {"mysql_ssl_disabled": True}, {}) == {"ssl_disabled": True}


def test_every_connection_setting_is_documented_with_its_variable():
    page = (ROOT / "docs" / "before-aws.md").read_text()
    assert [s.env for s in settings.SETTINGS if s.env not in page] == []
    assert "docs/before-aws.md" in (ROOT / "README.md").read_text()


def test_every_activity_the_preflight_knows_needs_only_granted_actions():
    # every AWS call of chaosext is checked against the policy in test_alerts_infra.py
    granted = iam.policy_actions()
    assert [a for acts in iam.ACTIVITY_ACTIONS.values() for a in acts if a not in granted] == []
    assert iam.MUTATING <= granted


def test_create_cache_cluster_is_only_allowed_with_the_allow_tag():
    for statement in iam.load_policy()["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if "elasticache:CreateCacheCluster" in actions:
            condition = json.dumps(statement.get("Condition"))
            assert "chaos:allowed" in condition, statement["Sid"]


ACTION_NAME = re.compile(r"(?<!aws:)\b(?:rds|elasticache|cloudwatch|fis):[A-Z][A-Za-z]+")  # not ARNs


def test_docs_are_generated_from_the_policy_and_name_no_other_action():
    assert (ROOT / "docs" / "iam.md").read_text() == iam.markdown()
    granted = iam.policy_actions()
    documents = [ROOT / "README.md", ROOT / "infra" / "README.md", *(ROOT / "docs").rglob("*.md")]
    stray = {(p.name, a) for p in documents for a in ACTION_NAME.findall(p.read_text()) if a not in granted}
    assert stray == set()
    codebuild = (ROOT / "infra" / "scheduling" / "eventbridge-codebuild.yaml").read_text()
    assert set(ACTION_NAME.findall(codebuild)) == {a for a in granted if not a.startswith(("iam:", "ec2:"))}
    # ec2: the codebuild template also names its own VPC permissions, so the runner's reads are checked one by one
    assert all(a in codebuild for a in granted if a.startswith("ec2:"))
    assert ("iam:PassRole" in granted) == ("iam:PassRole" in codebuild)  # only to FIS, in both


def test_orders_carry_the_run_mark_and_only_exact_marks_match(monkeypatch):
    monkeypatch.setenv("GAMEDAY_RUN_ID", "20261130T120000Z-gameday")
    assert order_note() == "failover-gameday run 20261130T120000Z-gameday"
    assert is_marked({"customer_note": order_note()}, "20261130T120000Z-gameday")
    assert not is_marked({"customer_note": order_note("20261130T120000Z-gameday-2")}, "20261130T120000Z-gameday")
    assert not is_marked({"customer_note": ""}, "20261130T120000Z-gameday")


def test_unconfigured_data_plane_check_is_skipped_and_recorded_as_not_measured(monkeypatch, tmp_path, caplog):
    monkeypatch.delenv("GAMEDAY_MYSQL_HOST", raising=False)
    monkeypatch.setenv("GAMEDAY_RUN_DIR", str(tmp_path))
    assert dataplane.mysql_writable({"mysql_host": ""}, {}) is True
    assert dataplane.mysql_writable({"mysql_host": ""}, {}) is True
    recorded = unmeasured.read(str(tmp_path))
    assert [e["check"] for e in recorded] == ["mysql data plane"]
    assert "GAMEDAY_MYSQL_HOST" in recorded[0]["why"] and "not measured" in caplog.text


def test_fault_notification_goes_out_at_injection_and_recovery_when_it_happens():
    heard, released = [], threading.Event()

    def poll():
        assert released.wait(5)  # the control plane "recovers" only after injection was heard
        return True, {}

    def listener(event, result):
        heard.append((event, result["injected_at"], result.get("rto_seconds")))
        released.set()

    fault_log.listen(listener)
    try:
        fault = Fault(FaultSpec("test-fault", ("rds",), "failover"), "res-1", "Inject()", {},
                      lambda: None, poll, lambda since: [])
        result = run_fault(fault, wait=True, timeout=10, poll_interval=0.05)
    finally:
        fault_log.listen(None)
    assert [h[0] for h in heard] == ["fault-injected", "recovered"]
    assert heard[0][1] == result["injected_at"]


def test_report_lists_checks_that_were_not_measured_and_the_endpoints(run_dir):
    from gameday.report import write_report
    (run_dir / unmeasured.FILE).write_text(json.dumps(
        {"check": "order RPO", "why": "no WooCommerce REST consumer key/secret", "t": 1}) + "\n")
    (run_dir / "target.json").write_text(json.dumps({"kind": "aws", "region": "eu-west-1", "ids": {
        "db_instance": "stage-db"}, "endpoints": {"shop": "https://staging.shop.example", "mysql": "not configured"}}))
    paths = write_report(str(run_dir))
    summary = json.loads(Path(paths["summary.json"]).read_text())
    assert summary["target"]["not_measured"] == ["order RPO: no WooCommerce REST consumer key/secret"]
    assert summary["target"]["ids"][0] == "stage-db"
    markdown = Path(paths["report.md"]).read_text()
    assert "Not measured" in markdown and "https://staging.shop.example" in markdown


def test_the_preflight_knows_every_action_of_the_shipped_experiments():
    from gameday import run
    funcs = set()
    for entry in run.catalog():
        spec = json.loads(Path(entry["path"]).read_text())
        for action in spec.get("method", []) + spec.get("rollbacks", []):
            provider = action.get("provider", {})
            if action.get("type") == "action" and provider.get("type") == "python":
                funcs.add(f"{provider['module']}.{provider['func']}")
    assert funcs and sorted(f for f in funcs if f not in iam.ACTIVITY_ACTIONS) == []
