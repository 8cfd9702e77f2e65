"""The safeguard on a lab whose DB failover keeps the endpoint down 20 s (13x the fast lab).

Both sides on the real lab: a planned outage within the RTO threshold runs to the end and
passes; the same outage with a threshold of 8 s is a runaway, and the safeguard aborts the run.
"""
import json

import pytest

from gameday import request, run
from gameday.interrupt import EXIT_INTERRUPTED

DB_OUTAGE = 20.0
LAB_TIMING = {"db_failover_outage_seconds": DB_OUTAGE}  # the `timed_lab` fixture's lab


def run_on(lab, monkeypatch, tmp_path, name, run_id):
    monkeypatch.setenv("GAMEDAY_REPORTS_DIR", str(tmp_path))
    code = run.game_day(request.build(name, "lab", lab=request.LabRequest(state_dir=lab.state_dir),
                                      run_id=run_id, load=request.LoadRequest(users=5)))
    run_dir = tmp_path / run_id
    lab.wait_idle(120)  # an aborted run leaves the failover to finish in the lab
    return code, run_dir, json.loads((run_dir / "summary.json").read_text())


@pytest.mark.lab
def test_a_20s_db_outage_within_the_threshold_does_not_abort_the_run(timed_lab, monkeypatch,
                                                                     tmp_path):
    code, run_dir, summary = run_on(timed_lab, monkeypatch, tmp_path, "rds-force-failover",
                                    "planned")
    assert code == 0, summary["verdict_reasons"]
    assert summary["status"] == "completed" and summary["verdict"] == "passed"
    assert not (run_dir / "safeguard.json").exists()
    (fault,) = summary["faults"]
    assert DB_OUTAGE - 1 <= fault["rto_seconds"] <= DB_OUTAGE + 5, fault
    assert fault["rto_within_threshold"] is True and fault["rto_threshold_seconds"] == 180
    assert summary["rpo"]["orders_lost"] == 0


@pytest.mark.lab
def test_the_same_outage_beyond_an_8s_threshold_is_a_runaway_and_aborts_the_run(
        timed_lab, monkeypatch, tmp_path):
    monkeypatch.setenv("GAMEDAY_RTO_THRESHOLD_SECONDS", '{"rds": 8, "elasticache": 8}')
    code, run_dir, summary = run_on(timed_lab, monkeypatch, tmp_path, "rds-force-failover",
                                    "runaway")
    assert code == EXIT_INTERRUPTED  # the run stopped itself
    assert summary["status"] == "interrupted" and summary["verdict"] == "interrupted"
    assert any(r.startswith("safeguard: ") for r in summary["verdict_reasons"])
    tripped = json.loads((run_dir / "safeguard.json").read_text())
    assert not tripped["ok"] and tripped["faults"][0]["fault"] == "rds-force-failover"
    assert any("8 s RTO threshold" in r or "threshold allows" in r
               for r in tripped["reasons"]), tripped["reasons"]
    aborted_after = tripped["faults"][0]["age_seconds"]  # seconds since the injection
    assert 8 < aborted_after < DB_OUTAGE, aborted_after  # before the outage would have ended
