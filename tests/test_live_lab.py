"""`gameday run --web` and `--pause-between-faults` against the lab: the live view follows a real
game day phase by phase, Locust's own web UI answers while the load runs and is gone after it,
and a step-by-step run waits for its signal while the load keeps going."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from groundfloor.supervisor import poll_until
from load_helpers import locust_processes

BASE = int(os.environ.get("GAMEDAY_LAB_BASE_PORT", 25300))
WEB_PORT = BASE + 70  # Locust's UI; the live view on +71 (the lab uses +0..+3, +6, +53, +79, +91..93)
ACTIVE = {"running", "starting", "waiting", "injected", "control plane done", "writable", "done",
          "recovered", "failed"}


def start(lab, tmp_path: Path, run_id: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "GAMEDAY_REPORTS_DIR": str(tmp_path), "GAMEDAY_LAB_STATE_DIR": str(lab.state_dir)}
    return subprocess.Popen([sys.executable, "-m", "gameday.cli", "run", "gameday", "--users", "5",
                             "--run-id", run_id, *args], cwd=tmp_path, env=env, start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def get(url: str, timeout: float = 2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except OSError:
        return None, b""


def closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


class Watcher(threading.Thread):
    """Polls the live view and Locust's UI every 200 ms, noting when each phase became active."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port, self.halt = port, threading.Event()
        self.first_active, self.last, self.locust = {}, None, {}

    def run(self) -> None:
        while not self.halt.wait(0.2):
            code, body = get(f"http://127.0.0.1:{self.port + 1}/phases.json")
            if code == 200:
                self.last = json.loads(body)
                for p in self.last["phases"]:
                    if p["status"] in ACTIVE:
                        self.first_active.setdefault(p["key"], time.time())
            if "stats" not in self.locust:
                code, body = get(f"http://127.0.0.1:{self.port}/stats/requests")
                if code == 200 and json.loads(body).get("state") in ("running", "spawning"):
                    self.locust["stats"] = json.loads(body)
                    self.locust["index"] = get(f"http://127.0.0.1:{self.port}/")


@pytest.mark.lab
@pytest.mark.timeout(300)
def test_live_view_follows_each_phase_in_order_and_locust_ui_answers_only_during_the_run(lab, tmp_path):
    proc = start(lab, tmp_path, "live", "--workers", "2", "--web", f"127.0.0.1:{WEB_PORT}",
                 "--pause-between-faults", "--pause-timeout", "2")
    watcher = Watcher(WEB_PORT)
    watcher.start()
    output = proc.communicate(timeout=280)[0]
    watcher.halt.set()
    watcher.join()
    assert proc.returncode == 0, output
    order = ["hypothesis-before", "fault-rds-force-failover", "pause-elasticache-test-failover",
             "fault-elasticache-test-failover", "hypothesis-after", "rollbacks"]
    seen = [key for key, _ in sorted(watcher.first_active.items(), key=lambda kv: kv[1])]
    assert seen == order, (seen, output)
    final = {p["key"]: p for p in watcher.last["phases"]}
    assert final["fault-rds-force-failover"]["rto_seconds"] > 0
    assert final["pause-elasticache-test-failover"]["how"] == "timeout"  # nobody said go on
    assert "going on with elasticache-test-failover (timeout)" in output
    assert watcher.locust.get("stats"), "Locust's web UI never answered /stats/requests while running"
    assert watcher.locust["index"][0] == 200 and b"<html" in watcher.locust["index"][1].lower()
    assert closed(WEB_PORT) and closed(WEB_PORT + 1)  # both gone with the run
    assert locust_processes(tmp_path / "live") == []  # master and workers
    summary = json.loads((tmp_path / "live" / "summary.json").read_text())
    assert [p["how"] for p in summary["pauses"]] == ["timeout"]


def wait_for_pause(proc, run_dir: Path, timeout: float = 120) -> dict:
    def paused():
        assert proc.poll() is None, proc.stdout.read()
        try:
            current = json.loads((run_dir / "pause.json").read_text())
        except (OSError, ValueError):
            return None
        return current if current["state"] == "waiting" else None
    current = poll_until(paused, timeout, 0.2)
    assert current, "the run never paused"
    return current


def load_seconds_since(run_dir: Path, since: float) -> set:
    """The seconds since `since` in which shoppers made requests (timeline rows)."""
    rows = [json.loads(x) for x in (run_dir / "timeline.jsonl").read_text().splitlines() if x.strip()]
    return {r["t"] for r in rows if r["t"] >= since and r["requests"] > 0}


def injected_faults(run_dir: Path) -> list:
    return [json.loads(line)["fault"] for line in (run_dir / "faults.jsonl").read_text().splitlines()
            if json.loads(line)["record"] == "injected"]


@pytest.mark.lab
@pytest.mark.timeout(300)
def test_pause_waits_for_sigusr1_while_the_load_keeps_running_and_the_report_marks_it(lab, tmp_path):
    proc = start(lab, tmp_path, "step", "--pause-between-faults", "--pause-timeout", "120")
    run_dir = tmp_path / "step"
    current = wait_for_pause(proc, run_dir)
    assert current["before"] == "elasticache-test-failover"
    paused_at = time.time()
    assert poll_until(lambda: len(load_seconds_since(run_dir, paused_at)) >= 2, 30, 0.2), \
        "the load stopped producing timeline rows during the pause"
    assert injected_faults(run_dir) == ["rds-force-failover"]  # the second fault waits
    assert not (run_dir / "journal.json").exists() and proc.poll() is None
    held = time.time() - paused_at  # the pause began before it was seen and ends with the signal
    os.kill(proc.pid, signal.SIGUSR1)
    output = proc.communicate(timeout=200)[0]
    assert proc.returncode == 0, output
    assert "paused before elasticache-test-failover" in output and "kill -USR1" in output
    assert injected_faults(run_dir) == ["rds-force-failover", "elasticache-test-failover"]
    summary = json.loads((run_dir / "summary.json").read_text())
    (pause,) = summary["pauses"]
    assert pause["how"] == "SIGUSR1" and pause["seconds"] >= round(held, 1)
    kinds = [e["kind"] for e in summary["events"]]
    assert kinds.index("pause-start") < kinds.index("pause-end")
    report = (run_dir / "report.md").read_text()
    assert "Pauses between faults" in report and "SIGUSR1" in report


@pytest.mark.lab
@pytest.mark.timeout(300)
def test_ctrl_c_during_a_pause_stops_the_run_as_today_and_keeps_journal_and_pause(lab, tmp_path):
    proc = start(lab, tmp_path, "stop", "--pause-between-faults")
    run_dir = tmp_path / "stop"
    wait_for_pause(proc, run_dir)
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, output
    journal = json.loads((run_dir / "journal.json").read_text())
    assert journal["status"] == "interrupted"
    assert [r["activity"]["name"] for r in journal["rollbacks"]] == ["restore-cache-redundancy"]
    assert injected_faults(run_dir) == ["rds-force-failover"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [p["how"] for p in summary["pauses"]] == ["interrupted"]
    assert json.loads((run_dir / "load-summary.json").read_text())["status"] == "stopped"
    assert locust_processes(run_dir) == []
