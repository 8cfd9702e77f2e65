"""The guards of an AWS run, without AWS and without a lab: mixing decided by address wherever an
endpoint comes from, production marks, endpoint errors in one line (fake endpoints that answer
garbage or hang), IAM rows that fail only for IAM reasons, the profile's region, prompts only in
the terminal's foreground, cleanup's own prompt."""
import json
import os
import pty
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from chaosext import aws, guardrails
from chaosext.errors import GuardrailRefused, Refused
from gameday import cli, cleanup, request, run
from gameday.preflight import guards, mixing

from aws_helpers import FakeAws

ROOT = Path(__file__).resolve().parents[1]


def run_aws(capsys, *extra):
    code = cli.main(["run", "rds-force-failover", "--target", "aws", "--region", "eu-west-1", *extra])
    out, err = capsys.readouterr()
    return code, out, err.strip()


@pytest.mark.parametrize("url", ["http://127.1:15300", "http://0x7f000001:15300",
                                 "http://[::ffff:127.0.0.1]:15300", "http://localhost:15300",
                                 "http://0.0.0.0:15300", "http://169.254.169.254"])
def test_every_spelling_of_this_machine_is_refused(aws_clean_env, capsys, url):
    aws_clean_env.setenv("AWS_ENDPOINT_URL_RDS", url)
    code, out, err = run_aws(capsys, "--dry-run")
    assert code == 3 and len(err.splitlines()) == 1 and "Traceback" not in out + err
    assert f"AWS_ENDPOINT_URL_RDS={url}" in err and "unset AWS_ENDPOINT_URL_RDS" in err


def test_a_name_that_resolves_to_loopback_is_refused(aws_clean_env, capsys, monkeypatch):
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if host == "staging-shop.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))]
        return real(host, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    aws_clean_env.setenv("GAMEDAY_SHOP_URL", "https://staging-shop.example")
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


def test_lab_leftovers_are_named_at_once_with_the_one_command_that_clears_them(aws_clean_env, capsys,
                                                                               tmp_path):
    exported = lab_env(aws_clean_env, tmp_path)
    for key, value in exported.items():
        aws_clean_env.setenv(key, value)
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
def test_the_profiles_endpoint_url_is_judged_too(aws_clean_env, capsys, tmp_path, config):
    (tmp_path / "aws-config").write_text(config)
    code, _, err = run_aws(capsys, "--dry-run")
    assert code == 3 and "profile default endpoint_url (rds)" in err
    assert "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS" in err
    aws_clean_env.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")  # botocore then ignores it
    assert mixing.leftovers(dict(os.environ)) == []


def test_an_unresolvable_name_is_one_clear_line(aws_clean_env, capsys):
    aws_clean_env.setenv("GAMEDAY_REDIS_HOST", "master.stage-cache.nowhere.invalid")
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


@pytest.mark.parametrize("mode,says", [("garbage", "answered with something that is not an AWS reply"),
                                       ("hang", "did not answer in time")])
def test_a_fake_endpoint_is_one_row_naming_it_with_no_lab_hint(aws_clean_env, capsys, monkeypatch, mode, says):
    fake = FakeAws(mode)
    monkeypatch.setattr(mixing, "TEST_LOOPBACK_HOSTS", frozenset({"127.0.0.1"}))  # the test switch
    monkeypatch.setattr(aws, "TIMEOUTS", (1.0, 1.0))
    aws_clean_env.setenv("AWS_MAX_ATTEMPTS", "1")
    aws_clean_env.setenv("AWS_ENDPOINT_URL", fake.url)
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


def test_the_profiles_region_counts_as_botocore_reads_it(aws_clean_env, tmp_path):
    (tmp_path / "aws-config").write_text("[default]\nregion = eu-central-1\n")
    assert aws.client_region({}) == "eu-central-1"
    req = request.build("rds-force-failover", "aws", lab=request.LabRequest(state_dir=tmp_path / "no-lab"))
    env, started = run.target_env(req)
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


def test_every_waiver_is_listed_in_the_docs_with_what_it_lets_through():
    from gameday.preflight import waivers
    page = (ROOT / "docs" / "before-aws.md").read_text().split("## Waivers", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([^`]+)` \|", page, re.M)
    assert listed == [w.name for w in waivers.WAIVERS]


def test_each_experiment_page_lists_the_iam_actions_of_the_one_iam_source():
    from gameday import iam
    for entry in run.catalog():
        spec = json.loads(Path(entry["path"]).read_text())
        page = (ROOT / entry["doc"]).read_text()
        assert iam.experiment_line(spec, entry["name"]) in page, entry["name"]
    gameday = json.loads(Path(run.resolve("gameday")).read_text())
    assert "elasticache:CreateCacheCluster" in iam.experiment_actions(gameday)  # its rollback's


@pytest.mark.parametrize("code,status", [("DBInstanceNotFound", "info"), ("AccessDenied", "FAIL")])
def test_the_iam_read_row_fails_only_when_aws_denied(monkeypatch, code, status):
    from chaosext.errors import ActivityError
    from gameday.preflight import cloud
    from gameday.preflight.context import Context

    def read(context, client, name):
        raise ActivityError(f"DescribeDBInstances on {name} refused ({code})", code=code)
    monkeypatch.setattr(cloud, "_instance_rows", read)
    monkeypatch.setattr(cloud, "_client", lambda context, service: None)
    ctx = Context("aws", {}, {}, {}, {}, "run-1", False, [("db-instance", "stage-db")])
    ctx.actions = [{"phase": "method", "name": "f", "func": "chaosext.rds.actions.force_failover",
                    "arguments": {}, "background": False}]
    [target] = cloud.target_rows(ctx)
    ctx.facts["target_failed"] = True
    monkeypatch.setattr(cloud, "_simulate", lambda context, actions: None)
    reads = {r.item: r for r in cloud.iam_rows(ctx) if r}["read actions"]
    assert target.status == "FAIL" and reads.status == status
    assert ("gameday-policy.json" in target.fix) is (code == "AccessDenied")


def test_the_preflight_checks_the_read_keys_the_run_will_use(monkeypatch):
    from gameday.preflight import reach
    from gameday.preflight.context import Context, environment
    seen = []

    class Rest:
        def __init__(self, base, key, secret, timeout):
            seen.append((key, secret))

        def call(self, method, path):
            return 200, ({"value": "yes"} if "guest" in path else [])
    monkeypatch.setattr(reach, "RestClient", Rest)
    env = {"GAMEDAY_SHOP_CONSUMER_KEY": "ck_env", "GAMEDAY_SHOP_CONSUMER_SECRET": "cs_env"}
    ctx = Context("aws", env, {}, {}, {}, "run-1")
    with environment(env):
        rows = {r.item: r for r in reach._rest_rows(ctx, "https://s.example", 1.0)}
    assert seen == [("ck_env", "cs_env")]
    assert rows["REST read keys"].status == "ok" and rows["guest checkout"].status == "ok"


def test_one_loopback_test_by_address_and_one_flag():
    from chaosext import addresses, settings
    from chaosext.load import config as load_config, web
    assert all(addresses.is_loopback(h) for h in ("127.1", "0x7f000001", "::ffff:127.0.0.1", "[::1]", "localhost"))
    assert not any(addresses.is_loopback(h) for h in ("10.0.0.1", "0.0.0.0", "nowhere.invalid", ""))
    assert web.is_loopback is addresses.is_loopback
    assert guardrails.flag is settings.flag and load_config.flag is settings.flag
