"""An impairment measured by what shoppers felt: per journey step, impact against the baseline,
seconds down, time to recover after the end, shoppers affected, the run's RPO; thresholds in
the verdict, the first screen, JUnit and the charts; bad thresholds refused before a run.
Run directories are built second by second (tests/impairment_runs.py)."""
import json
import xml.etree.ElementTree as ET

import pytest

from chaosext.errors import GamedayError
from chaosext.thresholds import impairment_thresholds, step_limits
from gameday import cli, run
from gameday.report import summarize, write_report
from gameday.report.glance import glance
from gameday.report.impairment import P95_SLACK_MS, RECOVERY_STREAK, steady_limits
from gameday.report.junit import junit_cases

from impairment_runs import IMPAIRED_FROM, IMPAIRED_TO, SECONDS, fault_result, healthy, write_run

SLOW = 2322.0  # a checkout second during the slowdown: p95 2,310 ms above the 12 ms baseline
LABEL = "az-network-slowdown on us-east-1a"
THRESHOLDS = {"time_to_recover_seconds": 5, "orders_lost": 0,
              "steps": {"checkout": {"max_error_ratio": 0.05, "max_p95_ms": 3000,
                                     "max_p95_increase_ms": 1500}}}


def slowdown(step, t):
    """Checkout slow while impaired and for two seconds after; the other steps untouched."""
    if step == "checkout" and IMPAIRED_FROM <= t < IMPAIRED_TO:
        return (10, 0, [SLOW] * 10)
    if step == "checkout" and IMPAIRED_TO <= t < IMPAIRED_TO + 2:
        return (10, 0, [300.0] * 10)
    return healthy(step, t)


def isolation(step, t):
    """Checkout refused for the whole cut; add-to-cart half failing until the run ends."""
    if step == "checkout" and IMPAIRED_FROM <= t < IMPAIRED_TO:
        return (10, 10, [5000.0] * 10)
    if step == "add-to-cart" and t >= IMPAIRED_FROM:
        return (10, 5, [15.0] * 10)
    return healthy(step, t)


def figures(run_dir, **kwargs):
    summary = summarize(str(write_run(run_dir, **kwargs)))
    [fault] = summary["faults"]
    return summary, fault["impairment_impact"]


def test_a_slowdown_is_measured_per_step_against_the_baseline(tmp_path):
    summary, impact = figures(tmp_path / "run", shape=slowdown)
    checkout, browse = impact["steps"]["checkout"], impact["steps"]["browse"]
    assert checkout["baseline"]["p95_ms"] == 12.0 and checkout["during"]["p95_ms"] == SLOW
    assert checkout["during"]["p50_ms"] == SLOW and checkout["baseline"]["p50_ms"] == 10.0
    assert checkout["p95_increase_ms"] == 2310.0
    assert checkout["during"]["requests"] == 10 * (IMPAIRED_TO - IMPAIRED_FROM)
    assert checkout["baseline"]["error_ratio"] == 0 and checkout["during"]["error_ratio"] == 0
    assert checkout["unavailable_seconds"] == 0
    assert checkout["recovered"] and checkout["time_to_recover_seconds"] == 2.0
    assert browse["p95_increase_ms"] == 0 and browse["time_to_recover_seconds"] == 0.0
    assert impact["time_to_recover_seconds"] == 2.0 and impact["recovered"]
    assert impact["duration_seconds"] == IMPAIRED_TO - IMPAIRED_FROM
    assert impact["baseline_seconds"] == IMPAIRED_FROM
    assert impact["orders_lost"] == summary["rpo"]["orders_lost"] == 0
    assert impact["carts_lost"] == summary["rpo"]["carts_lost"] == 0
    assert summary["faults"][0]["impairment"]["delay_ms"] == 200
    assert summary["verdict"] == "passed"  # no thresholds configured: figures, no judgement


def test_an_isolation_shows_the_step_down_for_the_whole_cut_and_a_step_that_never_recovers(
        tmp_path):
    _, impact = figures(tmp_path / "run", shape=isolation)
    checkout, cart = impact["steps"]["checkout"], impact["steps"]["add-to-cart"]
    assert checkout["unavailable_seconds"] == IMPAIRED_TO - IMPAIRED_FROM
    assert checkout["during"]["error_ratio"] == 1.0 and checkout["time_to_recover_seconds"] == 0.0
    assert cart["unavailable_seconds"] == 0 and cart["during"]["error_ratio"] == 0.5
    assert not cart["recovered"] and cart["time_to_recover_seconds"] is None
    assert not impact["recovered"] and impact["time_to_recover_seconds"] is None


def test_shoppers_are_counted_exactly_with_ids_and_bounded_without(tmp_path):
    _, exact = figures(tmp_path / "a", shape=isolation)
    ids = {f"s{(t * 7 + i) % 13}" for t in range(IMPAIRED_FROM, IMPAIRED_TO) for i in range(10)}
    assert exact["steps"]["checkout"]["shoppers_affected"] == len(ids)
    assert exact["steps"]["checkout"]["failed_requests"] == 100
    _, bound = figures(tmp_path / "b", shape=isolation, shoppers=False)
    assert bound["steps"]["checkout"]["shoppers_affected"] is None
    assert bound["steps"]["checkout"]["shoppers_affected_at_most"] == 13  # the users, not 100


def test_recovery_needs_consecutive_healthy_seconds_and_skips_idle_ones(tmp_path):
    def flapping(step, t):
        if step != "checkout" or t < IMPAIRED_FROM:
            return healthy(step, t)
        if t < IMPAIRED_TO:
            return (10, 0, [SLOW] * 10)
        if t in (30, 32):  # one good second between bad ones is not a recovery
            return healthy(step, t)
        if t in (31, 33):
            return (10, 4, [20.0] * 10)
        if t == 35:  # a second without checkouts neither counts nor breaks the streak
            return None
        return healthy(step, t)
    _, impact = figures(tmp_path / "run", shape=flapping)
    assert RECOVERY_STREAK == 3
    assert impact["steps"]["checkout"]["time_to_recover_seconds"] == 4.0  # 34, 36, 37


def test_the_steady_state_tolerates_the_baselines_own_spread():
    base = [{"requests": 10, "failures": 0, "errors": {}, "p95": 10.0,
             "hist": [[10.0, 10]]} for _ in range(18)]
    base += [{"requests": 1, "failures": 1, "errors": {"503": 1}, "p95": 80.0,
              "hist": [[80.0, 1]]} for _ in range(2)]  # two quiet, slow seconds: 95th of 20
    limits = steady_limits(base)
    assert limits["p95_ms"] == 80.0 and limits["error_ratio"] == pytest.approx(2 / 182 + 0.05)
    assert steady_limits(base[:18])["p95_ms"] == 10.0 + P95_SLACK_MS
    assert steady_limits([]) is None


def test_an_impairment_that_never_ended_is_not_called_recovered(tmp_path):
    _, impact = figures(tmp_path / "run", shape=slowdown, result=fault_result(ended=False))
    assert impact["ended"] is False and impact["ended_at"] is None
    assert impact["duration_seconds"] == SECONDS - IMPAIRED_FROM
    assert all(not s["recovered"] for s in impact["steps"].values())


def test_thresholds_not_met_deviate_the_verdict_with_the_step_and_the_figure(tmp_path):
    summary, impact = figures(tmp_path / "run", shape=slowdown,
                              configuration={"impairment_thresholds": THRESHOLDS})
    assert summary["verdict"] == "deviated"
    assert summary["verdict_reasons"] == [
        f"{LABEL}: checkout p95 rose by 2,310 ms during the impairment, over the 1,500 ms allowed"]
    outcome = {(c["step"], c["figure"]): c["outcome"] for c in impact["checks"]}
    assert outcome[("checkout", "p95_ms")] == "passed"
    assert outcome[("checkout", "time_to_recover_seconds")] == "passed"
    assert outcome[("browse", "time_to_recover_seconds")] == "passed"  # top level: every step
    assert outcome[(None, "orders_lost")] == "passed"
    assert len(impact["checks"]) == 3 + 3 + 1  # 3 steps' recovery, checkout's 3 more, orders


def test_thresholds_met_pass_and_a_step_that_never_recovers_fails(tmp_path):
    met = {**THRESHOLDS, "steps": {"checkout": {"max_p95_increase_ms": 2500}}}
    summary, _ = figures(tmp_path / "a", shape=slowdown,
                         configuration={"impairment_thresholds": met})
    assert summary["verdict"] == "passed" and summary["verdict_reasons"] == []
    summary, _ = figures(tmp_path / "b", shape=isolation,
                         configuration={"impairment_thresholds": {
                             "steps": {"*": {"time_to_recover_seconds": 5},
                                       "checkout": {"max_unavailable_seconds": 2}}}})
    assert summary["verdict"] == "deviated"
    assert summary["verdict_reasons"] == [
        f"{LABEL}: add-to-cart did not recover within the run (the 5 s allowed)",
        f"{LABEL}: checkout was unavailable for 10 s of the impairment, over the 2 s allowed"]


def test_lost_orders_and_unmeasured_steps_fail_their_thresholds(tmp_path):
    config = {"impairment_thresholds": {"orders_lost": 0,
                                        "steps": {"search": {"max_p95_ms": 100}}}}
    summary, _ = figures(tmp_path / "run", shape=slowdown, configuration=config, lost=2)
    assert f"{LABEL}: 2 acknowledged order(s) lost, over the 0 allowed" in summary["verdict_reasons"]
    assert (f"{LABEL}: search no requests during the impairment (the 100 ms allowed)"
            in summary["verdict_reasons"])


def test_the_first_screen_junit_and_verdict_table_show_the_figures(tmp_path, capsys):
    run_dir = write_run(tmp_path / "run", shape=slowdown,
                        configuration={"impairment_thresholds": THRESHOLDS})
    paths = write_report(str(run_dir))
    blocks = glance(paths["summary"])
    [row] = [b for b in blocks if b[0] == "table" and b[1][0] == "fault"][0][2]
    assert row[1] == "impaired 10 s; shoppers fine again 2 s after"
    [table] = [b for b in blocks if b[0] == "table" and b[1][0] == "journey step"]
    checkout = next(r for r in table[2] if r[0] == "checkout")
    assert checkout[2] == "12 ms → 2,322 ms (+2,310 ms)" and checkout[4] == "2 s"
    assert checkout[6].startswith("MISSED: checkout p95 rose by 2,310 ms")
    markdown = (run_dir / "report.md").read_text()
    assert "### Impairment: " + LABEL in markdown and "12 ms → 2,322 ms (+2,310 ms)" in markdown
    assert "200 ms delay in us-east-1a (both)" in markdown
    assert "Writable again: database 0 s after the end, cache 0 s after the end." in markdown
    assert "12 ms → 2,322 ms" in (run_dir / "report.html").read_text()
    cases = {(c[0], c[1]): c[2] for c in junit_cases(paths["summary"])}
    assert cases[("impairment.az-network-slowdown.us-east-1a.checkout",
                  "p95_increase_ms <= 1500 ms")] == "failed"
    assert cases[("impairment.az-network-slowdown.us-east-1a", "orders_lost <= 0")] == "passed"
    suite = ET.parse(run_dir / "junit.xml").getroot()
    assert sum(c.get("classname").startswith("impairment.") for c in suite.iter("testcase")) == 7
    stored = json.loads((run_dir / "summary.json").read_text())
    assert stored["faults"][0]["impairment_impact"]["steps"]["checkout"]["p95_increase_ms"] == 2310
    assert run.finish(run_dir) == 1
    assert "checkout: errors 0.0 % -> 0.0 %, p95 12 ms -> 2,322 ms, down 0 s, recovered after 2 s" \
        in capsys.readouterr().out


def test_the_charts_shade_the_impairment_window(tmp_path):
    from gameday.report.charts import IMPAIRMENT_COLOUR, render_charts
    from gameday.report.fault_chart import fault_chart
    from gameday.report.sources import read_run
    import matplotlib.colors as mcolors
    run_dir = write_run(tmp_path / "run", shape=slowdown)
    files = read_run(str(run_dir))
    summary = summarize(str(run_dir))
    assert [c["name"] for c in render_charts(summary, files.cells)][-1] == "fault-1"
    from gameday.report.charts import _series
    seconds = sorted({t for t, _ in files.cells})
    steps = sorted({s for _, s in files.cells})
    fig = fault_chart(1, summary["faults"][0], _series(files.cells, steps, seconds[0], seconds[-1]),
                      steps, seconds[0], seconds[-1])
    shaded = [p for ax in fig.axes for p in ax.patches
              if mcolors.to_hex(p.get_facecolor()) == IMPAIRMENT_COLOUR]
    assert len(shaded) == 2  # both panels
    assert (shaded[0].get_x(), shaded[0].get_width()) == (0, IMPAIRED_TO - IMPAIRED_FROM)
    assert "shoppers fine again 2 s after" in fig._suptitle.get_text()


def test_a_run_without_impairments_is_unchanged(run_dir):
    summary = summarize(str(run_dir))
    assert summary["faults"] and all(f["kind"] != "impairment" for f in summary["faults"])
    assert not any("impairment" in key for f in summary["faults"] for key in f)
    assert not any(c[0].startswith("impairment.") for c in junit_cases(summary))
    assert not any(b[0] == "h3" and "Impairment" in b[1] for b in glance(summary))
    assert not any("impairment" in (b[1][1] if b[0] == "table" else "") for b in glance(summary))


@pytest.mark.parametrize("value, says", [
    ([5], "impairment_thresholds must be an object"),
    ("{not json", "impairment_thresholds is not valid JSON"),
    ({"time_to_recovery": 5}, "unknown key(s) time_to_recovery"),
    ({"steps": {"checkout": {"max_p95": 100}}}, "steps.checkout: unknown key(s) max_p95"),
    ({"steps": {"checkout": {"max_error_ratio": 5}}}, "steps.checkout.max_error_ratio must be "
                                                      "between 0 and 1"),
    ({"steps": {"checkout": {"max_p95_ms": "fast"}}}, "steps.checkout.max_p95_ms must be a number"),
    ({"time_to_recover_seconds": -1}, "time_to_recover_seconds must be 0 or more"),
    ({"steps": ["checkout"]}, "steps must be an object by journey step"),
    ({"steps": {"checkout": 100}}, "steps.checkout must be an object of limits"),
    ({"orders_lost": True}, "orders_lost must be a number"),
])
def test_bad_thresholds_are_one_sentence(value, says):
    with pytest.raises(GamedayError) as caught:
        impairment_thresholds(value)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_thresholds_parse_from_json_text_and_apply_per_step():
    parsed = impairment_thresholds(json.dumps(THRESHOLDS))
    assert step_limits(parsed, "checkout") == {"max_error_ratio": 0.05, "max_p95_ms": 3000.0,
                                               "max_p95_increase_ms": 1500.0,
                                               "time_to_recover_seconds": 5.0}
    assert step_limits(parsed, "browse") == {"time_to_recover_seconds": 5.0}
    assert impairment_thresholds(None) == {"time_to_recover_seconds": None, "orders_lost": None,
                                           "steps": {}}


def test_gameday_run_refuses_bad_thresholds_before_anything_starts(tmp_path, capsys,
                                                                    monkeypatch):
    spec = json.loads(run.resolve("rds-force-failover").read_text())
    spec.setdefault("configuration", {})["impairment_thresholds"] = {
        "steps": {"checkout": {"max_p95_increase": 1500}}}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec))
    reports = tmp_path / "reports"
    monkeypatch.setenv("GAMEDAY_REPORTS_DIR", str(reports))
    assert cli.main(["run", str(path), "--dry-run"]) == 1
    out, err = capsys.readouterr()
    assert err.strip().splitlines() == [
        "gameday: error: bad.json: impairment_thresholds: steps.checkout: unknown key(s) "
        "max_p95_increase; use max_error_ratio, max_p95_ms, max_p95_increase_ms, "
        "max_unavailable_seconds, time_to_recover_seconds"]
    assert "Traceback" not in out + err and not reports.exists()


def test_one_checkout_tens_of_ms_slower_than_a_small_baseline_is_noise_a_stall_is_not(tmp_path):
    """A lab second has a checkout or two, so its p95 is its slowest one: a 12 ms baseline's
    checkout taking 45 ms (the jitter of a busy machine) still counts as recovered; one still
    held by a 200 ms retransmission stall does not."""
    def after_end(extra_ms):
        def shape(step, t):
            if step == "checkout" and IMPAIRED_FROM <= t < IMPAIRED_TO:
                return (10, 0, [SLOW] * 10)
            if step == "checkout" and t == IMPAIRED_TO + 1:
                return (2, 0, [10.0, 12.0 + extra_ms])
            return healthy(step, t)
        return shape
    _, jitter = figures(tmp_path / "jitter", shape=after_end(33.0))
    assert jitter["steps"]["checkout"]["time_to_recover_seconds"] == 0.0
    _, stall = figures(tmp_path / "stall", shape=after_end(200.0))
    assert stall["steps"]["checkout"]["time_to_recover_seconds"] == 2.0  # the streak after it
