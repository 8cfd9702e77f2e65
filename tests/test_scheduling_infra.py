"""Scheduled and pre-release game days: the CI workflow gates on the lab game day and archives
reports/, the AWS job dry-runs first with OIDC credentials, the EventBridge Scheduler → CodeBuild
template passes cfn-lint and carries exactly the pack's IAM policy, the systemd units verify,
and the shared runner script dry-runs before it fails anything over."""
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from gameday.run import EXPERIMENTS_DIR

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "gameday.yml"
SCHEDULING = ROOT / "infra" / "scheduling"
TEMPLATE = SCHEDULING / "eventbridge-codebuild.yaml"
SCRIPT = SCHEDULING / "aws-gameday.sh"
POLICY = ROOT / "infra" / "iam" / "gameday-policy.json"
# Set by `gameday run` itself, or optional with a safe default in every experiment.
# GAMEDAY_LAB_CONTROL_URL: lab-only experiments (they refuse AWS), never scheduled against AWS.
NOT_SCHEDULER_SETTINGS = {"AWS_REGION", "GAMEDAY_RUN_DIR", "GAMEDAY_ALLOW_TAG", "GAMEDAY_LAB_CONTROL_URL"}


@pytest.fixture(scope="module")
def workflow():
    data = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


@pytest.fixture(scope="module")
def template():
    cfn_yaml = pytest.importorskip("cfnlint.decode.cfn_yaml", reason="pip install cfn-lint")
    return cfn_yaml.load(str(TEMPLATE))


def _runs(job):
    return [step.get("run", "") for step in job["steps"]]


def _step_using(job, action):
    return next(s for s in job["steps"] if s.get("uses", "").startswith(action))


# read by the activities themselves (chaoslib refuses an unset env secret, so none is declared)
ACTIVITY_CREDENTIALS = ("GAMEDAY_MYSQL_PASSWORD", "GAMEDAY_REDIS_PASSWORD", "GAMEDAY_SHOP_CONSUMER_KEY",
                        "GAMEDAY_SHOP_CONSUMER_SECRET")


def _experiment_env_keys(runs_on_aws: bool = False):
    """Every environment variable the shipped experiments read (configuration, secrets, and the
    credentials their activities take from the environment); with `runs_on_aws`, only those of
    experiments that are not lab-only (an AWS scheduler never runs the others)."""
    keys = set(ACTIVITY_CREDENTIALS)
    for path in EXPERIMENTS_DIR.glob("*.json"):
        data = json.loads(path.read_text())
        if runs_on_aws and "lab-only" in data.get("tags", []):
            continue
        entries = list(data.get("configuration", {}).values())
        for group in data.get("secrets", {}).values():
            entries += list(group.values())
        keys |= {e["key"] for e in entries if isinstance(e, dict) and e.get("type") == "env"}
    return keys


# -- GitHub Actions --------------------------------------------------------------------------
def test_lab_game_day_gates_every_push_and_pull_request(workflow):
    assert "push" in workflow["on"] and "pull_request" in workflow["on"]
    job = workflow["jobs"]["lab-gameday"]
    assert "push" in job["if"] and "pull_request" in job["if"]
    runs = _runs(job)
    assert any(r.strip() == "make gameday" for r in runs)
    install = next(r for r in runs if "apt-get install" in r)
    for package in ("mariadb-server", "redis-server", "redis-sentinel", "haproxy"):
        assert package in install
    assert not any("sudo make" in r for r in runs), ".venv must not be created as root"


@pytest.mark.parametrize("job_name", ["lab-gameday", "aws-gameday"])
def test_reports_and_junit_are_published_even_when_the_gate_fails(workflow, job_name):
    job = workflow["jobs"][job_name]
    upload = _step_using(job, "actions/upload-artifact@")
    assert upload["if"] == "always()"
    assert "reports/" in upload["with"]["path"].split()
    junit = _step_using(job, "mikepenz/action-junit-report@")
    assert junit["if"] == "always()" and junit["with"]["report_paths"] == "reports/*/junit.xml"


def test_aws_game_day_is_scheduled_or_manual_with_oidc_and_a_dry_run_first(workflow):
    assert workflow["on"]["schedule"] and "workflow_dispatch" in workflow["on"]
    job = workflow["jobs"]["aws-gameday"]
    assert "schedule" in job["if"] and "workflow_dispatch" in job["if"]
    assert "push" not in job["if"], "never fail staging over on a push"
    assert job["permissions"]["id-token"] == "write"
    creds = _step_using(job, "aws-actions/configure-aws-credentials@")
    assert creds["with"]["role-to-assume"] == "${{ vars.AWS_GAMEDAY_ROLE_ARN }}"
    runs = [" ".join(r.split()) for r in _runs(job)]
    gameday_runs = [i for i, r in enumerate(runs) if "gameday suite" in r]
    assert len(gameday_runs) == 2
    dry, real = (runs[i] for i in gameday_runs)
    assert "--dry-run" in dry and "--dry-run" not in real
    for command in (dry, real):
        assert '"$GAMEDAY_SUITE" --target aws --region "$AWS_REGION"' in command
    assert job["env"]["GAMEDAY_SUITE"] == "${{ inputs.suite || 'nightly' }}"
    assert job["steps"].index(creds) < gameday_runs[0]


def test_aws_job_keeps_a_run_history_and_gates_the_real_run_on_it(workflow):
    job = workflow["jobs"]["aws-gameday"]
    restore = _step_using(job, "actions/cache/restore@")
    save = _step_using(job, "actions/cache/save@")
    assert restore["with"]["path"] == save["with"]["path"]
    assert restore["with"]["path"].split() == ["reports/*/summary.json", "reports/*/suite.json",
                                               "reports/*/*/summary.json"]
    assert save["if"] == "always()" and save["with"]["key"].startswith(restore["with"]["restore-keys"])
    runs = _runs(job)
    real = next(r for r in runs if "gameday suite" in r and "--dry-run" not in r)
    assert "--baseline last:5" in real and '"reports/*-suite-$name/summary.json"' in real
    steps = job["steps"]
    assert steps.index(restore) < next(i for i, r in enumerate(runs) if "gameday suite" in r)
    assert any("gameday history --reports reports" in r for r in runs)


def test_aws_job_passes_secrets_only_from_github_secrets(workflow):
    env = workflow["jobs"]["aws-gameday"]["env"]
    for key in ("GAMEDAY_MYSQL_PASSWORD", "GAMEDAY_REDIS_PASSWORD", "GAMEDAY_SHOP_CONSUMER_KEY",
                "GAMEDAY_SHOP_CONSUMER_SECRET"):
        assert env[key] == "${{ secrets.%s }}" % key


# -- CloudFormation --------------------------------------------------------------------------
def test_schedule_template_passes_cfn_lint():
    api = pytest.importorskip("cfnlint.api", reason="pip install cfn-lint (setup.cfg test extras)")
    matches = api.lint_file(TEMPLATE)
    assert not matches, "\n".join(str(m) for m in matches)


def _plain(value):
    """A template value with `!Sub "arn:${AWS::Partition}:..."` read as the policy file writes it."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        return str(value["Fn::Sub"]).replace("${AWS::Partition}", "aws")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def test_codebuild_role_carries_exactly_the_packs_iam_policy(template):
    resources = template["Resources"]
    restated = resources["GamedayPolicy"]["Properties"]["PolicyDocument"]
    assert _plain(json.loads(json.dumps(restated))) == json.loads(POLICY.read_text())
    role = resources["CodeBuildRole"]["Properties"]
    assert {"Ref": "GamedayPolicy"} in role["ManagedPolicyArns"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "codebuild.amazonaws.com"}


def test_scheduler_starts_only_the_game_day_build_and_never_retries(template):
    resources = template["Resources"]
    target = resources["GamedaySchedule"]["Properties"]["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["GamedayProject", "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0
    statements = resources["SchedulerRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"]
    assert [(s["Action"], s["Resource"]) for s in statements] == [
        ("codebuild:StartBuild", {"Fn::GetAtt": ["GamedayProject", "Arn"]})]
    assert resources["GamedayProject"]["Properties"]["ConcurrentBuildLimit"] == 1


def test_buildspec_runs_the_aws_game_day_and_archives_reports_to_s3(template):
    project = template["Resources"]["GamedayProject"]["Properties"]
    spec = yaml.safe_load(str(project["Source"]["BuildSpec"]))
    commands = [c for phase in spec["phases"].values() for c in phase["commands"]]
    assert "infra/scheduling/aws-gameday.sh" in commands
    assert not any("apt-get" in c for c in commands), "no lab packages for --target aws"
    assert spec["artifacts"]["base-directory"] == "reports"
    assert spec["reports"]["gameday"]["file-format"] == "JUNITXML"
    assert project["Artifacts"]["Type"] == "S3"
    assert project["Artifacts"]["Location"] == {"Ref": "ReportsBucket"}


def test_codebuild_sets_every_setting_the_experiments_read(template):
    variables = template["Resources"]["GamedayProject"]["Properties"]["Environment"][
        "EnvironmentVariables"]
    names = set()
    for v in variables:  # plain entries and `!If [cond, entry, NoValue]`
        entries = v["Fn::If"][1:] if "Fn::If" in v else [v]
        names |= {e["Name"] for e in entries if isinstance(e, dict) and "Name" in e}
    assert _experiment_env_keys(runs_on_aws=True) - NOT_SCHEDULER_SETTINGS <= names


# -- systemd and the runner script -----------------------------------------------------------
def test_example_environment_file_names_every_setting_the_experiments_read():
    text = (SCHEDULING / "gameday.env.example").read_text()
    missing = [k for k in _experiment_env_keys() - {"GAMEDAY_RUN_DIR", "GAMEDAY_LAB_CONTROL_URL"} if k not in text]
    assert not missing


def test_systemd_units_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze not installed")
    for name in ("gameday.service", "gameday.timer"):  # point the units at this checkout
        text = (SCHEDULING / name).read_text().replace("/opt/failover-gameday", str(ROOT))
        (tmp_path / name).write_text(text)
    result = subprocess.run([analyze, "verify", "gameday.timer", "gameday.service"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "gameday" not in result.stderr, result.stderr


def test_timer_is_weekly_and_starts_the_service():
    timer = (SCHEDULING / "gameday.timer").read_text()
    assert "OnCalendar=Tue *-*-* 09:00:00 UTC" in timer and "Unit=gameday.service" in timer
    service = (SCHEDULING / "gameday.service").read_text()
    assert "ExecStart=/opt/failover-gameday/infra/scheduling/aws-gameday.sh" in service
    assert SCRIPT.stat().st_mode & stat.S_IXUSR


def _run_script(tmp_path, exit_codes="0 0 0", **env):
    """Run aws-gameday.sh with a stand-in `gameday` that records its arguments."""
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "gameday"
    fake.write_text('#!/bin/sh\necho "$*" >> "$CALLS"\n'
                    'code=$(echo $EXIT_CODES | cut -d" " -f$(wc -l < "$CALLS"))\nexit "$code"\n')
    fake.chmod(0o755)
    base = {"PATH": os.environ["PATH"], "GAMEDAY_BIN": str(fake), "CALLS": str(calls),
            "EXIT_CODES": exit_codes, "AWS_REGION": "eu-west-1",
            "GAMEDAY_DB_INSTANCE_ID": "shop-db", "GAMEDAY_REPLICATION_GROUP_ID": "shop-cache",
            "GAMEDAY_SHOP_URL": "https://staging.example.com"}
    base.update(env)
    base = {k: v for k, v in base.items() if v is not None}
    result = subprocess.run([str(SCRIPT)], env=base, capture_output=True, text=True, timeout=30)
    lines = calls.read_text().splitlines() if calls.exists() else []
    return result, lines


def test_runner_script_dry_runs_then_runs_the_release_suite_against_aws(tmp_path):
    result, calls = _run_script(tmp_path, GAMEDAY_USERS="25",
                                GAMEDAY_REPORTS_DIR=str(tmp_path / "reports"))
    assert result.returncode == 0, result.stderr
    dry, real, history = calls
    assert dry == "suite release --target aws --region eu-west-1 --dry-run"
    assert real.startswith("suite release --target aws --region eu-west-1 --users 25 --yes")
    assert real.split("--suite-id ")[1].endswith("-suite-release") and "--baseline" not in real
    assert history == f"history --reports {tmp_path / 'reports'}"


def test_runner_script_gates_a_suite_on_earlier_suites_of_its_name(tmp_path):
    reports = tmp_path / "reports"
    for suite_id in ("20261124T090000Z-suite-nightly", "20261124T080000Z-suite-release"):
        (reports / suite_id).mkdir(parents=True)
        (reports / suite_id / "summary.json").write_text("{}")
    result, calls = _run_script(tmp_path, exit_codes="0 1 0", GAMEDAY_REPORTS_DIR=str(reports),
                                GAMEDAY_SUITE="nightly")
    assert result.returncode == 1
    dry, real, _ = calls
    assert dry.startswith("suite nightly ") and real.endswith("--baseline last:5")
    first = tmp_path / "first"  # no earlier suite: nothing to gate against
    first.mkdir()
    result, calls = _run_script(first, GAMEDAY_REPORTS_DIR=str(first / "reports"),
                                GAMEDAY_SUITE="nightly")
    assert result.returncode == 0 and "--baseline" not in calls[1]


def test_runner_script_dry_runs_then_runs_the_game_day_against_aws(tmp_path):
    result, calls = _run_script(tmp_path, GAMEDAY_USERS="25", GAMEDAY_EXPERIMENT="gameday",
                                GAMEDAY_REPORTS_DIR=str(tmp_path / "reports"))
    assert result.returncode == 0, result.stderr
    assert len(calls) == 3
    dry, real, history = calls
    assert "--baseline" not in real  # the first run has no history to be gated against
    assert history == f"history --reports {tmp_path / 'reports'}"
    assert dry.startswith("run gameday --target aws --region eu-west-1 --allow-remote-load --dry-run")
    assert real.startswith("run gameday --target aws --region eu-west-1 --allow-remote-load")
    assert "--dry-run" not in real and "--users 25" in real
    assert dry.split("--run-id ")[1].endswith("-gameday-dry-run")
    assert real.split("--run-id ")[1].endswith("-gameday")


def test_runner_script_gates_on_history_and_still_writes_it_when_the_gate_fails(tmp_path):
    reports = tmp_path / "reports"
    for run_id in ("20261124T090000Z-gameday", "20261124T085500Z-gameday-dry-run"):
        (reports / run_id).mkdir(parents=True)
        (reports / run_id / "summary.json").write_text("{}")
    result, calls = _run_script(tmp_path, exit_codes="0 1 0", GAMEDAY_REPORTS_DIR=str(reports),
                                GAMEDAY_TOLERANCE="rto=50%", GAMEDAY_EXPERIMENT="gameday")
    assert result.returncode == 1
    dry, real, history = calls
    assert "--baseline" not in dry
    assert real.endswith("--baseline last:5 --tolerance rto=50%")
    assert history.startswith("history --reports")


def test_runner_script_does_not_gate_on_dry_runs_alone(tmp_path):
    reports = tmp_path / "reports"
    (reports / "20261124T085500Z-gameday-dry-run").mkdir(parents=True)
    (reports / "20261124T085500Z-gameday-dry-run" / "summary.json").write_text("{}")
    result, calls = _run_script(tmp_path, exit_codes="0 0 0", GAMEDAY_REPORTS_DIR=str(reports),
                                GAMEDAY_EXPERIMENT="gameday")
    assert result.returncode == 0 and "--baseline" not in calls[1]


def test_runner_script_fails_nothing_over_when_the_dry_run_fails(tmp_path):
    result, calls = _run_script(tmp_path, exit_codes="1 0")
    assert result.returncode == 1
    assert len(calls) == 1 and "--dry-run" in calls[0]


def test_runner_script_names_the_missing_settings(tmp_path):
    result, calls = _run_script(tmp_path, GAMEDAY_SHOP_URL=None, AWS_REGION=None)
    assert result.returncode == 2 and not calls
    assert "AWS_REGION" in result.stderr and "GAMEDAY_SHOP_URL" in result.stderr
