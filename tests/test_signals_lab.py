"""Signals from outside stop `gameday run` the way Ctrl-C does, against the real lab.

Each run uses a short experiment: two shoppers, one real RDS failover in the lab (fast timing),
a method that holds the fault window open, and a rollback that takes a while, so a first signal
lands in the method and a second one in the rollbacks. The signals are spread so that every
signal is sent to gameday alone and to its whole process group, and every signal is also the
second one that aborts the rollbacks (a pairwise cover, 6 runs instead of 12).
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from groundfloor.supervisor import poll_until
from woolab import manage, runlock, servers
from woolab.config import LabConfig
from woolab.errors import LabStartError

ROOT = Path(__file__).resolve().parent.parent
SESSION_LAB_PORT = int(os.environ.get("GAMEDAY_LAB_BASE_PORT", 25300))
EXIT_WITHIN = 60.0


def own_lab_port() -> int:
    """A base port for a second lab beside the session lab: the first free block of 100 above it."""
    for base in range(SESSION_LAB_PORT + 100, SESSION_LAB_PORT + 3000, 100):
        try:
            servers.check_ports_free(LabConfig(base_port=base).all_ports())
        except LabStartError:
            continue
        return base
    pytest.skip("no free block of lab ports above the session lab's")


def experiment(tmp_path: Path, rollback_seconds: float) -> Path:
    """The shipped `gameday` experiment cut down to one DB failover under two shoppers."""
    spec = json.loads((ROOT / "experiments" / "gameday.json").read_text())
    load = next(c for c in spec["controls"] if c["provider"]["module"] == "chaosext.load.control")
    load["provider"]["arguments"].update(users=2, spawn_rate=2, warmup=0, max_duration=300)
    spec["controls"] = [load]
    probes = spec["steady-state-hypothesis"]["probes"]
    spec["steady-state-hypothesis"]["probes"] = [p for p in probes if p["name"] == "store-api-answers"]
    failover = next(a for a in spec["method"] if a["name"] == "rds-force-failover")
    failover.pop("pauses", None)
    failover["provider"]["arguments"]["timeout"] = 60
    spec["method"] = [failover, {"type": "probe", "name": "hold-the-fault-window",
                                 "provider": {"type": "process", "path": "true"}, "pauses": {"before": 40}}]
    spec["rollbacks"] = [{"type": "action", "name": "slow-rollback", "provider": {"type": "process", "path": "true"},
                          "pauses": {"before": rollback_seconds}}]
    path = tmp_path / "signal-test.json"
    path.write_text(json.dumps(spec))
    return path


class Run:
    """One `gameday run` in its own process group, output to a file."""

    def __init__(self, tmp_path: Path, exp: Path, run_id: str, env: dict, prefix=()):
        self.run_dir = tmp_path / "reports" / run_id
        self.out = tmp_path / f"{run_id}.out"
        env = {**os.environ, "GAMEDAY_REPORTS_DIR": str(tmp_path / "reports"), **env}
        with open(self.out, "w") as out:
            self.proc = subprocess.Popen([*prefix, sys.executable, "-m", "gameday.cli", "run", str(exp),
                                          "--run-id", run_id], cwd=ROOT, env=env, start_new_session=True,
                                         stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.out.read_text()

    def wait_for(self, what: str, condition, timeout: float = 90.0) -> None:
        found = poll_until(lambda: condition() or self.proc.poll() is not None, timeout, interval=0.1)
        assert found and self.proc.poll() is None, f"no {what}: {self.output()[-3000:]}"

    def injected(self) -> None:
        self.wait_for("fault injection", lambda: (self.run_dir / "faults.jsonl").exists())

    def recovered(self) -> None:
        ledger = self.run_dir / "faults.jsonl"
        self.wait_for("fault recovery", lambda: any(
            json.loads(line).get("record") == "ended" for line in ledger.read_text().splitlines()))

    def rolling_back(self) -> None:
        log = self.run_dir / "chaostoolkit.log"
        self.wait_for("rollbacks", lambda: log.exists() and "Let's rollback" in log.read_text())

    def send(self, sig: int, group: bool) -> float:
        (os.killpg if group else os.kill)(self.proc.pid, sig)
        return time.monotonic()

    def finish(self, since: float) -> int:
        code = self.proc.wait(timeout=EXIT_WITHIN + 30)
        assert time.monotonic() - since < EXIT_WITHIN, self.output()[-3000:]
        return code


def assert_interrupted(run: Run, code, sig: int, rollbacks_aborted: bool) -> dict:
    """Exit 128+sig (`code` None: not observable), every report file with verdict INTERRUPTED
    and the fault, nothing left running."""
    output = run.output()
    assert code in (None, 128 + sig), output[-3000:]
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["verdict"] == "interrupted"
    assert summary["interruption"]["signal"] == signal.Signals(sig).name
    assert summary["interruption"]["rollbacks_aborted"] is rollbacks_aborted
    assert "sent to gameday" in summary["verdict_reasons"][0] and "INTERRUPTED" in output
    faults = [f for f in summary["faults"] if f["fault"] == "rds-force-failover"]
    assert len(faults) == 1 and faults[0]["injected_at"] and faults[0]["target"] == "shop-db"
    junit = (run.run_dir / "junit.xml").read_text()
    assert 'name="verdict" value="interrupted"' in junit and "rds-force-failover" in junit
    assert "rds-force-failover" in (run.run_dir / "report.html").read_text()
    assert (run.run_dir / "report.md").is_file()
    leftovers = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                 if str(run.run_dir) in servers.pid_cmdline(pid)]
    assert leftovers == []  # neither chaos nor Locust (leader or worker) outlived the run
    journal = json.loads((run.run_dir / "journal.json").read_text())  # chaoslib writes it even then
    assert journal["status"] == "interrupted"
    played = [r["activity"]["name"] for r in journal["rollbacks"] if r.get("status") == "succeeded"]
    assert played == ([] if rollbacks_aborted else ["slow-rollback"])
    return summary


@pytest.mark.lab
def test_sigterm_to_gameday_alone_after_the_fault_stops_everything_and_the_lab_it_started(tmp_path):
    state_dir = tmp_path / "lab"
    run = Run(tmp_path, experiment(tmp_path, 2), "term", {
        "GAMEDAY_LAB_STATE_DIR": str(state_dir), "GAMEDAY_LAB_BASE_PORT": str(own_lab_port())})
    try:
        run.injected()
        run.recovered()
        code = run.finish(run.send(signal.SIGTERM, group=False))
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
        pids = manage.recorded_pids(state_dir)
        manage.down(state_dir)
    assert_interrupted(run, code, signal.SIGTERM, rollbacks_aborted=False)
    assert "lab stopped" in run.output() and not manage.is_up(state_dir)
    assert [name for name, pid in pids.items() if servers.pid_alive(pid)] == []


@pytest.fixture
def on_lab(lab):
    lab.wait_idle()
    return {"GAMEDAY_LAB_STATE_DIR": str(lab.state_dir)}


@pytest.mark.lab
def test_sigint_to_gameday_alone_plays_rollbacks_and_a_second_run_is_refused_meanwhile(tmp_path, on_lab):
    exp = experiment(tmp_path, 2)
    run = Run(tmp_path, exp, "int", on_lab)
    run.injected()
    env = {**os.environ, **on_lab, "GAMEDAY_REPORTS_DIR": str(tmp_path / "reports")}
    second = subprocess.run([sys.executable, "-m", "gameday.cli", "run", str(exp), "--run-id", "second"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    status = subprocess.run([sys.executable, "-m", "gameday.cli", "lab", "status"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    code = run.finish(run.send(signal.SIGINT, group=False))
    assert second.returncode == 1 and second.stderr.count("\n") == 1, second.stderr
    assert f"in use by `gameday run {exp} --run-id int` (run int, pid {run.proc.pid}" in second.stderr
    assert not (tmp_path / "reports" / "second").exists()
    assert status.returncode == 0 and f"in use by: `gameday run {exp}" in status.stdout  # read-only works
    assert_interrupted(run, code, signal.SIGINT, rollbacks_aborted=False)


@pytest.mark.lab
def test_sighup_to_the_whole_group_during_the_method_plays_rollbacks(tmp_path, on_lab):
    run = Run(tmp_path, experiment(tmp_path, 2), "hup-group", on_lab)
    run.injected()
    code = run.finish(run.send(signal.SIGHUP, group=True))
    assert_interrupted(run, code, signal.SIGHUP, rollbacks_aborted=False)


@pytest.mark.lab
@pytest.mark.parametrize("sig,group", [(signal.SIGINT, True), (signal.SIGTERM, True), (signal.SIGHUP, False)],
                         ids=["int-group", "term-group", "hup-alone"])
def test_a_second_signal_during_the_rollbacks_aborts_them_and_the_report_keeps_the_fault(
        tmp_path, on_lab, sig, group):
    run = Run(tmp_path, experiment(tmp_path, 60), "twice", on_lab)
    run.injected()
    since = run.send(sig, group)
    run.rolling_back()
    time.sleep(1.5)  # a repeat within 1 s is taken for the same request (GNU timeout sends two)
    run.send(sig, group)
    code = run.finish(since)
    summary = assert_interrupted(run, code, sig, rollbacks_aborted=True)
    assert "aborting the rollbacks" in run.output()
    assert "aborted the rollbacks" in summary["verdict_reasons"][0]


@pytest.mark.lab
def test_timeout_signals_twice_at_once_which_counts_once_and_the_rollbacks_play(tmp_path, on_lab):
    """GNU timeout sends SIGTERM to gameday and then to its group: one request, not two."""
    run = Run(tmp_path, experiment(tmp_path, 2), "timeout", on_lab, prefix=("timeout", "20"))
    run.injected()
    code = run.proc.wait(timeout=20 + EXIT_WITHIN)
    assert code == 124, run.output()[-3000:]  # timeout's own code: the command timed out
    assert_interrupted(run, None, signal.SIGTERM, rollbacks_aborted=False)


@pytest.mark.lab
def test_status_of_a_lab_whose_controller_died_lists_orphans_and_the_recovery(tmp_path):
    port = own_lab_port()
    env = {**os.environ, "GAMEDAY_LAB_STATE_DIR": str(tmp_path), "GAMEDAY_LAB_BASE_PORT": str(port)}

    def gameday(*args):
        return subprocess.run([sys.executable, "-m", "gameday.cli", "lab", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    manage.up(LabConfig.from_env(state_dir=tmp_path, base_port=port, with_shop=False))
    try:
        controller = json.loads((tmp_path / "lab.json").read_text())["controller_pid"]
        os.kill(controller, signal.SIGKILL)
        assert poll_until(lambda: not servers.pid_alive(controller), 10)
        status = gameday("status")
        as_json = json.loads(gameday("status", "--json").stdout)
    finally:
        pids = manage.recorded_pids(tmp_path)
        down = gameday("down")
    assert status.returncode == 1, status.stderr
    assert f"the lab controller (pid {controller}) is dead" in status.stdout
    assert "shop-db-a" in status.stdout and "recover with: gameday lab up" in status.stdout
    assert as_json["controller"] == "dead" and {"shop-db-a", "shop-cache-001"} <= {
        o["name"] for o in as_json["orphans"]}
    assert down.returncode == 0 and "cleaned up after a crash" in down.stdout
    assert [name for name, pid in pids.items() if servers.pid_alive(pid)] == []


@pytest.mark.lab
def test_a_signal_during_lab_up_leaves_no_server_running(tmp_path):
    env = {**os.environ, "GAMEDAY_LAB_STATE_DIR": str(tmp_path), "GAMEDAY_LAB_BASE_PORT": str(own_lab_port())}
    proc = subprocess.Popen([sys.executable, "-m", "gameday.cli", "lab", "up"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # the lab's servers are starting (a mariadbd of this state dir runs; the lab is not ready yet)
        assert poll_until(lambda: any("mariadbd" in cmd and str(tmp_path) in cmd for cmd in map(
            servers.pid_cmdline, map(int, filter(str.isdigit, os.listdir("/proc"))))), 30, interval=0.01)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=90)[0]
        leftovers = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                     if str(tmp_path) in servers.pid_cmdline(pid)]
    finally:
        if proc.poll() is None:
            proc.kill()
        manage.down(tmp_path)  # only if the test failed: the command itself must leave nothing
    assert proc.returncode == 143 and "gameday: interrupted (SIGTERM)" in output, output
    assert leftovers == []


@pytest.mark.lab
def test_a_signal_during_a_matrix_stops_its_run_and_the_matrix_with_a_partial_comparison(tmp_path, on_lab):
    reports = tmp_path / "reports"
    env = {**os.environ, **on_lab, "GAMEDAY_REPORTS_DIR": str(reports)}
    out = tmp_path / "matrix.out"
    with open(out, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "gameday.cli", "matrix", str(experiment(tmp_path, 2)),
                                 "--setting", "retry=true,false", "--matrix-id", "m"], cwd=ROOT, env=env,
                                start_new_session=True, stdout=fh, stderr=subprocess.STDOUT)
    try:
        first = reports / "m" / "retry-true"
        assert poll_until(lambda: (first / "faults.jsonl").exists() or proc.poll() is not None, 90)
        since = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=EXIT_WITHIN + 30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    output = out.read_text()
    assert code == 143 and time.monotonic() - since < EXIT_WITHIN, output[-3000:]
    assert json.loads((first / "summary.json").read_text())["verdict"] == "interrupted"
    assert not (reports / "m" / "retry-false").exists()  # no further run started
    assert "matrix stopped after 1 runs" in output and (reports / "m" / "matrix.html").is_file()
    assert runlock.lock_holder(Path(on_lab["GAMEDAY_LAB_STATE_DIR"])) is None
    assert [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
            if str(reports) in servers.pid_cmdline(pid)] == []
