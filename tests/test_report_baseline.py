"""The baseline gate: median of the last N passing runs, tolerances, JUnit cases, bad input."""
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gameday.cli import main
from gameday.report import ReportError, report_command, write_report
from gameday.report.baseline import (DEFAULT_TOLERANCE, compare_with_baseline, parse_baseline,
                                     parse_tolerance)

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "gameday-run"


def summary_like(run_id, start, rto=2.0, verdict="passed", title="Game day", profile="fast",
                 kind="lab", checkouts=4, regressed=None, dry_run=False):
    """A summary.json as history and the gate read it (only the keys they use)."""
    summary = {"schema": "failover-gameday/report-summary/2", "run_id": run_id, "start": start,
               "verdict": verdict, "experiment": {"title": title},
               "target": {"kind": kind, "timing_profile": profile, "shop_settings": {}},
               "faults": [{"fault": "rds-force-failover", "target": "shop-db", "rto_seconds": rto,
                           "dry_run": dry_run,
                           "impact": {"error_seconds": 2, "failed_checkouts": checkouts}}],
               "rpo": {"orders_lost": 0, "carts_lost": 0}}
    if regressed is not None:
        summary["baseline"] = {"regressed": regressed}
    return summary


def write_runs(reports: Path, summaries) -> None:
    for summary in summaries:
        run = reports / summary["run_id"]
        run.mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def reports(tmp_path):
    """Five passing lab runs (RTO 1.0..1.4 s) and runs the gate must not use as a baseline."""
    reports = tmp_path / "reports"
    write_runs(reports, [summary_like(f"ok-{i}", f"2026-11-2{i}T06:00:00.000Z", rto=1.0 + i / 10)
                         for i in range(5)] + [
        summary_like("failed", "2026-11-25T06:00:00.000Z", rto=0.1, verdict="deviated"),
        summary_like("regressed", "2026-11-25T07:00:00.000Z", rto=9.0, regressed=True),
        summary_like("other-experiment", "2026-11-25T08:00:00.000Z", rto=50, title="Cache only"),
        summary_like("aws-profile", "2026-11-25T09:00:00.000Z", rto=90, profile="aws"),
        summary_like("dry-run", "2026-11-26T09:00:00.000Z", rto=None, dry_run=True),
        summary_like("later", "2026-11-29T09:00:00.000Z", rto=0.01)])
    return reports


def test_last_n_is_the_median_of_the_latest_passing_runs_of_the_same_experiment_target_profile(
        reports):
    now = summary_like("now", "2026-11-27T06:00:00.000Z", rto=1.5)
    gate = compare_with_baseline(now, "last:3", None, str(reports))
    assert gate["runs"] == ["ok-2", "ok-3", "ok-4"]
    rto = next(c for c in gate["checks"] if c["figure"] == "rto")
    rel, slack = DEFAULT_TOLERANCE["rto"]
    assert rto["baseline"] == 1.3 and rto["allowed"] == round(1.3 * (1 + rel) + slack, 3)
    assert rto["outcome"] == "passed" and not gate["regressed"]


def test_a_slower_failover_within_the_absolute_threshold_still_fails_the_gate(reports):
    now = summary_like("now", "2026-11-27T06:00:00.000Z", rto=6.5)  # under a 180 s threshold
    gate = compare_with_baseline(now, "last:5", None, str(reports))
    failed = [c for c in gate["checks"] if c["outcome"] == "failed"]
    assert gate["regressed"] and [c["figure"] for c in failed] == ["rto"]
    assert "RTO 6.5 s regressed: baseline 1.2 s" in failed[0]["message"]


def test_tolerance_grammar_per_figure_relative_and_slack():
    tolerance = parse_tolerance("10%, rto=+2s, failed_checkouts=+0")
    assert tolerance["rto"] == (0.10, 2.0)
    assert tolerance["failed_checkouts"] == (0.10, 0.0)
    assert tolerance["error_seconds"] == (0.10, DEFAULT_TOLERANCE["error_seconds"][1])
    assert parse_tolerance(None) == DEFAULT_TOLERANCE
    for bad in ("fast", "rto=5", "+5%", "latency=10%", "rto=-1%"):
        with pytest.raises(ReportError, match="is not N% or"):
            parse_tolerance(bad)


@pytest.mark.parametrize("spec, message", [
    ("last:0", "whole number ≥ 1"), ("last:many", "whole number ≥ 1"),
    ("no/such/run", "baseline run 'no/such/run' not found")])
def test_bad_baselines_are_refused(spec, message):
    with pytest.raises(ReportError, match=message):
        parse_baseline(spec)


def test_report_gate_fails_with_a_junit_case_naming_the_figure(tmp_path):
    reports = tmp_path / "reports"
    base, slow = reports / "base", reports / "slow"
    shutil.copytree(FIXTURE, base)
    shutil.copytree(FIXTURE, slow)
    write_report(str(base))
    journal = json.loads((slow / "journal.json").read_text())
    journal["run"][0]["output"]["rto_seconds"] = 9.0  # RDS failover 4× slower
    (slow / "journal.json").write_text(json.dumps(journal))
    out = tmp_path / "out.txt"
    with open(out, "w") as fh:
        # still within a 30 s RTO threshold: only the gate notices
        code = report_command(str(slow), baseline=str(base), rto_threshold=30, out=fh)
    assert code == 1
    assert "REGRESSED in 1 figure(s)" in out.read_text()
    cases = ET.parse(slow / "junit.xml").getroot().iter("testcase")
    failed = {(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None}
    assert failed == {("baseline.rds-force-failover.shop-db", "RTO vs baseline")}
    assert json.loads((slow / "summary.json").read_text())["baseline"]["regressed"] is True
    assert "Against the baseline: REGRESSED" in (slow / "report.html").read_text()
    with open(out, "w") as fh:  # the unchanged run passes against itself
        assert report_command(str(base), baseline=str(base), out=fh) == 0


def test_no_earlier_passing_run_is_one_line_and_non_zero_but_the_report_is_written(
        tmp_path, capsys):
    run = tmp_path / "reports" / "only"
    shutil.copytree(FIXTURE, run)
    assert main(["report", str(run), "--baseline", "last:3"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no earlier passing run" in err[0] and "cannot decide" in err[0]
    assert (run / "report.html").is_file()
    cases = list(ET.parse(run / "junit.xml").getroot().iter("testcase"))
    assert any(c.get("name") == "baseline available" and c.find("failure") is not None
               for c in cases)


@pytest.mark.parametrize("argv, message", [
    (["--baseline", "last:0"], "whole number ≥ 1"),
    (["--baseline", "nowhere"], "not found"),
    (["--baseline", "last:2", "--tolerance", "lots"], "is not N% or"),
    (["--tolerance", "10%"], "--tolerance needs --baseline")])
def test_gate_options_are_checked_before_a_game_day_starts(tmp_path, capsys, argv, message):
    assert main(["run", "rds-force-failover", "--state-dir", str(tmp_path / "lab")] + argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "lab").exists()  # no lab was started
