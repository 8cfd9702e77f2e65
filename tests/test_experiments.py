"""The experiment catalogue and `gameday run`: valid files, clear refusals, real game days on the lab."""
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from chaoslib.experiment import ensure_experiment_is_valid

from groundfloor.supervisor import poll_until
from gameday import request, run
from woolab import manage, servers

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = sorted(p.stem for p in run.EXPERIMENTS_DIR.glob("*.json"))
# impairments (gray failures) are judged by their own figures: tests/test_network_experiments.py;
# the session lab's DB is an instance, experiments for a DB cluster run on tests/test_lab_cluster.py's lab
FAILOVER_SHAPED = [n for n in EXPERIMENTS if not {"impairment", "db-cluster"} & set(json.loads(
    (run.EXPERIMENTS_DIR / f"{n}.json").read_text()).get("tags", []))]
LAB_RTO_TARGETS = {"db-primary-crash": 5.0}  # a crash is noticed first (detection 2 s in the fast timing)
LAB_RTO_TARGET = 3.0  # seconds, the lab's RTO target


def gameday(*args, env=None):
    return subprocess.run([sys.executable, "-m", "gameday.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})}, cwd=tempfile.gettempdir())


def list_tolerances(node):
    """Every list tolerance anywhere in an experiment (probes, safeguards, controls)."""
    if isinstance(node, dict):
        if isinstance(node.get("tolerance"), list):
            yield node["name"], node["tolerance"]
        for value in node.values():
            yield from list_tolerances(value)
    elif isinstance(node, list):
        for value in node:
            yield from list_tolerances(value)


def test_the_catalogue_has_the_six_game_days():
    assert {"rds-force-failover", "elasticache-test-failover", "elasticache-primary-deletion",
            "db-outage-checkout-journey", "gameday"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_is_valid_documented_and_uses_ranges_not_sets(name):
    experiment = json.loads((run.EXPERIMENTS_DIR / f"{name}.json").read_text())
    ensure_experiment_is_valid(experiment)
    assert (ROOT / run.doc_page(name)).is_file()
    for probe, tolerance in list_tolerances(experiment):
        # a 2-element list is an inclusive range in chaostoolkit-lib, never a set of allowed values
        assert len(tolerance) == 2 and all(isinstance(x, (int, float)) for x in tolerance), probe
        assert tolerance[0] <= tolerance[1], probe
    modules = {c["provider"]["module"] for c in experiment["controls"]}
    assert "chaosext.load.control" in modules  # every game day runs under shopper load


def test_gameday_list_describes_every_experiment():
    listed = gameday("list")
    assert listed.returncode == 0
    for name in EXPERIMENTS:
        assert name in listed.stdout


def test_unknown_experiment_is_one_clear_line(tmp_path):
    result = gameday("run", "no-such-experiment", "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith("gameday: error: unknown experiment 'no-such-experiment'")
    assert result.stderr.count("\n") == 1 and not manage.is_up(tmp_path)


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON"),
    (json.dumps({"title": "no method"}), "failed validation"),
])
def test_malformed_experiment_is_refused_before_anything_starts(tmp_path, content, message):
    broken = tmp_path / "broken.json"
    broken.write_text(content)
    result = gameday("run", str(broken), "--state-dir", str(tmp_path / "lab"))
    assert result.returncode == 1 and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not manage.is_up(tmp_path / "lab")


def test_target_aws_needs_a_region_and_credentials(tmp_path):
    no_region = gameday("run", "rds-force-failover", "--target", "aws",
                        env={"AWS_REGION": "", "AWS_DEFAULT_REGION": ""})
    assert no_region.returncode == 1 and "needs a region" in no_region.stderr
    no_credentials = gameday("run", "rds-force-failover", "--target", "aws", "--region", "eu-west-1",
                             env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""})
    assert no_credentials.returncode == 1 and "no AWS credentials" in no_credentials.stderr


def test_an_unknown_target_from_the_environment_is_refused(tmp_path):
    result = gameday("run", "rds-force-failover", "--state-dir", str(tmp_path), env={"GAMEDAY_TARGET": "staging"})
    assert result.returncode == 1 and "unknown target 'staging'" in result.stderr
    assert not manage.is_up(tmp_path)


def test_zero_users_is_refused():
    result = gameday("run", "rds-force-failover", "--users", "0")
    assert result.returncode == 1 and "--users must be at least 1" in result.stderr


def primaries_in_one_az(lab) -> None:
    """The AZ power interruption of "primary" refuses primaries split across AZs
    (tests/test_fis_placement_unit.py); earlier tests on the session lab may have split them."""
    snap = lab.snapshot()
    db = snap["db_instances"]["shop-db"]
    cache = next(c for c in snap["cache_clusters"].values() if c["role"] == "primary")
    if db["nodes"][db["primary"]]["az"] != cache["az"]:
        lab.failover_db()


def run_on_lab(lab, monkeypatch, tmp_path, name, shop_settings=None, **kwargs) -> tuple:
    monkeypatch.setenv("GAMEDAY_REPORTS_DIR", str(tmp_path))
    on_lab = request.LabRequest(state_dir=lab.state_dir, shop_settings=shop_settings or {})
    code = run.game_day(request.build(name, "lab", lab=on_lab, run_id=name, load=request.LoadRequest(users=8),
                                      **kwargs))
    run_dir = tmp_path / name
    return code, json.loads((run_dir / "journal.json").read_text()), json.loads(
        (run_dir / "summary.json").read_text())


@pytest.mark.lab
@pytest.mark.timeout(600)  # the AZ power interruption alone lasts 60 s, plus recovery and pauses
@pytest.mark.parametrize("name", FAILOVER_SHAPED)
def test_experiment_passes_on_the_lab_with_measured_rto_and_nothing_lost(lab, monkeypatch, tmp_path, name):
    notified_before = len(lab.webhooks("/hook"))
    if name == "az-power-interruption":
        primaries_in_one_az(lab)
    code, journal, summary = run_on_lab(lab, monkeypatch, tmp_path, name)
    assert code == 0, summary["verdict_reasons"]
    assert journal["status"] == "completed" and not journal["deviated"]
    assert summary["verdict"] == "passed"
    assert summary["faults"], "no fault was injected"
    for fault in summary["faults"]:
        if fault.get("fis"):  # an FIS experiment started without waiting: its probes time each service
            recoveries = [r["output"] for r in journal["run"] if r["activity"]["name"].endswith("writable-again")]
            assert len(recoveries) == 2 and all(0 < r["outage_seconds"] <= 5.0 for r in recoveries), recoveries
            continue
        assert 0 < fault["rto_seconds"] <= LAB_RTO_TARGETS.get(name, LAB_RTO_TARGET), fault
        assert fault["control_plane_seconds"] > 0
    assert summary["rpo"]["orders_acknowledged"] > 0
    assert summary["rpo"]["orders_lost"] == 0
    assert not manage.is_up(tmp_path)  # nothing else started beside the session lab
    checks = [r["output"] for r in journal["run"] if "events-within" in r["activity"]["name"]]
    # a check of a resource the lab does not have (az-power-interruption's DB cluster) is skipped
    judged = [c for c in checks if not (c.get("skipped") and c["resource_id"] == "")]
    assert judged and all(c["met"] is True for c in judged)  # AWS-style events arrived in time
    notes = [r["body"] for r in lab.webhooks("/hook")[notified_before:]]
    events = [n["event"] for n in notes]
    assert events[0] == "run-started" and events[-1] == "run-completed", events
    faults = {f["fault"] for f in summary["faults"]}  # rollbacks (restore_replicas) announce themselves too
    injected = [n for n in notes if n["event"] == "fault-injected" and n["fault"]["fault"] in faults]
    recovered = [n for n in notes if n["event"] == "recovered" and n["fault"]["fault"] in faults]
    # an FIS fault started without waiting is announced recovered when its experiment completes
    assert len(injected) == len(summary["faults"]) == len(recovered)
    assert all(n["fault"]["rto_seconds"] is not None for n in recovered)
    assert len(lab.webhooks("/slack")) >= len(notes)  # the Slack-format channel got them too


@pytest.mark.lab
def test_chaostoolkit_aws_activities_fail_the_lab_over_in_a_real_chaos_run(lab, tmp_path):
    """The lab is reached only through AWS_ENDPOINT_URL: chaostoolkit-aws's own code works unchanged."""
    before = lab.snapshot()
    experiment = {
        "title": "chaostoolkit-aws against the lab", "description": "third-party client check",
        "configuration": {"aws_region": "us-east-1"},
        "method": [
            {"type": "action", "name": "reboot-with-failover", "provider": {
                "type": "python", "module": "chaosaws.rds.actions", "func": "reboot_db_instance",
                "arguments": {"db_instance_identifier": "shop-db", "force_failover": True}}},
            {"type": "action", "name": "test-failover", "provider": {
                "type": "python", "module": "chaosaws.elasticache.actions", "func": "test_failover",
                "arguments": {"replication_group_id": "shop-cache", "node_group_id": "0001"}}},
            {"type": "probe", "name": "instance-status", "provider": {
                "type": "python", "module": "chaosaws.rds.probes", "func": "instance_status",
                "arguments": {"instance_id": "shop-db"}}}],
    }
    path = tmp_path / "chaosaws.json"
    path.write_text(json.dumps(experiment))
    env = {**os.environ, **lab.env, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    chaos = Path(sys.executable).parent / "chaos"
    result = subprocess.run([str(chaos), "run", "--journal-path", str(tmp_path / "journal.json"), str(path)],
                            env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["status"] == "completed", result.stdout[-2000:]
    assert [r["status"] for r in journal["run"]] == ["succeeded"] * 3
    lab.wait_idle()
    after = lab.snapshot()
    assert after["db_instances"]["shop-db"]["primary"] == before["db_instances"]["shop-db"]["standby"]
    old_primary = next(n for n, v in before["cache_clusters"].items() if v["role"] == "primary")
    assert after["cache_clusters"][old_primary]["role"] == "replica"


@pytest.mark.lab
def test_cache_failover_without_client_retries_deviates_and_fails_the_gate(lab, monkeypatch, tmp_path):
    code, journal, summary = run_on_lab(lab, monkeypatch, tmp_path, "elasticache-test-failover",
                                        shop_settings={"retry": "false"})
    assert code == 1
    # the error budget method check is not met (the journal's own hypothesis may still hold)
    assert summary["verdict"] == "deviated", summary["verdict_reasons"]
    shop = json.loads((lab.state_dir / "run" / "shop.json").read_text())
    assert "retry" not in shop  # the lab's shop is back to its defaults after the run
    budget = next(r["output"] for r in journal["run"] if r["activity"]["name"].startswith("shoppers-saw"))
    assert budget["met"] is False and any("ReadOnlyError" in k for k in budget["errors"]), budget


@pytest.mark.lab
def test_a_shop_that_caches_dns_past_the_ttl_fails_the_cache_failover_and_the_report_says_why(
        lab, monkeypatch, tmp_path):
    code, journal, summary = run_on_lab(lab, monkeypatch, tmp_path, "elasticache-test-failover",
                                        shop_settings={"dns_cache_seconds": "3600"})
    assert (code, summary["verdict"]) in ((1, "deviated"), (1, "failed"), (3, "interrupted"))
    budget = next(r["output"] for r in journal["run"] if r["activity"]["name"].startswith("shoppers-saw"))
    assert budget["met"] is False and any("ReadOnlyError" in k for k in budget["errors"]), budget
    # the stale clients keep failing after the failover recovered: the check says so, or the
    # safeguard stops the run as a runaway first and says so
    assert any("shoppers-saw" in reason or ("safeguard:" in reason and "outside any fault" in reason)
               for reason in summary["verdict_reasons"]), summary["verdict_reasons"]


@pytest.mark.lab
@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one-process", "two-workers"])
def test_ctrl_c_stops_the_load_plays_rollbacks_and_keeps_journal_and_report(lab, tmp_path, workers):
    env = {**os.environ, "GAMEDAY_REPORTS_DIR": str(tmp_path), "GAMEDAY_LAB_STATE_DIR": str(lab.state_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "gameday.cli", "run", "elasticache-primary-deletion",
                             "--users", "5", "--run-id", "ctrl-c", *workers], cwd=tmp_path, env=env,
                            start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run_dir = tmp_path / "ctrl-c"
    def method_started():
        assert proc.poll() is None, proc.stdout.read()
        return (run_dir / "remembered-carts.json").exists()
    assert poll_until(method_started, 60, 0.2), "the method never started"
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends to the foreground group on Ctrl-C
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, output  # 128 + SIGINT (docs/exit-codes.md)
    journal = json.loads((run_dir / "journal.json").read_text())
    assert journal["status"] == "interrupted"
    assert [r["activity"]["name"] for r in journal["rollbacks"]] == ["restore-cache-redundancy"]
    assert (run_dir / "report.html").is_file() and (run_dir / "junit.xml").is_file()
    started = json.loads((run_dir / "load-started.json").read_text())  # written by the load control
    assert started["pid"] and not servers.pid_alive(started["pid"])
    leftovers = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                 if str(run_dir) in servers.pid_cmdline(pid)]
    assert leftovers == []  # no Locust process (leader or worker) outlived the run
    assert "INTERRUPTED" in output


def test_lab_only_experiment_refuses_target_aws_in_one_line(tmp_path):
    result = gameday("run", "db-primary-crash", "--target", "aws", "--region", "eu-west-1",
                     "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "runs only on the lab" in result.stderr
    assert not manage.is_up(tmp_path)


def test_lab_only_fault_action_refuses_a_non_lab_endpoint(monkeypatch):
    from chaosext.errors import ActivityError
    from chaosext.lab.actions import lab_control_url
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://rds.eu-west-1.amazonaws.com")
    with pytest.raises(ActivityError, match="exists only in the local lab"):
        lab_control_url({})
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:15300")
    assert lab_control_url({}) == "http://127.0.0.1:15300"
    monkeypatch.setenv("GAMEDAY_TARGET", "aws")
    with pytest.raises(ActivityError):
        lab_control_url({})
