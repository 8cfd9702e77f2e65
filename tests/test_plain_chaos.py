"""The pack as a plain Chaos Toolkit user meets it: `chaos validate`, `chaos discover` and
`chaos run` straight from the shell, without the `gameday` wrapper and from any directory."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import chaosext
from chaosext import rundir
from gameday.run import EXPERIMENTS_DIR

EXPERIMENTS = sorted(EXPERIMENTS_DIR.glob("*.json"))
CHAOS = str(Path(sys.executable).parent / "chaos")
LIST_FIELDS = ("method", "rollbacks")


def bare_env(home: Path, **extra: str) -> dict:
    """A fresh shell: PATH and HOME only (plus what the test adds)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), **extra}


def python_providers(experiment: dict):
    """(activity name, module, func) of every Python activity: hypothesis, method, rollbacks."""
    activities = list(experiment.get("steady-state-hypothesis", {}).get("probes", []))
    for field in LIST_FIELDS:
        activities += experiment.get(field, [])
    for activity in activities:
        provider = activity.get("provider", {})
        if provider.get("type") == "python":
            yield activity["name"], provider["module"], provider["func"]


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_chaos_validate_passes_in_an_empty_environment(path, tmp_path):
    result = subprocess.run([CHAOS, "--no-log-file", "validate", str(path)], cwd=tmp_path,
                            env=bare_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "experiment syntax and semantic look valid" in result.stdout + result.stderr


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_declares_its_rollback_strategy_and_a_fresh_run_directory(path):
    experiment = json.loads(path.read_text())
    assert experiment["runtime"]["rollbacks"]["strategy"] == "always"
    last = experiment["controls"][-1]["provider"]  # after the others: its journal has their extensions
    assert last["module"] == "chaosext.rundir" and last["arguments"]["name"] == path.stem
    assert experiment["configuration"]["gameday_run_dir"]["default"] == ""
    env_secrets = [v for group in experiment.get("secrets", {}).values() for v in group.values()
                   if isinstance(v, dict) and v.get("type") == "env"]
    assert env_secrets == []  # chaoslib refuses an unset env secret whatever its default


def test_chaos_discover_lists_every_activity_the_experiments_use_with_its_documentation(tmp_path):
    out = tmp_path / "discovery.json"
    result = subprocess.run([CHAOS, "--no-log-file", "discover", "--no-system-info", "--no-install",
                             "--discovery-path", str(out), "failover-gameday"], cwd=tmp_path,
                            env=bare_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    discovery = json.loads(out.read_text())
    assert discovery["extension"]["name"] == "failover-gameday"
    docs = {(a["mod"], a["name"]): a.get("doc") or "" for a in discovery["activities"]}
    used = {(module, func): (path.stem, name) for path in EXPERIMENTS
            for name, module, func in python_providers(json.loads(path.read_text()))}
    assert len(used) > 10  # the walk found the experiments' activities
    missing = {where: used[where] for where in used if where not in docs}
    assert not missing
    undocumented = [where for where in used if len(docs[where].strip()) < 20]
    assert not undocumented


def test_the_package_docstring_names_the_discover_command_that_works():
    assert "chaos discover failover-gameday" in chaosext.__doc__
    assert "chaos discover chaosext" not in chaosext.__doc__


# ---------------------------------------------------------------- the run-directory control
def test_each_run_gets_a_fresh_directory_under_reports_of_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for key in ("GAMEDAY_RUN_DIR", "GAMEDAY_REPORTS_DIR"):
        monkeypatch.delenv(key, raising=False)
    first = rundir.choose_run_dir("rds-force-failover", {"gameday_run_dir": ""})
    second = rundir.choose_run_dir("rds-force-failover", {"gameday_run_dir": ""})
    assert first.parent == second.parent == tmp_path / "reports"
    assert first != second and first.is_dir() and second.is_dir()
    assert first.name.endswith("-rds-force-failover")


def test_a_run_directory_named_by_the_environment_is_used_as_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GAMEDAY_RUN_DIR", str(tmp_path / "mine"))
    assert rundir.choose_run_dir("x") == tmp_path / "mine"
    monkeypatch.delenv("GAMEDAY_RUN_DIR")
    monkeypatch.setenv("GAMEDAY_REPORTS_DIR", str(tmp_path / "elsewhere"))
    assert rundir.choose_run_dir("x").parent == tmp_path / "elsewhere"


def test_the_control_exports_the_run_directory_and_saves_the_journal_there(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GAMEDAY_REPORTS_DIR", raising=False)
    monkeypatch.delenv("GAMEDAY_RUN_DIR", raising=False)
    rundir.configure_control(configuration={}, experiment={"title": "T"}, name="db-outage")
    chosen = Path(os.environ["GAMEDAY_RUN_DIR"])
    assert chosen.parent == tmp_path / "reports" and chosen.name.endswith("-db-outage")
    rundir.after_experiment_control({}, state={"status": "completed", "run": []})
    assert json.loads((chosen / "journal.json").read_text())["status"] == "completed"


# ---------------------------------------------------------------- plain `chaos run` on the lab
@pytest.mark.lab
def test_plain_chaos_run_passes_against_the_lab_from_any_directory(lab, tmp_path):
    """What a user does: `eval "$(gameday lab env)"`, then `chaos run` in a directory of theirs."""
    exported = subprocess.run([sys.executable, "-m", "gameday.cli", "lab", "env", "--state-dir",
                               str(lab.state_dir)], capture_output=True, text=True, timeout=60)
    assert exported.returncode == 0, exported.stderr
    env = bare_env(tmp_path)
    script = f"{exported.stdout}\nexec {CHAOS} run {EXPERIMENTS_DIR / 'rds-force-failover.json'}"
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Rollbacks strategy: always" in output + (tmp_path / "chaostoolkit.log").read_text()
    runs = list((tmp_path / "reports").iterdir())
    assert len(runs) == 1 and runs[0].name.endswith("-rds-force-failover")
    journal = json.loads((runs[0] / "journal.json").read_text())
    assert journal["status"] == "completed" and not journal["deviated"]
    for name in ("timeline.jsonl", "orders.jsonl", "load-summary.json"):
        assert (runs[0] / name).is_file(), name
    assert "gameday-load" in {e["name"] for e in journal.get("extensions", [])}
