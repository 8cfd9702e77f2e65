"""`gameday history`: the table and index.html from recorded runs, old and damaged ones too."""
import base64
import json
import io
import re
import shutil
from pathlib import Path

import pytest

from gameday.cli import main
from gameday.report.figures import find_runs, from_summary
from bench_history import bench_history

FIXTURE = Path(__file__).parent / "fixtures" / "history"


@pytest.fixture
def reports(tmp_path):
    target = tmp_path / "reports"
    shutil.copytree(FIXTURE, target)
    return target


def test_history_lists_every_run_old_new_nested_and_damaged(reports, capsys):
    assert main(["history", "--reports", str(reports)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["start", "(UTC)", "run"]
    assert err.strip() == "gameday: warning: damaged: summary.json unreadable: not valid JSON"
    names = ["slow-1", "noise-4", "artifact-4242/reports/noise-5", "old-version", "damaged"]
    rows = {name: line for line in lines[1:-1] for name in names if f" {name} " in line}
    assert len(lines) == 7 and set(rows) == set(names)
    assert lines[1].split()[2] == "slow-1"  # newest first
    assert "passed (regressed)" in rows["slow-1"] and "rds-force-failover 7.54" in rows["slow-1"]
    # the old summary has no shopper impact: its columns say so instead of guessing
    old = rows["old-version"].split()
    assert "rds-force-failover" in old and old[-4:-2] == ["—", "—"] and old[-2:] == ["0", "0"]
    assert "unreadable" in rows["damaged"]
    assert lines[-1].startswith("history: 5 runs, page ")


def test_history_page_has_trend_charts_the_table_and_links(reports):
    assert main(["history", "--reports", str(reports)]) == 0
    page = (reports / "index.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 1  # one experiment, one target, one (unrecorded) profile
    from PIL import Image
    chart = Image.open(io.BytesIO(base64.b64decode(images[0])))
    assert chart.size[0] >= 1000
    assert page.count("<tr") == 6  # header + 5 runs, the damaged one included
    assert "summary.json unreadable: not valid JSON" in page
    assert "(regressed)" in page
    assert not re.search(r'(src|href)="(?!data:)[^"]*(?<!report\.html)"', page)
    (reports / "noise-4" / "report.html").write_text("<html></html>")
    main(["history", "--reports", str(reports)])
    assert 'href="noise-4/report.html"' in (reports / "index.html").read_text()


def test_runs_are_read_from_any_summary_version(reports):
    runs = {r.run_id: r for r in find_runs(str(reports))}
    old, new, slow = runs["old-version"], runs["noise-4"], runs["slow-1"]
    assert old.schema.endswith("/1") and old.faults[0].rto == pytest.approx(1.521, abs=0.2)
    assert old.faults[0].error_seconds is None and old.profile is None
    assert new.faults[0].error_seconds >= 1 and new.faults[0].failed_checkouts >= 1
    assert slow.regressed is True and not slow.passing and new.passing
    assert runs["damaged"].problem and not runs["damaged"].passing
    for junk in ({}, [], {"faults": "none"}, "text"):
        assert from_summary(junk, "x").problem == "not a game-day summary"


@pytest.mark.parametrize("make, message", [
    (lambda d: None, "no such reports directory"),
    (lambda d: d.mkdir(), "no runs in"),
])
def test_missing_or_empty_reports_directory_is_one_line(tmp_path, capsys, make, message):
    where = tmp_path / "reports"
    make(where)
    assert main(["history", "--reports", str(where)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (where / "index.html").exists()


def test_history_of_200_runs_is_small(tmp_path):
    """Its speed (<= 3 s) is a target of `scripts/bench.py --only history`, not of this test."""
    figures = bench_history(200, str(tmp_path / "reports"))
    assert figures["runs"] == 200 and figures["unreadable"] == 1
    assert figures["history_cpu_seconds"] > 0
    assert figures["page_bytes"] <= 3_000_000


def test_timing_profile_and_shop_settings_travel_from_target_json_to_the_history(run_dir, capsys):
    from gameday.run import timing_name
    assert timing_name("/home/someone/profiles/slow-db.json") == "slow-db"
    assert timing_name("aws") == "aws"
    (run_dir / "target.json").write_text(json.dumps(
        {"kind": "lab", "timing_profile": "aws", "shop_settings": {"retry": "false"},
         "ids": {"db_instance": "shop-db", "replication_group": "shop-cache"}}))
    assert main(["report", str(run_dir)]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["target"]["timing_profile"] == "aws"
    assert summary["target"]["shop_settings"] == {"retry": "false"}
    assert summary["target"]["ids"] == ["shop-db", "shop-cache"]
    capsys.readouterr()
    assert main(["history", "--reports", str(run_dir.parent)]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert " aws " in row and "retry=false" in row
