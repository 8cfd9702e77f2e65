"""The baseline gate on the real lab: an unchanged rerun passes, a 5× slower DB failover fails.

Three short game days (8 shoppers) and two lab restarts, about two minutes: marked `slow` as
well as `lab`. The lab is restarted with the DB failover outage 5× the default (what
`gameday lab up --db-failover-seconds` sets) and restored afterwards.
"""
import dataclasses
import json
import xml.etree.ElementTree as ET

import pytest

from gameday import request, run
from woolab import manage
from woolab.config import LabConfig
from woolab.timing import profile_for


def game_day(lab, run_id, **gate):
    return run.game_day(request.build("rds-force-failover", "lab", run_id=run_id,
                                      lab=request.LabRequest(state_dir=lab.state_dir),
                                      load=request.LoadRequest(users=8), gate=request.Gate(**gate)))


def failed_cases(run_dir):
    return {(c.get("classname"), c.get("name"))
            for c in ET.parse(run_dir / "junit.xml").getroot().iter("testcase")
            if c.find("failure") is not None}


@pytest.mark.lab
@pytest.mark.slow
def test_gate_passes_an_unchanged_rerun_and_catches_a_five_times_slower_db_failover(
        lab, monkeypatch, tmp_path):
    monkeypatch.setenv("GAMEDAY_REPORTS_DIR", str(tmp_path))
    assert game_day(lab, "base") == 0
    assert game_day(lab, "rerun", baseline="last:1") == 0
    rerun = json.loads((tmp_path / "rerun" / "summary.json").read_text())["baseline"]
    assert rerun["runs"] == ["base"] and rerun["regressed"] is False
    assert not failed_cases(tmp_path / "rerun")

    config = LabConfig.load(lab.state_dir)
    outage = profile_for(config).db_failover_seconds
    assert isinstance(outage, float), "the gate is measured on the fast profile's fixed outage"
    slow = dataclasses.replace(config, db_failover_outage_seconds=5 * outage)
    manage.down(lab.state_dir)
    try:
        manage.up(slow)
        assert game_day(lab, "slow", baseline="last:2") == 1
    finally:
        manage.down(lab.state_dir)
        manage.up(config)
    summary = json.loads((tmp_path / "slow" / "summary.json").read_text())
    assert summary["verdict"] == "passed"  # the absolute RTO threshold still holds ...
    assert summary["target"]["timing_profile"] == "fast"  # same profile: comparable
    gate = summary["baseline"]
    assert gate["runs"] == ["base", "rerun"] and gate["regressed"] is True  # ... the gate does not
    rto = next(c for c in gate["checks"] if c["figure"] == "rto")
    assert rto["outcome"] == "failed" and rto["value"] > 3 * rto["baseline"]
    assert ("baseline.rds-force-failover.shop-db", "RTO vs baseline") in failed_cases(tmp_path / "slow")
