"""The flagship game day at AWS timescales: a 60 s RDS failover and a 30 s ElastiCache failover.

Minutes long, so marked `slow` (not run by default; `pytest -m slow`). Before the fault-aware
safeguard, this run aborted itself a few seconds into the DB failover.
"""
import json
import time

import pytest

from gameday import run

DB_OUTAGE, CACHE_OUTAGE = 60.0, 30.0
LAB_TIMING = {"db_failover_outage_seconds": DB_OUTAGE,
              "cache_failover_outage_seconds": CACHE_OUTAGE}  # the `timed_lab` fixture's lab


@pytest.mark.lab
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_game_day_passes_with_a_60s_db_and_a_30s_cache_failover(timed_lab, monkeypatch,
                                                                     tmp_path):
    monkeypatch.setenv("GAMEDAY_REPORTS_DIR", str(tmp_path))
    started = time.monotonic()
    code = run.game_day("gameday", target="lab", users=8, state_dir=timed_lab.state_dir,
                        run_id="aws-timescales")
    wall = time.monotonic() - started
    run_dir = tmp_path / "aws-timescales"
    summary = json.loads((run_dir / "summary.json").read_text())
    figures = {f["fault"]: f["rto_seconds"] for f in summary["faults"]}
    print(f"gameday at AWS timescales: verdict {summary['verdict']}, RTO {figures}, "
          f"wall {wall:.0f} s")
    assert code == 0, summary["verdict_reasons"]
    assert summary["status"] == "completed" and summary["verdict"] == "passed"
    assert not (run_dir / "safeguard.json").exists()
    assert DB_OUTAGE - 1 <= figures["rds-force-failover"] <= DB_OUTAGE + 10, figures
    cache = next(f for f in summary["faults"] if f["fault"] == "elasticache-test-failover")
    assert CACHE_OUTAGE - 1 <= cache["rto_seconds"] <= CACHE_OUTAGE + 10, cache
    assert cache["data_plane"]["outage_seconds"] > 0  # measured by writes, not by status
    assert all(f["rto_within_threshold"] for f in summary["faults"])
    assert summary["rpo"]["orders_acknowledged"] > 0 and summary["rpo"]["orders_lost"] == 0
    assert summary["rpo"]["carts_lost"] == 0
