"""summary.json figures come from the journal and the timeline, window by window."""
import json
import math
from datetime import datetime, timezone

import pytest

from gameday.report import ReportError, summarize



def edit_journal(run_dir, change):
    path = run_dir / "journal.json"
    journal = json.loads(path.read_text())
    change(journal)
    path.write_text(json.dumps(journal))


def epoch(stamp):
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).replace(
        tzinfo=timezone.utc).timestamp()


def timeline_lines(run_dir):
    return [json.loads(x) for x in (run_dir / "timeline.jsonl").read_text().splitlines() if x]


def expected_windows(run_dir):
    """Recompute per-step window sums straight from the files, independently of the report."""
    journal = json.loads((run_dir / "journal.json").read_text())
    spans = sorted((epoch(r["output"]["injected_at"]), epoch(r["output"]["data_plane_writable_at"]))
                   for r in journal["run"])
    sums = {}
    for line in timeline_lines(run_dir):
        t = line["t"]
        if any(t + 1 > a and t < b for a, b in spans):
            window = "fault"
        elif t + 1 <= spans[0][0]:
            window = "baseline"
        else:
            window = "recovery"
        cell = sums.setdefault((line["step"], window), {"requests": 0, "failures": 0, "hist": []})
        cell["requests"] += line["requests"]
        cell["failures"] += line["failures"]
        cell["hist"] += line["hist"]
    return sums


def nearest_rank_p95(hist):
    values = sorted(v for v, n in hist for _ in range(n))
    return values[math.ceil(0.95 * len(values)) - 1]


def test_load_figures_per_step_and_window_match_the_timeline(run_dir):
    summary = summarize(str(run_dir))
    expected = expected_windows(run_dir)
    assert summary["load"]["steps"] == ["add_to_cart", "browse", "checkout", "product", "view_cart"]
    for (step, window), sums in expected.items():
        got = summary["load"]["per_step"][step][window]
        assert got["requests"] == sums["requests"], (step, window)
        assert got["failures"] == sums["failures"], (step, window)
        assert got["p95_ms"] == nearest_rank_p95(sums["hist"]), (step, window)
    total = sum(line["requests"] for line in timeline_lines(run_dir))
    assert sum(summary["load"]["overall"][w]["requests"] for w in
               ("baseline", "fault", "recovery")) == total
    # the fixture's outages hit checkout (database) and the cart steps (cache) only
    assert summary["load"]["per_step"]["checkout"]["fault"]["failures"] > 0
    assert summary["load"]["per_step"]["browse"]["fault"]["failures"] == 0
    assert summary["load"]["overall"]["baseline"]["failures"] == 0


def test_faults_carry_the_journal_timestamps_and_derived_lag(run_dir):
    summary = summarize(str(run_dir))
    journal = json.loads((run_dir / "journal.json").read_text())
    assert [f["fault"] for f in summary["faults"]] == ["rds-force-failover",
                                                       "elasticache-primary-deletion"]
    for fault, entry in zip(summary["faults"], journal["run"]):
        output = entry["output"]
        for key in ("target", "method", "injected_at", "control_plane_completed_at",
                    "data_plane_writable_at", "rto_seconds", "control_plane_seconds"):
            assert fault[key] == output[key], key
        lag = epoch(output["data_plane_writable_at"]) - epoch(output["control_plane_completed_at"])
        assert fault["control_vs_data_plane_lag_seconds"] == pytest.approx(lag, abs=1e-3)
    cache = summary["faults"][1]
    assert cache["requested_method"] == "DeleteCacheCluster"
    assert cache["method"] == "TestFailover"
    assert "InvalidCacheClusterState" in cache["method_reason"]
    assert [e["event_id"] for e in summary["faults"][0]["events"]] == ["RDS-EVENT-0013",
                                                                       "RDS-EVENT-0049"]


def test_summary_has_the_documented_stable_keys(run_dir):
    summary = summarize(str(run_dir))
    assert set(summary) == {
        "schema", "run_id", "experiment", "target", "start", "end", "duration_seconds", "status",
        "deviated", "verdict", "verdict_reasons", "hypothesis", "faults", "load", "rpo",
        "safeguards", "rollbacks", "pauses", "events", "interruption", "notes", "replica_lag"}
    assert summary["target"] == {"kind": "lab", "region": "us-east-1", "account": None,
                                 "ids": ["shop-db", "shop-cache"], "endpoints": {},
                                 "not_measured": [], "timing_profile": None,
                                 "shop_settings": {}, "waivers": []}
    assert set(summary["faults"][0]) >= {
        "fault", "target", "method", "injected_at", "control_plane_completed_at",
        "data_plane_writable_at", "rto_seconds", "control_plane_seconds",
        "control_vs_data_plane_lag_seconds", "rto_threshold_seconds", "rto_within_threshold",
        "load"}
    json.dumps(summary)  # JSON-ready


def test_passed_run_reports_hypothesis_rpo_and_rollbacks(run_dir):
    summary = summarize(str(run_dir))
    orders = len((run_dir / "orders.jsonl").read_text().splitlines())
    assert summary["verdict"] == "passed" and summary["verdict_reasons"] == []
    assert summary["hypothesis"]["before"]["met"] is True
    assert [p["name"] for p in summary["hypothesis"]["after"]["probes"]][-1] == \
        "no-acknowledged-order-lost"
    assert summary["rpo"]["orders_acknowledged"] == orders
    assert summary["rpo"]["orders_checked"] == orders
    assert summary["rpo"]["orders_lost"] == 0
    carts = sum(line["carts_lost"] for line in timeline_lines(run_dir))
    assert summary["rpo"]["carts_lost"] == carts
    assert summary["rollbacks"][0]["method"] == "IncreaseReplicaCount"
    assert summary["safeguards"] == {"declared": ["checkout-error-budget"], "tripped": False,
                                     "tripped_by": None, "at": None, "message": None}
    times = [e["at"] for e in summary["events"]]
    assert times == sorted(times)
    assert any(e["kind"] == "data-plane-writable" for e in summary["events"])


def test_failed_after_probe_makes_the_run_deviated(run_dir):
    def deviate(journal):
        journal["deviated"] = True
        probe = journal["steady_states"]["after"]["probes"][1]
        probe["tolerance_met"], probe["output"] = False, 0.31
        journal["steady_states"]["after"]["steady_state_met"] = False
    edit_journal(run_dir, deviate)
    summary = summarize(str(run_dir))
    assert summary["verdict"] == "deviated"
    assert summary["verdict_reasons"] == [
        "hypothesis after the method: probe checkout-error-ratio out of tolerance (got 0.31)"]


def test_lost_orders_and_slow_recovery_deviate(run_dir):
    def lose(journal):
        probe = journal["steady_states"]["after"]["probes"][-1]
        probe["output"].update(found=probe["output"]["checked"] - 2, missing_count=2,
                               missing=[1003, 1007])
    edit_journal(run_dir, lose)
    summary = summarize(str(run_dir), rto_threshold={"rds": 1.0})
    assert summary["rpo"]["orders_lost"] == 2 and summary["rpo"]["orders_missing"] == [1003, 1007]
    assert summary["faults"][0]["rto_within_threshold"] is False
    assert summary["faults"][1]["rto_threshold_seconds"] is None
    assert summary["verdict"] == "deviated"
    assert "2 acknowledged order(s) lost" in summary["verdict_reasons"]


def test_rto_threshold_comes_from_the_experiment_configuration(run_dir):
    faults = summarize(str(run_dir))["faults"]
    assert [(f["rto_threshold_seconds"], f["rto_within_threshold"]) for f in faults] == \
        [(3.0, True), (3.0, True)]


def test_interrupted_run_is_reported_as_interrupted(run_dir):
    def interrupt(journal):
        journal["status"] = "interrupted"
        journal["steady_states"]["after"] = None
        journal["rollbacks"] = []
    edit_journal(run_dir, interrupt)
    summary = summarize(str(run_dir))
    assert summary["verdict"] == "interrupted"
    assert summary["safeguards"]["tripped"] is True
    assert summary["hypothesis"]["after"] == {"met": None, "probes": []}
    assert summary["events"][-2]["source"] in ("safeguard", "load")


def test_failed_fault_action_fails_the_run_with_its_message(run_dir):
    def refuse(journal):
        entry = journal["run"][0]
        entry.update(status="failed", output=None, exception=[
            "Traceback (most recent call last):\n",
            "chaosext.errors.ActivityError: RebootDBInstance(ForceFailover=True) on DB instance "
            "shop-db: RDS did not attempt the failover (RDS-EVENT-0034: ...)\n"])
    edit_journal(run_dir, refuse)
    summary = summarize(str(run_dir))
    fault = summary["faults"][0]
    assert fault["status"] == "failed" and fault["fault"] == "force_failover"
    assert fault["target"] == "shop-db"  # the argument's template, filled from the configuration
    assert fault["error"].startswith("RebootDBInstance(ForceFailover=True) on DB instance shop-db")
    assert summary["verdict"] == "failed"


def test_fault_without_wait_takes_its_rto_from_the_next_wait_probe(run_dir):
    def no_wait(journal):
        output = journal["run"][0]["output"]
        writable = output["data_plane_writable_at"]
        output.update(data_plane_writable_at=None, rto_seconds=None)
        journal["run"].insert(1, {
            "activity": {"type": "probe", "name": "db-back", "provider": {
                "type": "python", "module": "chaosext.dataplane", "func": "wait_until_writable"}},
            "output": {"kind": "mysql", "writable_again_at": writable, "outage_seconds": 2.1},
            "status": "succeeded", "start": output["injected_at"], "end": writable})
    edit_journal(run_dir, no_wait)
    fault = summarize(str(run_dir))["faults"][0]
    assert fault["rto_seconds"] == pytest.approx(2.35, abs=1e-3)
    assert fault["rto_source"] == "db-back"


def test_a_wait_probe_of_another_service_does_not_measure_a_fault():
    """A database fault started without waiting is not recovered when the cache writes again."""
    from gameday.report import journal as jr
    journal = {"run": [
        {"activity": {"name": "db-fault"}, "status": "succeeded",
         "output": {"fault": "rds-force-failover", "target": "shop-db", "services": ["rds"],
                    "injected_at": "2026-12-06T10:00:00.000Z"}},
        {"activity": {"name": "cache-back"}, "status": "succeeded",
         "output": {"kind": "redis", "writable_again_at": "2026-12-06T10:00:01.000Z"}}]}
    (fault,) = jr.faults(journal)
    assert fault["rto_seconds"] is None and fault["recovery"] == {}


def test_missing_timeline_and_ledger_are_tolerated(run_dir):
    for name in ("timeline.jsonl", "orders.jsonl", "load-summary.json"):
        (run_dir / name).unlink()
    summary = summarize(str(run_dir))
    assert summary["load"]["steps"] == [] and summary["load"]["timeline_seconds"] == 0
    assert summary["rpo"]["orders_acknowledged"] is None
    assert summary["rpo"]["orders_lost"] == 0  # the journal's RPO check still counts
    assert summary["verdict"] == "passed"


def test_run_without_journal_is_interrupted_but_still_summarised(run_dir):
    (run_dir / "journal.json").unlink()
    summary = summarize(str(run_dir))
    assert summary["verdict"] == "interrupted"
    assert summary["load"]["overall"]["baseline"]["requests"] > 0
    assert summary["start"] == "2026-11-26T06:00:00.000Z"


def test_a_directory_that_is_not_a_run_is_one_clear_error(tmp_path):
    with pytest.raises(ReportError, match="is not a run directory"):
        summarize(str(tmp_path))
    with pytest.raises(ReportError, match="no such run directory"):
        summarize(str(tmp_path / "nope"))
    (tmp_path / "journal.json").write_text("{not json")
    with pytest.raises(ReportError, match="cannot read"):
        summarize(str(tmp_path))


def test_hypothesis_not_met_before_the_method_fails_the_run(run_dir):
    def unhealthy(journal):
        probe = journal["steady_states"]["before"]["probes"][0]
        probe["tolerance_met"], probe["output"] = False, 0
        journal["steady_states"]["before"]["steady_state_met"] = False
        journal["steady_states"]["after"] = None
        journal["run"] = []
    edit_journal(run_dir, unhealthy)
    summary = summarize(str(run_dir))
    assert summary["verdict"] == "failed"
    assert summary["faults"] == []
    assert summary["verdict_reasons"] == [
        "hypothesis before the method: probe shop-answers out of tolerance (got 0)"]
    assert summary["load"]["windows"]["fault"]["seconds"] == 0  # all baseline without a fault


def test_a_failed_non_fault_method_step_fails_the_run_with_its_message(run_dir):
    def background_journey_failed(journal):
        journal["run"].append({"activity": {"type": "action", "name": "checkout-same-cart-through-db-failover"},
                               "status": "failed", "output": None,
                               "exception": ["Traceback ...\n", "ActivityFailed: checkout answered 500\n"]})
    edit_journal(run_dir, background_journey_failed)
    summary = summarize(run_dir)
    assert summary["verdict"] == "failed"
    assert any("checkout-same-cart-through-db-failover failed: ActivityFailed: checkout answered 500" in r
               for r in summary["verdict_reasons"])


def test_failover_events_not_seen_deviate_the_run(run_dir):
    def events_missing(journal):
        journal["run"].append({"activity": {"type": "probe", "name": "rds-failover-events-within-180s"},
                               "status": "succeeded", "output": {"met": False, "missing": ["completed"]}})
    edit_journal(run_dir, events_missing)
    summary = summarize(run_dir)
    assert summary["verdict"] == "deviated"
    assert "method check rds-failover-events-within-180s not met" in summary["verdict_reasons"]


AZ_INJECTED = "2026-11-26T06:00:36.250Z"


def _fis_experiment(state, action_state, ended=None):
    return {"experiment_id": "EXP1", "experiment_template_id": "TPL1", "state": state,
            "reason": None, "error": None, "targets": {}, "started_at": AZ_INJECTED,
            "ended_at": ended,
            "actions": {"rds": {"action_id": "aws:rds:reboot-db-instances", "state": action_state,
                                "started_at": AZ_INJECTED, "ended_at": ended},
                        "cache": {"action_id": "aws:elasticache:replicationgroup-interrupt-az-power",
                                  "state": action_state, "started_at": AZ_INJECTED,
                                  "ended_at": ended}}}


def _az_power_without_wait(journal):
    """The az-power-interruption experiment's method: the FIS action returns at once, then a
    wait probe per endpoint and the wait for the experiment's end."""
    fault = {"fault": "fis-az-power-interruption", "target": "TPL1", "method": "FIS AZ power "
             "interruption", "services": ["rds", "elasticache"], "kind": "outage",
             "injected_at": AZ_INJECTED, "control_plane_completed_at": None,
             "data_plane_writable_at": None, "rto_seconds": None, "control_plane_seconds": None,
             "recovery": {}, "events": [], "fis": {**_fis_experiment("running", "running"),
                                                   "template_id": "TPL1"}}

    def probe(name, func, output, end):
        return {"activity": {"type": "probe", "name": name, "provider": {
            "type": "python", "module": "chaosext.x", "func": func}},
            "output": output, "status": "succeeded", "start": AZ_INJECTED, "end": end}
    ended = "2026-11-26T06:01:37.000Z"
    journal["run"] = [
        {"activity": {"type": "action", "name": "fis-az-power-interruption", "provider": {
            "type": "python", "module": "chaosext.fis.actions", "func": "az_power_interruption"}},
         "output": fault, "status": "succeeded", "start": AZ_INJECTED, "end": AZ_INJECTED},
        probe("mysql-writable-again", "wait_until_writable",
              {"kind": "mysql", "writable_again_at": "2026-11-26T06:00:38.150Z"},
              "2026-11-26T06:00:38.150Z"),
        probe("redis-writable-again", "wait_until_writable",
              {"kind": "redis", "writable_again_at": "2026-11-26T06:00:40.750Z"},
              "2026-11-26T06:00:40.750Z"),
        probe("fis-experiment-completed", "wait_for_experiments",
              {"experiments": {"EXP1": _fis_experiment("completed", "completed", ended)}}, ended)]


def test_an_az_power_interruption_has_one_rto_per_service_each_against_its_threshold(run_dir):
    edit_journal(run_dir, _az_power_without_wait)
    summary = summarize(str(run_dir), rto_threshold={"rds": 5, "elasticache": 3})
    (fault,) = summary["faults"]
    assert fault["services"] == ["rds", "elasticache"] and fault["kind"] == "outage"
    db, cache = fault["recovery"]["rds"], fault["recovery"]["elasticache"]
    assert (db["rto_seconds"], db["rto_threshold_seconds"], db["rto_within_threshold"]) == \
        (pytest.approx(1.9), 5, True)
    assert (cache["rto_seconds"], cache["rto_threshold_seconds"],
            cache["rto_within_threshold"]) == (pytest.approx(4.5), 3, False)
    assert (db["source"], cache["source"]) == ("mysql-writable-again", "redis-writable-again")
    assert fault["rto_seconds"] == pytest.approx(4.5) and fault["rto_within_threshold"] is False
    assert fault["rto_threshold_seconds"] is None  # two services: one threshold each
    assert summary["verdict"] == "deviated"
    assert summary["verdict_reasons"] == ["fis-az-power-interruption on TPL1: cache RTO 4.5 s "
                                          "exceeds the 3 s threshold"]


def test_an_fis_fault_reports_the_experiments_final_state_not_the_one_at_injection(run_dir):
    edit_journal(run_dir, _az_power_without_wait)
    fis = summarize(str(run_dir), rto_threshold={"rds": 5, "elasticache": 5})["faults"][0]["fis"]
    assert fis["state"] == "completed" and fis["template_id"] == "TPL1"
    assert {a["state"] for a in fis["actions"].values()} == {"completed"}
    assert {a["ended_at"] for a in fis["actions"].values()} == {"2026-11-26T06:01:37.000Z"}


def test_an_fis_fault_started_without_waiting_has_its_control_plane_done_when_it_ended(run_dir):
    edit_journal(run_dir, _az_power_without_wait)
    fault = summarize(str(run_dir), rto_threshold=5)["faults"][0]
    assert fault["control_plane_completed_at"] == "2026-11-26T06:01:37.000Z"
    assert fault["control_plane_seconds"] == pytest.approx(60.75)


def test_the_az_power_reports_show_each_services_rto(run_dir):
    from gameday.report.render import write_report
    edit_journal(run_dir, _az_power_without_wait)
    write_report(str(run_dir), rto_threshold={"rds": 5, "elasticache": 3})
    saved = json.loads((run_dir / "summary.json").read_text())
    assert {s: r["rto_seconds"] for s, r in saved["faults"][0]["recovery"].items()} == \
        {"rds": 1.9, "elasticache": 4.5}
    markdown = (run_dir / "report.md").read_text()
    assert "database 1.9 s ≤ 5 s target: met; cache 4.5 s > 3 s target: MISSED" in markdown
    assert "database: writable again 06:00:38.150Z, RTO 1.9 s (threshold 5 s: met)" in markdown
    assert "FIS experiment EXP1 (template TPL1): completed" in markdown
    junit = (run_dir / "junit.xml").read_text()
    assert 'classname="fault.fis-az-power-interruption.TPL1.elasticache"' in junit
