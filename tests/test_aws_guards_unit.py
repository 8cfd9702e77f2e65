"""The guards of an AWS run, without AWS and without a lab: mixing decided by address wherever an
endpoint comes from, production marks, endpoint errors in one line (fake endpoints that answer
garbage or hang), IAM rows that fail only for IAM reasons, the profile's region, prompts only in
the terminal's foreground, cleanup's own prompt."""
import json
import os
import pty
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from chaosext import aws, guardrails
from chaosext.errors import GuardrailRefused, Refused
from gameday import cli, cleanup, run
from gameday.preflight import guards, mixing

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No lab variables, an empty AWS config, reports in a temporary directory."""
    for key in list(os.environ):
        if key.startswith(("GAMEDAY_", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("GAMEDAY_REPORTS_DIR", str(tmp_path / "reports"))
    return monkeypatch


def run_aws(capsys, *extra):
    code = cli.main(["run", "rds-force-failover", "--target", "aws", "--region", "eu-west-1", *extra])
    out, err = capsys.readouterr()
    return code, out, err.strip()


@pytest.mark.parametrize("url", ["http://127.1:15300", "http://0x7f000001:15300",
                                 "http://[::ffff:127.0.0.1]:15300", "http://localhost:15300",
                                 "http://0.0.0.0:15300", "http://169.254.169.254"])
def test_every_spelling_of_this_machine_is_refused(clean_env, capsys, url):
    clean_env.setenv("AWS_ENDPOINT_URL_RDS", url)
    code, out, err = run_aws(capsys, "--dry-run")
    assert code == 3 and len(err.splitlines()) == 1 and "Traceback" not in out + err
    assert f"AWS_ENDPOINT_URL_RDS={url}" in err and "unset AWS_ENDPOINT_URL_RDS" in err


def test_a_name_that_resolves_to_loopback_is_refused(clean_env, capsys, monkeypatch):
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if host == "staging-shop.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))]
        return real(host, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    clean_env.setenv("GAMEDAY_SHOP_URL", "https://staging-shop.example")
    code, _, err = run_aws(capsys, "--dry-run")
    assert code == 3 and "GAMEDAY_SHOP_URL=https://staging-shop.example (loopback address)" in err


def lab_env(monkeypatch, tmp_path, tls=False):
    """What `gameday lab env` prints for a lab at base port 15300, without starting one."""
    from types import SimpleNamespace

    from woolab import manage, tls as lab_tls
    from woolab.config import LabConfig
    config = LabConfig(state_dir=tmp_path / "lab", base_port=15300)
    monkeypatch.setattr(manage, "require_up", lambda state_dir: config)
    monkeypatch.setattr(manage, "load_or_create_secrets", lambda state_dir: {
        "db_app_password": "p", "redis_password": "r", "shop_consumer_key": "ck_x",
        "shop_consumer_secret": "cs_x"})
    monkeypatch.setattr(lab_tls, "lab_tls", lambda c: SimpleNamespace(ca="/ca.pem") if tls else None)
    return manage.env(tmp_path / "lab")


def test_what_lab_env_exports_is_known_to_the_guard(monkeypatch, tmp_path):
    for tls in (False, True):
        assert sorted(set(lab_env(monkeypatch, tmp_path, tls)) - set(mixing.LAB_ENV_VARS)) == []


def test_lab_leftovers_are_named_at_once_with_the_one_command_that_clears_them(clean_env, capsys,
                                                                               tmp_path):
    exported = lab_env(clean_env, tmp_path)
    for key, value in exported.items():
        clean_env.setenv(key, value)
    code, out, err = run_aws(capsys, "--dry-run")
    assert code == 3 and len(err.splitlines()) == 1 and "Traceback" not in out + err
    for key in ("GAMEDAY_TARGET", "AWS_ENDPOINT_URL", "GAMEDAY_SHOP_URL", "GAMEDAY_DNS_SERVER",
                "GAMEDAY_LAB_CONTROL_URL", "GAMEDAY_WEBHOOK_URL", "AWS_ACCESS_KEY_ID"):
        assert f"{key}=" in err, key
    assert "GAMEDAY_MYSQL_HOST=shop-db.lab15300" in err and "does not resolve" in err
    command = err.split("clear them with: ", 1)[1].split(";")[0].split()
    assert command[0] == "unset" and sorted(command[1:]) == sorted(exported)


@pytest.mark.parametrize("config", [
    "[default]\nendpoint_url = http://127.0.0.1:4566\n",
    "[default]\nservices = local\n[services local]\nrds =\n  endpoint_url = http://localhost:4566\n"])
def test_the_profiles_endpoint_url_is_judged_too(clean_env, capsys, tmp_path, config):
    (tmp_path / "aws-config").write_text(config)
    code, _, err = run_aws(capsys, "--dry-run")
    assert code == 3 and "profile default endpoint_url (rds)" in err
    assert "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS" in err
    clean_env.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")  # botocore then ignores it
    assert mixing.leftovers(dict(os.environ)) == []


def test_an_unresolvable_name_is_one_clear_line(clean_env, capsys):
    clean_env.setenv("GAMEDAY_REDIS_HOST", "master.stage-cache.nowhere.invalid")
    code, out, err = run_aws(capsys, "--dry-run")
    assert code == 3 and len(err.splitlines()) == 1 and "Traceback" not in out + err
    assert "GAMEDAY_REDIS_HOST=master.stage-cache.nowhere.invalid (does not resolve" in err


def target(name="stage-db", **tags):
    return guardrails.Target("DB instance", name, f"arn:aws:rds:eu-west-1:111122223333:db:{name}",
                             "eu-west-1", {"chaos:allowed": "true", **tags})


@pytest.mark.parametrize("resource,marked", [
    (target("shop-db-prod"), True), (target("prod.cache"), True), (target("production-db"), True),
    (target(Environment="Production"), True), (target(env="PROD"), True),
    (target("products-db"), False), (target("reprod-db"), False), (target(Environment="staging"), False)])
def test_production_marks_are_refused_unless_allow_listed(monkeypatch, resource, marked):
    monkeypatch.delenv("GAMEDAY_ALLOWED_RESOURCES", raising=False)
    if marked:
        with pytest.raises(GuardrailRefused, match="production marks"):
            guardrails.check_target(resource, "RebootDBInstance", {})
        guardrails.check_target(resource, "RebootDBInstance", {"aws_allowed_resources": resource.id})
        monkeypatch.setenv("GAMEDAY_ALLOWED_RESOURCES", f"other,{resource.id}")
    guardrails.check_target(resource, "RebootDBInstance", {})


def test_a_resource_off_the_allow_list_is_refused_in_the_action_too():
    with pytest.raises(GuardrailRefused, match="not in the resource allow-list"):
        guardrails.check_target(target("stage-db"), "RebootDBInstance", {"aws_allowed_resources": "other-db"})


class FakeAws:
    """A loopback HTTP endpoint that answers garbage, or accepts and never answers."""

    def __init__(self, mode: str):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url, self.mode, self.held = f"http://127.0.0.1:{self.sock.getsockname()[1]}", mode, []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.mode == "hang":
                self.held.append(conn)
                continue
            conn.recv(65536)
            body = b"<html><body>Welcome to nginx!</body></html>"
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            conn.close()

    def close(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.mark.parametrize("mode,says", [("garbage", "answered with something that is not an AWS reply"),
                                       ("hang", "did not answer in time")])
def test_a_fake_endpoint_is_one_row_naming_it_with_no_lab_hint(clean_env, capsys, monkeypatch, mode, says):
    fake = FakeAws(mode)
    monkeypatch.setattr(mixing, "TEST_LOOPBACK_HOSTS", frozenset({"127.0.0.1"}))  # the test switch
    monkeypatch.setattr(aws, "TIMEOUTS", (1.0, 1.0))
    clean_env.setenv("AWS_MAX_ATTEMPTS", "1")
    clean_env.setenv("AWS_ENDPOINT_URL", fake.url)
    try:
        code, out, err = run_aws(capsys, "--dry-run")
    finally:
        fake.close()
    identity = [line for line in out.splitlines() if line.startswith("credentials") and "identity" in line]
    assert code == 2 and err == "" and "Traceback" not in out
    assert len(identity) == 1 and "FAIL" in identity[0] and says in identity[0] and fake.url in identity[0]
    assert "lab up" not in out and "gameday lab" not in out and "configure credentials" not in out


def test_the_cli_has_no_switch_for_loopback_endpoints():
    text = "".join(p.read_text() for p in (ROOT / "gameday").rglob("*.py") if "test" not in p.name)
    assert text.count("TEST_LOOPBACK_HOSTS") == 2  # its definition and its one use, in mixing.py


def test_the_profiles_region_counts_as_botocore_reads_it(clean_env, tmp_path):
    (tmp_path / "aws-config").write_text("[default]\nregion = eu-central-1\n")
    assert aws.client_region({}) == "eu-central-1"
    env, started = run.target_env("aws", tmp_path / "no-lab")
    assert not started and env["AWS_REGION"] == "eu-central-1"


PROBE = ("import sys; from gameday.preflight.guards import interactive; "
         "sys.stdout.write(str(interactive()))")


def _on_a_terminal(command: str) -> str:
    """`command` run by sh as the session leader of a new pseudo-terminal (its controlling
    terminal), as in an interactive shell; what it printed."""
    main, secondary = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(["setsid", "-c", "sh", "-c", command], stdin=secondary, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env)
    os.close(secondary)
    try:
        out, _ = proc.communicate(timeout=30)
    finally:
        os.close(main)
    return out.decode()


def test_a_prompt_outside_the_foreground_process_group_means_no_terminal():
    python = sys.executable
    assert _on_a_terminal(f"{python} -c '{PROBE}'").strip() == "True"
    assert _on_a_terminal(f"timeout 20 {python} -c '{PROBE}'").strip() == "False"


def test_cleanup_asks_with_its_own_prompt_and_refuses_without_yes(tmp_path, monkeypatch, capsys):
    from chaosext.shop.marker import order_note
    run_dir = tmp_path / "run-7"
    run_dir.mkdir()
    (run_dir / "target.json").write_text(json.dumps({"kind": "aws", "endpoints": {"shop": "https://s.example"}}))
    (run_dir / "orders.jsonl").write_text(json.dumps({"order_id": 5, "t": 1}) + "\n")
    calls = []

    class Shop:
        base_url = "https://s.example"

        def __init__(self, *args):
            pass

        def call(self, method, path, body=None):
            calls.append((method, path))
            return 200, [{"id": 5, "status": "processing", "customer_note": order_note("run-7")}]
    monkeypatch.setattr(cleanup, "RestClient", Shop)
    monkeypatch.setenv("GAMEDAY_SHOP_WRITE_CONSUMER_KEY", "ck")
    monkeypatch.setenv("GAMEDAY_SHOP_WRITE_CONSUMER_SECRET", "cs")
    monkeypatch.setattr(guards, "interactive", lambda: True)
    prompts = []
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or "no")
    code = cli.main(["cleanup", str(run_dir)])
    err = capsys.readouterr().err
    assert code == 3 and prompts == ["Type yes to cancel these orders: "]
    assert "cleanup not confirmed" in err and "--target" not in err
    assert [m for m, _ in calls] == ["GET", "GET"]  # nothing was changed
    monkeypatch.setattr(guards, "interactive", lambda: False)
    with pytest.raises(Refused, match="cleanup not confirmed: no terminal"):
        cleanup.cleanup(str(run_dir))
