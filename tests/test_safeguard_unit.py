"""The fault-aware safeguard over synthetic timelines: planned long outages pass, runaways trip."""
import json
import time

import pytest

from chaosext import thresholds
from chaosext.load import safeguard
from chaosext.load.safeguard import FaultSpan, Policy, judge, spans_from_ledger
from groundfloor.timefmt import iso

STEPS = ("browse", "product", "add_to_cart", "view_cart", "checkout")
T0 = 1_000_000  # injection second of the first fault
DB = frozenset({"product", "add_to_cart", "checkout", "order_received"})  # the default steps of a database fault


def timeline(start, end, failing=(), rate=3):
    """Cells from `start` to `end` (inclusive): `rate` requests per step per second; a step in
    `failing` (step -> predicate of the second) fails every request in the seconds it selects."""
    cells = {}
    for t in range(start, end + 1):
        for step in STEPS:
            fails = rate if step in dict(failing) and dict(failing)[step](t) else 0
            cells[(t, step)] = (rate, fails)
    return cells


def between(a, b):
    return lambda t: a <= t < b


def first_trip(cells, spans_at, start, end, policy=Policy()):
    """The first second in [start, end] at which the safeguard trips, with its verdict."""
    for now in range(start, end + 1):
        verdict = judge({k: v for k, v in cells.items() if k[0] <= now}, spans_at(now), now, policy)
        if not verdict.ok:
            return now, verdict
    return None, None


def db_fault(threshold, ends=None, injected=T0):
    return lambda now: [FaultSpan("rds-force-failover", "shop-db", injected,
                                  ends if ends is not None and ends <= now else None, threshold, DB)]


def test_a_planned_two_minute_db_outage_within_its_threshold_never_trips():
    cells = timeline(T0 - 60, T0 + 300, {"checkout": between(T0, T0 + 120)})
    when, verdict = first_trip(cells, db_fault(180, ends=T0 + 120), T0 - 30, T0 + 300)
    assert when is None, verdict.reasons


def test_a_planned_cache_outage_may_fail_every_step_within_its_threshold():
    every = {step: between(T0, T0 + 45) for step in STEPS}
    cells = timeline(T0 - 30, T0 + 120, every)
    spans = lambda now: [FaultSpan("elasticache-test-failover", "shop-cache", T0,
                                   T0 + 45 if now >= T0 + 45 else None, 120, None)]
    when, verdict = first_trip(cells, spans, T0 - 20, T0 + 120)
    assert when is None, verdict.reasons


def test_the_old_checkout_ratio_safeguard_would_have_tripped_on_the_same_outage():
    """The regression: `checkout errors <= 50 % over 20 s` cannot tell a failover from a runaway."""
    cells = timeline(T0 - 60, T0 + 300, {"checkout": between(T0, T0 + 120)})
    window = range(T0 + 1, T0 + 21)
    failed = sum(cells[(t, "checkout")][1] for t in window)
    assert failed / sum(cells[(t, "checkout")][0] for t in window) > 0.5


def test_browse_errors_during_a_db_outage_trip_as_an_unaffected_step():
    cells = timeline(T0 - 30, T0 + 120, {"checkout": between(T0, T0 + 90),
                                         "browse": between(T0 + 30, T0 + 90)})
    when, verdict = first_trip(cells, db_fault(180), T0, T0 + 120)
    assert when is not None and when <= T0 + 35
    assert any(r.startswith("browse:") and "outside any fault that affects it" in r
               and "rds-force-failover on shop-db (affects add_to_cart, checkout, order_received, product)" in r for r in verdict.reasons)


def test_an_outage_beyond_its_threshold_trips_soon_after_the_threshold():
    cells = timeline(T0 - 30, T0 + 200, {"checkout": between(T0, T0 + 200)})
    when, verdict = first_trip(cells, db_fault(60), T0, T0 + 200)
    assert when is not None and T0 + 60 <= when <= T0 + 63, when - T0
    later = judge({k: v for k, v in cells.items() if k[0] <= T0 + 63}, db_fault(60)(T0 + 63),
                  T0 + 63)
    assert any("beyond its 60 s RTO threshold" in r and r.startswith("checkout still failing")
               for r in later.reasons), later.reasons


def test_a_fault_in_flight_beyond_its_threshold_without_errors_does_not_trip():
    """The control plane may be slow to say `available`; clients that are served are no outage."""
    cells = timeline(T0 - 30, T0 + 300, {"checkout": between(T0, T0 + 40)})
    when, verdict = first_trip(cells, db_fault(60), T0, T0 + 300)
    assert when is None, verdict.reasons


def test_errors_that_go_on_after_the_fault_recovered_trip_after_the_settle_time():
    cells = timeline(T0 - 30, T0 + 200, {"checkout": between(T0, T0 + 200)})
    when, verdict = first_trip(cells, db_fault(180, ends=T0 + 60), T0, T0 + 200)
    assert when is not None and T0 + 70 < when <= T0 + 75, when - T0
    assert any("outside any fault" in r and "no fault in flight" in r for r in verdict.reasons)


def test_an_error_budget_spent_beyond_the_threshold_trips_even_when_each_window_looks_fine():
    """Short bursts (one second in five) keep every 20 s window at the limit, never above it."""
    cells = timeline(T0 - 30, T0 + 400, {"checkout": lambda t: t >= T0 and (t - T0) % 5 == 0})
    when, verdict = first_trip(cells, db_fault(60), T0, T0 + 400)
    assert when is not None and T0 + 290 < when <= T0 + 310, when - T0
    assert all("error budget spent" in r for r in verdict.reasons), verdict.reasons
    assert verdict.budget["checkout"]["bad_seconds"] == 61


def test_budgets_add_up_over_the_faults_that_affect_a_step():
    cells = timeline(T0 - 30, T0 + 300, {"checkout": lambda t: T0 <= t < T0 + 50 or
                                         T0 + 150 <= t < T0 + 200})
    spans = lambda now: [FaultSpan("rds-force-failover", "shop-db", T0, T0 + 50, 60, DB),
                         *([FaultSpan("rds-force-failover", "shop-db", T0 + 150,
                                      T0 + 200 if now >= T0 + 200 else None, 60, DB)]
                           if now >= T0 + 150 else [])]
    when, verdict = first_trip(cells, spans, T0, T0 + 300)
    assert when is None, verdict.reasons


def test_a_few_requests_are_not_enough_to_judge_a_ratio():
    cells = {(T0 + i, "browse"): (1, 1 if i == 19 else 0) for i in range(20)}
    assert judge(cells, [], T0 + 19, Policy(min_requests=5)).ok
    cells.update({(T0 + i, "browse"): (1, 1) for i in range(15, 20)})
    verdict = judge(cells, [], T0 + 19, Policy(min_requests=5))
    assert not verdict.ok and "no fault in flight" in verdict.reasons[0]


def ledger_records(*faults):
    return [r for f in faults for r in f]


def test_spans_come_from_the_fault_ledger_with_thresholds_and_steps_from_configuration():
    records = [
        {"record": "injected", "fault": "rds-force-failover", "target": "shop-db",
         "injected_at": iso(T0)},
        {"record": "ended", "fault": "rds-force-failover", "target": "shop-db",
         "injected_at": iso(T0), "control_plane_observed_at": iso(T0 + 70),
         "data_plane_writable_at": iso(T0 + 65)},
        {"record": "injected", "fault": "elasticache-test-failover", "target": "shop-cache",
         "injected_at": iso(T0 + 100)},
    ]
    config = {"rto_threshold_seconds": json.dumps({"rds": 150, "shop-cache": 40}),
              "fault_affected_steps": {"elasticache": ["view_cart", "checkout"]}}
    db, cache = spans_from_ledger(records, config)
    assert (db.threshold, db.ended, db.affects) == (150, T0 + 70, DB)
    assert (cache.threshold, cache.ended, cache.affects) == (40, None,
                                                             {"view_cart", "checkout"})
    defaults = spans_from_ledger(records, {})
    assert defaults[0].threshold == thresholds.DEFAULT_FAULT_TIMEOUT and defaults[1].affects is None


def test_the_probe_reads_the_run_directory_and_records_why_it_tripped(tmp_path, monkeypatch):
    now = int(time.time())
    injected = now - 100
    lines = [{"t": t, "step": step, "requests": 2,
              "failures": 2 if step == "checkout" and t >= injected else 0,
              "errors": {"503 woocommerce_rest_database_unavailable": 2}
              if step == "checkout" and t >= injected else {}}
             for t in range(now - 130, now + 1) for step in STEPS]
    (tmp_path / "timeline.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (tmp_path / "faults.jsonl").write_text(json.dumps(
        {"record": "injected", "fault": "rds-force-failover", "target": "shop-db",
         "injected_at": iso(injected)}) + "\n")
    monkeypatch.setattr(safeguard.time, "time", lambda: float(now))
    planned = safeguard.outage_within_budget(run_dir=str(tmp_path), configuration={
        "rto_threshold_seconds": {"rds": 180}})
    assert planned["ok"] and planned["faults"][0]["in_flight"]
    assert not (tmp_path / "safeguard.json").exists()
    runaway = safeguard.outage_within_budget(run_dir=str(tmp_path), configuration={
        "rto_threshold_seconds": "60"})
    assert not runaway["ok"] and "beyond its 60 s RTO threshold" in " ".join(runaway["reasons"])
    assert json.loads((tmp_path / "safeguard.json").read_text())["reasons"] == runaway["reasons"]


def test_a_window_of_zero_is_one_clear_error(tmp_path):
    with pytest.raises(Exception, match="window must be > 0"):
        safeguard.outage_within_budget(window=0, run_dir=str(tmp_path))


def test_a_fault_started_without_waiting_stays_in_flight_until_its_threshold_has_passed():
    """`wait: false` (e.g. an FIS experiment) ends its action at once, recovered or not."""
    records = [{"record": "injected", "fault": "fis-az-power-interruption", "target": "tpl",
                "injected_at": iso(T0)},
               {"record": "ended", "fault": "fis-az-power-interruption", "target": "tpl",
                "injected_at": iso(T0), "control_plane_completed_at": None,
                "data_plane_writable_at": None}]
    (span,) = spans_from_ledger(records, {"rto_threshold_seconds": {"default": 90}})
    assert span.ended is None and span.threshold == 90 and span.affects is None
    cells = timeline(T0 - 30, T0 + 200, {step: between(T0, T0 + 200) for step in STEPS})
    when, verdict = first_trip(cells, lambda now: [span], T0, T0 + 200)
    assert when is not None and T0 + 90 <= when <= T0 + 93, when - T0


def test_an_endpoint_still_unwritable_past_the_threshold_trips_without_any_load():
    """Sparse load may show too few failed checkouts; the RTO's own write watch does not."""
    spans = db_fault(8)
    down = [{"kind": "mysql", "endpoint": "mysql endpoint shop-db:3306", "down_since": T0 + 0.2}]
    assert judge({}, spans(T0 + 8), T0 + 8, down=down).ok  # within the threshold
    verdict = judge({}, spans(T0 + 9), T0 + 9, down=down)
    assert not verdict.ok and verdict.reasons == [
        "the mysql endpoint shop-db:3306 has taken no write for 9 s since rds-force-failover on "
        "shop-db was injected: beyond its 8 s RTO threshold"]
    redis_down = [{**down[0], "kind": "redis"}]  # another service's endpoint is not this fault's
    assert judge({}, spans(T0 + 9), T0 + 9, down=redis_down).ok


def test_write_watches_register_their_outage_while_they_run():
    from chaosext import watch_registry

    class Watch:
        kind, endpoint, first_failure_at, recovered = "redis", "redis endpoint x:1", None, False
    watch = Watch()
    watch_registry.watching(watch, True)
    assert watch_registry.live_outages() == []  # not failed yet
    watch.first_failure_at = T0
    assert watch_registry.live_outages() == [{"kind": "redis", "endpoint": "redis endpoint x:1",
                                       "down_since": T0}]
    watch.recovered = True
    assert watch_registry.live_outages() == []
    watch.recovered = False
    watch_registry.watching(watch, False)
    assert watch_registry.live_outages() == []


def test_the_report_of_a_run_the_safeguard_stopped_says_why(run_dir):
    from gameday.report.summary import summarize
    journal = json.loads((run_dir / "journal.json").read_text())
    journal["status"] = "interrupted"
    (run_dir / "journal.json").write_text(json.dumps(journal))
    (run_dir / "safeguard.json").write_text(json.dumps(
        {"ok": False, "reasons": ["browse: 60 % of 40 requests failed in the last 20 s outside "
                                  "any fault that affects it; no fault in flight"]}))
    summary = summarize(str(run_dir))
    assert summary["verdict"] == "interrupted"
    assert "safeguard: browse: 60 % of 40 requests failed in the last 20 s outside any fault " \
           "that affects it; no fault in flight" in summary["verdict_reasons"]
