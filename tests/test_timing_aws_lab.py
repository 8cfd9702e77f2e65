"""The flagship game day at AWS's timescales (`--timing aws`): minutes-long failovers must neither
abort the run nor be mis-measured. Slow (several minutes): CI runs the slow group once."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from groundfloor.timefmt import parse_time
from woolab import manage
from woolab.events import read_events
from woolab.timing import PROFILES

pytestmark = [pytest.mark.lab, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]


def test_gameday_passes_at_aws_timescales_with_rtos_in_the_profile_and_measured_within_a_second(tmp_path):
    state_dir, reports = tmp_path / "aws-lab", tmp_path / "reports"
    env = {**os.environ, "GAMEDAY_REPORTS_DIR": str(reports), "GAMEDAY_LAB_STATE_DIR": str(state_dir),
           "GAMEDAY_LAB_BASE_PORT": str(int(os.environ.get("GAMEDAY_LAB_BASE_PORT", 25300)) + 500)}
    began = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "gameday.cli", "run", "gameday", "--timing", "aws",
                             "--users", "10", "--keep-lab", "--run-id", "aws-timing"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - began
    try:
        events = read_events(state_dir / "events.jsonl")
    finally:
        manage.down(state_dir)
    summary = json.loads((reports / "aws-timing" / "summary.json").read_text())
    assert result.returncode == 0, (summary["verdict_reasons"], result.stdout[-3000:])
    assert wall <= 8 * 60
    assert summary["rpo"]["orders_lost"] == 0 and summary["rpo"]["orders_acknowledged"] > 0
    aws = PROFILES["aws"]
    ranges = {"rds-force-failover": aws.db_failover_seconds, "elasticache-test-failover": aws.cache_failover_seconds}
    for fault in summary["faults"]:
        low, high = ranges[fault["fault"]]
        # + name resolution, reconnect, first write; the RTO is the middle of an interval about
        # 0.1 s wide (docs/reports.md), so it may read up to half of that under the outage itself
        assert low - 0.1 <= fault["rto_seconds"] <= high + 3, fault
        injected = parse_time(fault["injected_at"]).timestamp()
        truth = next(e["time"] for e in events if e["source_type"] == "lab" and e["time"] >= injected
                     and e["message"].startswith("endpoint writable"))
        measured = parse_time(fault["data_plane_writable_at"]).timestamp()
        assert abs(measured - truth) <= 1.0, (fault["fault"], measured - truth)
