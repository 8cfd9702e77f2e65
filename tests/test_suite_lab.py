"""`gameday suite` against the real lab: two experiments on one lab, stopped by SIGTERM after
the first.

Two short failovers (DB, then cache) under three shoppers. The first runs to its verdict; the
suite restores the lab (failback, full redundancy, the shop answering) before the second; a
SIGTERM sent once the second has injected its fault stops the suite as `gameday run` stops
(load, rollbacks, the run's report), and the suite's report is still written: the first
passed, the second interrupted, exit code 143, the lab (which the suite did not start) still up.
"""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from groundfloor.supervisor import poll_until
from woolab import manage

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.lab


def short(name: str, tmp_path: Path) -> str:
    """A catalogue experiment with a short warm-up and no pause after the fault."""
    spec = json.loads((ROOT / "experiments" / f"{name}.json").read_text())
    for control in spec["controls"]:
        if control["provider"]["module"] == "chaosext.load.control":
            control["provider"]["arguments"].update(warmup=1, spawn_rate=3)
    for activity in spec["method"]:
        activity.pop("pauses", None)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(spec))
    return str(path)


def test_two_experiment_suite_on_one_lab_stopped_after_the_first(lab, tmp_path):
    suite = tmp_path / "two.json"
    suite.write_text(json.dumps({"title": "two", "experiments": [
        {"experiment": short("rds-force-failover", tmp_path), "name": "db", "users": 3, "weight": 2},
        {"experiment": short("elasticache-test-failover", tmp_path), "name": "cache", "users": 3}]}))
    reports = tmp_path / "reports"
    env = {**os.environ, "GAMEDAY_REPORTS_DIR": str(reports), **lab.env}
    out = tmp_path / "suite.out"
    with open(out, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "gameday.cli", "suite", str(suite),
                                 "--state-dir", str(lab.state_dir), "--suite-id", "two"],
                                cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        injected = reports / "two" / "cache" / "faults.jsonl"
        assert poll_until(lambda: injected.exists() or proc.poll() is not None, 300, 0.2)
        assert proc.poll() is None, out.read_text()[-3000:]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 143, out.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    summary = json.loads((reports / "two" / "summary.json").read_text())
    db, cache = summary["experiments"]
    assert summary["verdict"] == "interrupted"
    assert (db["status"], db["verdict"]) == ("ran", "passed") and db["score"] > 50
    assert (cache["status"], cache["verdict"], cache["score"]) == ("ran", "interrupted", 0)
    assert summary["experiments"][1]["restore_before"]["ok"] is True
    assert "gameday: suite: restored before cache" in out.read_text()
    stopped = json.loads((reports / "two" / "cache" / "interruption.json").read_text())
    assert [s["signal"] for s in stopped["signals"]] == ["SIGTERM"]
    assert (reports / "two" / "junit.xml").exists() and (reports / "two" / "report.html").exists()
    assert manage.is_up(lab.state_dir), "the suite stopped a lab it did not start"
