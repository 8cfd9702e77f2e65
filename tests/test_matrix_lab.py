"""`gameday matrix` on the real lab: the stock store against the hardened one under a DB failover.

The small matrix (2 runs) is part of the suite; the full 2x2 of the acceptance target is
`slow` (run it with `pytest -m slow`).
"""
import json
import time
from pathlib import Path

import pytest

from gameday import request
from gameday.matrix import run_matrix

pytestmark = pytest.mark.lab


def matrix_rows(lab, monkeypatch, tmp_path, settings, users=8):
    monkeypatch.setenv("GAMEDAY_REPORTS_DIR", str(tmp_path))
    for key, value in lab.env.items():
        monkeypatch.setenv(key, value)
    started = time.monotonic()
    base = request.build("rds-force-failover", "lab", lab=request.LabRequest(state_dir=lab.state_dir),
                         load=request.LoadRequest(users=users))
    assert run_matrix(base, settings, matrix_id="m") == 0
    elapsed = time.monotonic() - started
    data = json.loads((tmp_path / "m" / "matrix.json").read_text())
    return {r["label"]: r for r in data["rows"]}, elapsed


def test_small_matrix_stock_shows_500_pages_hardened_only_503s_and_nothing_lost(lab, monkeypatch, tmp_path):
    rows, _ = matrix_rows(lab, monkeypatch, tmp_path, ["profile=stock,hardened"])
    assert list(rows) == ["profile=stock", "profile=hardened"]
    stock, hardened = rows["profile=stock"], rows["profile=hardened"]
    assert stock["500 page"] > 0 and stock["503"] == 0
    assert hardened["500 page"] == 0
    assert stock["fault_error_ratio"] > hardened["fault_error_ratio"]
    assert stock["orders_lost"] == 0 and hardened["orders_lost"] == 0
    md = Path(tmp_path / "m" / "matrix.md").read_text()
    assert md.count("| profile=") == 2 and (tmp_path / "m" / "matrix.html").exists()
    shop = json.loads((lab.state_dir / "run" / "shop.json").read_text())
    assert "profile" not in shop  # the shop is back to the lab defaults


@pytest.mark.slow
def test_full_two_by_two_matrix_finishes_within_five_minutes(lab, monkeypatch, tmp_path):
    rows, elapsed = matrix_rows(lab, monkeypatch, tmp_path,
                                ["profile=stock,hardened", "retry=true,false"], users=20)
    assert len(rows) == 4 and elapsed <= 300, elapsed
    for label, row in rows.items():
        assert row["orders_lost"] == 0, label
        if "stock" in label:
            assert row["500 page"] > 0 and row["503"] == 0, label
        else:
            assert row["500 page"] == 0, label
