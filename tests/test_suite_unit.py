"""`gameday suite` without a lab: validation, ordering, score, gate, report, baseline, history.

The experiments' runs are replaced by a recorder that writes a real run summary (summarized
from the recorded fixture run), so everything around them (order, restore, interruption, the
report, the score recomputed from the files) is the shipped code.
"""
import copy
import json
import shutil
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from gameday import cli
from gameday.report.figures import find_runs
from gameday.report.summary import summarize
from gameday.suite import runner, score
from gameday.suite.spec import load_suite
from gameday.suite.trend import find_suites, suite_baseline, trend_lines

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "gameday-run"


@pytest.fixture(scope="module")
def run_summary(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("fixture") / "run"
    shutil.copytree(FIXTURE, run_dir)
    summary = summarize(str(run_dir))
    summary["rpo"]["carts_lost"] = 0  # a clean run: the recorded one lost two carts
    return summary


def write_suite(tmp_path, entries, **extra) -> Path:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"title": "t", "experiments": entries, **extra}))
    return path


class Recorder:
    """Stands in for `gameday run`: records the order, writes the run's summary.json."""
    runs = 0  # runs recorded so far in this session: each starts a minute after the last

    def __init__(self, summary, verdicts=None, signal_after=None):
        self.calls, self.summary, self.verdicts = [], summary, verdicts or {}
        self.signal_after = signal_after

    def __call__(self, entry, request, experiment_file, run_id, signals, dry_run=False):
        self.calls.append(entry.name)
        run_dir = runner_reports(request) / run_id
        run_dir.mkdir(parents=True)
        summary = copy.deepcopy(self.summary)
        summary["verdict"] = self.verdicts.get(entry.name, "passed")
        summary["run_id"] = entry.name  # as a real run: its directory's name
        summary["start"] = f"2026-12-06T10:{len(self.calls) + Recorder.runs:02d}:00Z"
        Recorder.runs += 1
        (run_dir / "summary.json").write_text(json.dumps(summary))
        if entry.name == self.signal_after:
            signals.received.append({"signal": "SIGTERM", "at": "x", "phase": "experiment"})
            summary["verdict"] = "interrupted"
            (run_dir / "summary.json").write_text(json.dumps(summary))
            return 143
        return 0 if summary["verdict"] == "passed" else 1


def runner_reports(request) -> Path:
    from gameday.run import reports_dir
    return reports_dir()


@pytest.fixture
def reports(tmp_path, monkeypatch):
    out = tmp_path / "reports"
    out.mkdir()
    monkeypatch.setenv("GAMEDAY_REPORTS_DIR", str(out))
    monkeypatch.setattr(runner, "restore", lambda run_dir, target, state_dir, yes=True:
                        {"ok": True, "failback": "none", "converged": None, "problems": [],
                         "seconds": 0.0})
    return out


def run_cli(argv, capsys):
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ------------------------------------------------------------------ validation: bad input
@pytest.mark.parametrize("entries,extra,message", [
    ([{"experiment": "no-such-experiment"}], {}, "unknown experiment 'no-such-experiment'"),
    (["rds-force-failover", "rds-force-failover"], {}, "the name 'rds-force-failover' is used twice"),
    ([{"experiment": "rds-force-failover", "weight": 0}], {}, "weight must be > 0 (got 0)"),
    ([{"experiment": "rds-force-failover", "weight": -2}], {}, "weight must be > 0 (got -2)"),
    ([{"experiment": "db-primary-crash"}], {"targets": ["aws"]}, "runs only on the lab"),
    ([{"experiment": "rds-force-failover", "wieght": 2}], {}, "unknown key 'wieght'"),
    ([{"experiment": "rds-force-failover", "impact_budget": {"error_seconds": -1}}], {},
     "impact_budget error_seconds must be a number"),
    ([{"experiment": "rds-force-failover", "shop_settings": {"nope": 1}}], {},
     "unknown shop setting 'nope'"),
])
def test_suite_refuses_bad_input_with_one_line_and_runs_nothing(tmp_path, reports, monkeypatch,
                                                               capsys, entries, extra, message):
    recorder = Recorder({})
    monkeypatch.setattr(runner, "run_experiment", recorder)
    target = "aws" if extra.get("targets") == ["aws"] else "lab"
    code, out, err = run_cli(["suite", str(write_suite(tmp_path, entries, **extra)),
                              "--target", target], capsys)
    assert code != 0
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert recorder.calls == [] and list(reports.iterdir()) == []


def test_suite_refuses_a_malformed_file(tmp_path, reports, capsys):
    bad = tmp_path / "broken.json"
    bad.write_text('{"experiments": [')
    code, _, err = run_cli(["suite", str(bad)], capsys)
    assert code == 1 and "broken.json is not valid JSON" in err
    assert len(err.strip().splitlines()) == 1 and list(reports.iterdir()) == []


def test_suite_refuses_an_unknown_suite_and_a_bad_baseline(tmp_path, reports, capsys):
    code, _, err = run_cli(["suite", "weekly"], capsys)
    assert code == 1 and "unknown suite 'weekly' (shipped: nightly, release" in err
    code, _, err = run_cli(["suite", "release", "--baseline", "last:0"], capsys)
    assert code == 1 and "give last:N" in err and list(reports.iterdir()) == []


def test_shipped_suites_are_valid_and_nightly_skips_lab_only_on_aws():
    release = load_suite("release", "lab")
    assert [e.name for e in release.entries][:2] == ["rds-force-failover", "elasticache-test-failover"]
    assert all(e.skip_reason is None for e in release.entries)
    nightly_lab, nightly_aws = load_suite("nightly", "lab"), load_suite("nightly", "aws")
    from gameday.run import catalog
    # a suite runs every experiment on one lab, whose DB is an instance: the db-cluster ones need their own
    assert {e.path.stem for e in nightly_lab.entries} == {c["name"] for c in catalog() if "db-cluster" not in c["tags"]}
    skipped = {e.name: e.skip_reason for e in nightly_aws.entries if e.skip_reason}
    assert list(skipped) == ["db-primary-crash", "az-network-slowdown", "cross-az-packet-loss",
                             "cache-latency", "az-network-isolation"]
    assert "runs only on the lab" in skipped["db-primary-crash"]
    # the gray failures run on AWS through FIS, each right after its lab-only sibling
    ran = [e.name for e in nightly_aws.entries if not e.skip_reason]
    for sibling in ("az-network-slowdown", "cross-az-packet-loss", "az-network-isolation"):
        assert f"{sibling}-fis" in ran
        names = [e.name for e in nightly_aws.entries]
        assert names.index(f"{sibling}-fis") == names.index(sibling) + 1


# ------------------------------------------------------------------ score
def test_headroom_is_100_at_zero_50_at_the_limit_and_0_beyond():
    assert score.headroom(0, 120) == 100.0
    assert score.headroom(60, 120) == 75.0
    assert score.headroom(120, 120) == 50.0
    assert score.headroom(120.1, 120) == 0.0
    assert score.headroom(None, 120) is None and score.headroom(3, None) is None
    assert score.headroom(0, 0) == 100.0 and score.headroom(1, 0) == 0.0


def test_experiment_score_is_its_input_closest_to_its_limit(run_summary):
    value, binding, comps = score.experiment_score(run_summary, {"error_seconds": 8})
    # RTOs 2.35/3.0 and 2.6/3.0; error seconds 1/8 and 4/8: the cache RTO binds
    assert binding["label"] == "elasticache-primary-deletion on shop-cache: RTO"
    assert value == pytest.approx(100 - 50 * 2.6 / 3.0, abs=0.01)
    inputs = {c["input"] for c in comps}
    assert {"steady_state", "rto", "error_seconds", "orders_lost", "carts_lost"} <= inputs


def test_any_loss_or_a_failed_verdict_scores_zero(run_summary):
    lost = copy.deepcopy(run_summary)
    lost["rpo"]["carts_lost"] = 1
    assert score.experiment_score(lost)[0] == 0.0
    assert score.experiment_score(lost)[1]["input"] == "carts_lost"
    failed = copy.deepcopy(run_summary)
    failed["verdict"] = "deviated"
    assert score.experiment_score(failed)[0] == 0.0
    assert score.experiment_score(None)[0] == 0.0


def test_per_service_recoveries_are_scored_each_against_its_own_threshold(run_summary):
    both = copy.deepcopy(run_summary)
    fault = both["faults"][0]
    fault["recovery"] = {"db": {"service": "db", "rto_seconds": 90.0, "rto_threshold_seconds": 180},
                         "cache": {"service": "cache", "rto_seconds": 30.0,
                                   "rto_threshold_seconds": 40}}
    comps = [c for c in score.components(both) if c["input"] == "rto"]
    assert [(c["label"].split(": ")[-1], c["score"]) for c in comps[:2]] == [
        ("RTO (db)", 75.0), ("RTO (cache)", 62.5)]
    fault["recovery"] = list(fault["recovery"].values())  # the list form reads the same
    assert [c["score"] for c in score.components(both) if c["input"] == "rto"][:2] == [75.0, 62.5]


def test_time_to_recover_of_an_impairment_is_judged_against_its_budget(run_summary):
    impaired = copy.deepcopy(run_summary)
    impaired["faults"][0].update(kind="impairment", recovery={
        "db": {"service": "db", "rto_seconds": None, "time_to_recover_seconds": 12.0}})
    comps = score.components(impaired, {"time_to_recover_seconds": 10})
    ttr = [c for c in comps if c["input"] == "time_to_recover_seconds"]
    assert ttr[0]["value"] == 12.0 and ttr[0]["score"] == 0.0


def test_gremlin_and_litmus_style_scores_follow_their_published_rules(run_summary):
    rows = [{"name": "a", "weight": 3, "category": "redundancy", "status": "ran", "verdict": "passed",
             "summary": run_summary},
            {"name": "b", "weight": 1, "category": "redundancy", "status": "ran",
             "verdict": "failed", "summary": {**run_summary, "verdict": "failed"}},
            {"name": "c", "weight": 1, "category": "dependencies", "status": "not_run",
             "verdict": None},
            {"name": "d", "weight": 5, "category": "other", "status": "skipped", "verdict": None}]
    scores = score.suite_scores(rows)
    assert scores["gremlin_style"] == pytest.approx(((100 + 50) / 2 + 0) / 2, abs=0.1)
    # every probe of the recorded run met its tolerance: 100 % for a and b, 0 for c
    assert scores["litmus_style"] == pytest.approx((3 * 100 + 1 * 100 + 0) / 5, abs=0.1)
    assert scores["resilience"] == pytest.approx(3 * rows[0]["score"] / 5, abs=0.1)


# ------------------------------------------------------------------ ordering, gate, report
def test_suite_runs_in_order_and_recomputes_from_the_summaries(tmp_path, reports, monkeypatch,
                                                               capsys, run_summary):
    recorder = Recorder(run_summary)
    monkeypatch.setattr(runner, "run_experiment", recorder)
    path = write_suite(tmp_path, [{"experiment": "elasticache-test-failover", "weight": 2},
                                  {"experiment": "rds-force-failover", "weight": 1,
                                   "impact_budget": {"error_seconds": 10}},
                                  {"experiment": "db-primary-crash", "weight": 4}])
    code, out, _ = run_cli(["suite", str(path), "--target", "aws", "--suite-id", "s1"], capsys)
    assert recorder.calls == ["elasticache-test-failover", "rds-force-failover"]
    suite_dir = reports / "s1"
    summary = json.loads((suite_dir / "summary.json").read_text())
    assert code == 0 and summary["verdict"] == "passed"
    assert [e["status"] for e in summary["experiments"]] == ["ran", "ran", "skipped"]
    rows = [{**e, "summary": json.loads((suite_dir / e["run_dir"] / "summary.json").read_text())
             if e["run_dir"] else None} for e in summary["experiments"]]
    assert score.suite_scores(rows)["resilience"] == summary["score"]["resilience"]
    assert "resilience score" in out and "worst figure: " in out
    assert "steady state before each experiment: held 2/2; restored between experiments: 1/1" in out
    cases = ET.parse(suite_dir / "junit.xml").getroot().findall("testcase")
    assert [c.get("name") for c in cases] == [e["name"] for e in summary["experiments"]]
    assert cases[2].find("skipped") is not None
    assert "[report](rds-force-failover/report.html)" in (suite_dir / "report.md").read_text()


def test_a_failure_stops_the_rest_unless_continue_on_failure(tmp_path, reports, monkeypatch,
                                                            capsys, run_summary):
    entries = ["rds-force-failover", "elasticache-test-failover", "az-power-interruption"]
    recorder = Recorder(run_summary, verdicts={"rds-force-failover": "deviated"})
    monkeypatch.setattr(runner, "run_experiment", recorder)
    code, _, _ = run_cli(["suite", str(write_suite(tmp_path, entries)), "--target", "aws",
                          "--suite-id", "stop"], capsys)
    summary = json.loads((reports / "stop" / "summary.json").read_text())
    assert code == 1 and recorder.calls == ["rds-force-failover"]
    assert [e["status"] for e in summary["experiments"]] == ["ran", "not_run", "not_run"]
    assert "--continue-on-failure" in summary["experiments"][1]["reason"]
    recorder.calls.clear()
    code, _, _ = run_cli(["suite", str(write_suite(tmp_path, entries)), "--target", "aws",
                          "--suite-id", "go-on", "--continue-on-failure"], capsys)
    assert code == 1 and recorder.calls == entries


def test_the_score_gate_fails_a_suite_whose_experiments_all_passed(tmp_path, reports, monkeypatch,
                                                                  capsys, run_summary):
    monkeypatch.setattr(runner, "run_experiment", Recorder(run_summary))
    path = write_suite(tmp_path, ["rds-force-failover"], gate={"min_score": 99})
    code, out, _ = run_cli(["suite", str(path), "--target", "aws", "--suite-id", "g"], capsys)
    summary = json.loads((reports / "g" / "summary.json").read_text())
    assert code == 1 and summary["score"]["gate"]["held"] is False
    assert "the score is below its gate" in summary["verdict_reasons"] and "NOT held" in out


def test_a_signal_skips_the_rest_and_the_report_marks_it(tmp_path, reports, monkeypatch, capsys,
                                                        run_summary):
    recorder = Recorder(run_summary, signal_after="rds-force-failover")
    monkeypatch.setattr(runner, "run_experiment", recorder)
    path = write_suite(tmp_path, ["rds-force-failover", "elasticache-test-failover"])
    code, _, _ = run_cli(["suite", str(path), "--target", "aws", "--suite-id", "sig"], capsys)
    summary = json.loads((reports / "sig" / "summary.json").read_text())
    assert code == 143 and recorder.calls == ["rds-force-failover"]
    assert summary["verdict"] == "interrupted"
    assert summary["experiments"][1]["status"] == "not_run"
    assert "stopped during rds-force-failover" in summary["experiments"][1]["reason"]


# ------------------------------------------------------------------ baseline and history
def test_baseline_and_history_read_earlier_suites(tmp_path, reports, monkeypatch, capsys,
                                                  run_summary):
    monkeypatch.setattr(runner, "run_experiment", Recorder(run_summary))
    path = write_suite(tmp_path, ["rds-force-failover"])
    assert run_cli(["suite", str(path), "--target", "aws", "--suite-id", "a"], capsys)[0] == 0
    code, out, _ = run_cli(["suite", str(path), "--target", "aws", "--suite-id", "b",
                            "--baseline", "last:3"], capsys)
    summary = json.loads((reports / "b" / "summary.json").read_text())
    assert summary["baseline"]["suites"] == ["a"] and summary["baseline"]["regressed"] is False
    assert summary["baseline"]["experiments"] == [
        {"experiment": "rds-force-failover", "regressed": False, "messages": []}]
    assert code == 0 and "no regression" in out
    worse = copy.deepcopy(summary)
    worse.update(suite_id="c", start="9999")
    worse["score"]["resilience"] = summary["score"]["resilience"] - 10
    gate = suite_baseline(worse, {}, "last:3", str(reports))
    assert gate["regressed"] is True and "regressed" in gate["messages"][0]
    assert [s["suite_id"] for s in find_suites(str(reports))] == ["a", "b"]
    assert {r.path for r in find_runs(str(reports))} == {"a/rds-force-failover",
                                                         "b/rds-force-failover"}
    line = trend_lines(str(reports))[0]
    assert line.startswith("suite mine (aws, ") and "→" in line
    code, out, _ = run_cli(["history", "--reports", str(reports)], capsys)
    assert code == 0 and "suite mine (aws" in out
    assert "<h2>Suite scores</h2>" in (reports / "index.html").read_text()


# ------------------------------------------------------------------ dry run and the lab's timing
def test_dry_run_runs_every_preflight_and_prints_one_plan(tmp_path, reports, monkeypatch, capsys):
    seen = []

    def preflight(entry, request, experiment_file, run_id, signals, dry_run=False):
        seen.append((entry.name, dry_run))
        return 2 if entry.name == "elasticache-test-failover" else 0

    monkeypatch.setattr(runner, "run_experiment", preflight)
    code, out, _ = run_cli(["suite", "nightly", "--target", "aws", "--dry-run"], capsys)
    assert code == 2 and all(dry for _, dry in seen) and len(seen) == 9  # 6 failovers + 3 FIS gray failures
    plan = out[out.index("suite nightly on the aws"):]
    assert "elasticache-test-failover" in plan and "NOT READY" in plan
    assert "db-primary-crash" in plan and "SKIP" in plan and "runs only on the lab" in plan
    assert list(reports.iterdir()) == []


def test_a_running_lab_with_another_timing_is_refused_not_restarted(tmp_path, reports, monkeypatch,
                                                                   capsys):
    class Running:
        timing = "aws"

    monkeypatch.setattr(runner.manage, "is_up", lambda state_dir: True)
    monkeypatch.setattr(runner.LabConfig, "load", lambda state_dir: Running())
    monkeypatch.setattr(runner.manage, "down", lambda state_dir: pytest.fail("stopped the lab"))
    recorder = Recorder({})
    monkeypatch.setattr(runner, "run_experiment", recorder)
    code, _, err = run_cli(["suite", "release", "--timing", "fast", "--state-dir",
                            str(tmp_path / "lab")], capsys)
    assert code == 1 and "already up with timing 'aws'" in err and recorder.calls == []
    assert list(reports.iterdir()) == []


def test_a_lab_that_cannot_be_restored_stops_the_suite_with_its_report(tmp_path, reports,
                                                                     monkeypatch, capsys,
                                                                     run_summary):
    from woolab.errors import LabError

    def broken(run_dir, target, state_dir, yes=True):
        raise LabError("the lab controller is dead")

    monkeypatch.setattr(runner, "restore", broken)
    recorder = Recorder(run_summary)
    monkeypatch.setattr(runner, "run_experiment", recorder)
    path = write_suite(tmp_path, ["rds-force-failover", "elasticache-test-failover"])
    code, _, _ = run_cli(["suite", str(path), "--target", "aws", "--suite-id", "dead"], capsys)
    summary = json.loads((reports / "dead" / "summary.json").read_text())
    assert code == 1 and recorder.calls == ["rds-force-failover"]
    assert summary["experiments"][1]["status"] == "not_run"
    assert "could not be restored after rds-force-failover: the lab controller is dead" in \
        summary["experiments"][1]["reason"]


def test_a_lab_that_does_not_start_gives_a_report_of_nothing_run(tmp_path, reports, monkeypatch,
                                                                capsys):
    from woolab.errors import LabStartError

    def refuse(config, timeout=60.0):
        raise LabStartError("port(s) in use: 127.0.0.1:33302")

    monkeypatch.setattr(runner.manage, "is_up", lambda state_dir: False)
    monkeypatch.setattr(runner.manage, "up", refuse)
    recorder = Recorder({})
    monkeypatch.setattr(runner, "run_experiment", recorder)
    path = write_suite(tmp_path, ["rds-force-failover"])
    code, out, _ = run_cli(["suite", str(path), "--suite-id", "nolab", "--state-dir",
                            str(tmp_path / "lab")], capsys)
    summary = json.loads((reports / "nolab" / "summary.json").read_text())
    assert code == 1 and recorder.calls == [] and summary["verdict"] == "failed"
    assert summary["experiments"][0]["reason"] == \
        "the lab did not start: port(s) in use: 127.0.0.1:33302"


def test_an_fis_fault_is_compared_by_name_not_by_its_per_run_template_id(run_summary):
    from gameday.report.figures import from_summary
    runs = []
    for template in ("EXTaaaa", "EXTbbbb"):
        summary = copy.deepcopy(run_summary)
        summary["faults"][0].update(fault="fis-az-power-interruption", target=template,
                                    fis={"template_id": template, "state": "completed"})
        runs.append(from_summary(summary))
    assert runs[0].faults[0].key == runs[1].faults[0].key == \
        "fis-az-power-interruption on its FIS template"
    assert runs[0].faults[1].key == "elasticache-primary-deletion on shop-cache"
