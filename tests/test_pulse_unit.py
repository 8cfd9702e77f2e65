"""The facilitator's pulse (gameday/pulse.py) rendered from a known run directory."""
import json
import threading
import time

import pytest

from chaosext import progress
from groundfloor.supervisor import poll_until
from groundfloor.timefmt import iso
from gameday.pulse import OrderCount, Pulse, render, state_of, steps_of

T0 = 1_764_550_800  # 2025-12-01T01:00:00Z


def write_lines(path, records):
    with open(path, "a", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")


EVENT_OF_PHASE = {"experiment": ("experiment-started", {}), "method": ("method-started", {}),
                  "hypothesis-before": ("hypothesis-started", {"stage": "before"}),
                  "hypothesis-after": ("hypothesis-started", {"stage": "after"}),
                  "rollbacks": ("rollbacks-started", {}), "ended": ("experiment-ended", {})}


def phase(run_dir, name, at, **extra):
    """The progress record (chaosext.progress) that begins phase `name`."""
    event, fields = EVENT_OF_PHASE[name]
    with open(run_dir / progress.PROGRESS, "a", encoding="utf-8") as fh:
        fh.write(progress.event_line(event, at, **fields, **extra) + "\n")


def ledger(run_dir, record, at=None, **result):
    fault = {"fault": "rds-force-failover", "target": "shop-db",
             "method": "RebootDBInstance(ForceFailover=True)", "injected_at": iso(T0 + 30)}
    write_lines(run_dir / "faults.jsonl", [{"record": record, **fault, **result,
                                            **({"at": iso(at)} if at else {})}])


def timeline(run_dir, seconds, step, requests, failures, ms):
    write_lines(run_dir / "timeline.jsonl", [
        {"t": t, "step": step, "worker": "local", "requests": requests, "failures": failures,
         "errors": {"503": failures} if failures else {}, "p95": ms, "hist": [[ms, requests]]}
        for t in seconds])


@pytest.fixture
def run_dir(tmp_path):
    phase(tmp_path, "experiment", T0)
    phase(tmp_path, "hypothesis-before", T0 + 1)
    timeline(tmp_path, range(T0 + 20, T0 + 40), "browse", 20, 0, 12.0)
    timeline(tmp_path, range(T0 + 20, T0 + 40), "checkout", 3, 0, 40.0)
    timeline(tmp_path, range(T0 + 31, T0 + 34), "checkout", 3, 3, 900.0)  # the outage
    write_lines(tmp_path / "orders.jsonl", [{"order_id": n, "t": T0 + n} for n in range(1, 58)])
    return tmp_path


def test_steady_state_before_shows_each_step_with_traffic_and_the_orders(run_dir):
    line = Pulse(str(run_dir), every=10).line(now=T0 + 40)
    assert line == ("[pulse 01:00:40Z] steady state before | req/s p95 err: browse 20 12ms 0% · "
                    "checkout 3.9 900ms 23% | orders 57")


def test_a_fault_in_flight_shows_its_elapsed_seconds_and_each_milestone(run_dir):
    phase(run_dir, "method", T0 + 29)
    ledger(run_dir, "injected")
    assert state_of(str(run_dir)).label(T0 + 34) == "method: rds-force-failover +4s injected"
    ledger(run_dir, "writable", at=T0 + 31.6)
    assert state_of(str(run_dir)).label(T0 + 35) == ("method: rds-force-failover +5s injected, "
                                                     "writable 1.6s")
    ledger(run_dir, "control-plane-done", at=T0 + 31.7)
    ledger(run_dir, "ended", data_plane_writable_at=iso(T0 + 31.6),
           control_plane_completed_at=iso(T0 + 31.67))
    assert state_of(str(run_dir)).label(T0 + 40) == ("method: rds-force-failover injected, "
                                                     "writable 1.6s, control plane done 1.7s; "
                                                     "recovered")


def test_phases_after_the_method_hide_the_fault_and_the_end_names_the_status(run_dir):
    phase(run_dir, "method", T0 + 29)
    ledger(run_dir, "injected")
    phase(run_dir, "hypothesis-after", T0 + 50)
    assert state_of(str(run_dir)).label(T0 + 51) == "steady state after"
    phase(run_dir, "rollbacks", T0 + 55)
    assert state_of(str(run_dir)).label(T0 + 56) == "rollbacks"
    phase(run_dir, "ended", T0 + 60, status="completed")
    assert state_of(str(run_dir)).label(T0 + 61) == "ended: completed"


def test_steps_follow_the_journey_order_and_small_error_ratios_keep_a_decimal():
    rows = [{"t": 1, "step": step, "requests": n, "failures": f, "hist": [[3.0, n]]}
            for step, n, f in (("checkout", 250, 1), ("browse", 5, 0), ("custom", 2, 1))]
    text = render(T0, state_of("/nonexistent"), steps_of(rows, window=1), 0)
    assert "browse 5.0 3ms 0% · checkout 250 3ms 0.4% · custom 2.0 3ms 50% |" in text


def test_the_step_window_is_the_pulse_interval_over_the_latest_seconds():
    rows = [{"t": t, "step": "checkout", "requests": 10, "failures": 1 if t >= 8 else 0,
             "hist": [[5.0, 9], [50.0, 1]]} for t in range(10)]
    steps = steps_of(rows, window=2)  # seconds 8 and 9 only
    assert steps == [{"step": "checkout", "rate": 10.0, "p95": 50.0, "error_ratio": 0.1}]
    assert steps_of([], window=10) == []


def test_without_load_the_line_says_so():
    from gameday.pulse import RunState
    assert render(T0, RunState(None), [], 0) == (
        "[pulse 01:00:00Z] starting | no load yet | orders 0")


def test_orders_are_counted_incrementally_and_a_half_written_line_waits(tmp_path):
    path = tmp_path / "orders.jsonl"
    count = OrderCount(str(path))
    assert count() == 0
    path.write_text('{"order_id": 1, "t": 1}\n{"order_id": 2,')
    assert count() == 1
    with open(path, "a") as fh:
        fh.write(' "t": 2}\n{"order_id": 3, "t": 3}\n')
    assert count() == 3


def test_phases_that_passed_between_two_looks_each_get_their_line_in_order(run_dir):
    seen = []
    pulse = Pulse(str(run_dir), every=10, write=seen.append)
    pulse.tick(force=False)
    for name in ("method", "hypothesis-after", "rollbacks"):
        phase(run_dir, name, T0 + 50)
    phase(run_dir, "ended", T0 + 51, status="completed")
    pulse.tick(force=False)
    assert [line.split("] ", 1)[1].split(" |")[0] for line in seen] == [
        "steady state before", "method", "steady state after", "rollbacks", "ended: completed"]
    assert not pulse.tick(force=False)  # nothing new: no line


def test_a_phase_change_prints_at_once_and_the_interval_prints_again(run_dir):
    lines, printed = [], threading.Event()

    def write(line):
        lines.append((time.monotonic(), line))
        printed.set()
    pulse = Pulse(str(run_dir), every=0.6, poll=0.05, write=write)
    pulse.start()
    try:
        assert printed.wait(2)  # the first state is shown at once
        began = time.monotonic()
        phase(run_dir, "method", time.time())
        method_lines = lambda: [t for t, l in lines if "] method" in l]  # noqa: E731
        changed = poll_until(method_lines, 2, 0.02)
        assert changed and changed[0] - began < 0.5  # well before the 0.6 s interval
        assert poll_until(lambda: len(method_lines()) >= 2, 3, 0.02)
    finally:
        pulse.stop()
    repeats = [t for t, l in lines if "] method" in l]
    assert len(repeats) >= 2 and 0.5 <= repeats[1] - repeats[0] <= 1.0


def test_a_fault_of_two_services_shows_when_each_writes_again():
    from gameday.pulse import _fault_text, _last_fault
    base = {"fault": "fis-az-power-interruption", "target": "TPL1",
            "injected_at": "2026-12-06T10:00:00.000Z", "services": ["rds", "elasticache"]}
    ledger = [{"record": "injected", **base},
              {"record": "writable", "at": "2026-12-06T10:00:01.900Z", "service": "rds", **base},
              {"record": "writable", "at": "2026-12-06T10:00:04.500Z", "service": "elasticache",
               **base}]
    fault = _last_fault(ledger)
    assert _fault_text(fault, fault["injected"] + 5) == (
        "fis-az-power-interruption +5s injected, database writable 1.9s, cache writable 4.5s")


def test_a_db_cluster_failover_shows_the_writer_writable_and_the_readers_serving():
    from gameday.pulse import _fault_text, _last_fault
    base = {"fault": "rds-cluster-failover", "target": "shop-db-cluster",
            "injected_at": "2026-12-06T10:00:00.000Z", "services": ["rds", "rds-reader"]}
    ledger = [{"record": "injected", **base},
              {"record": "writable", "at": "2026-12-06T10:00:00.300Z", "service": "rds-reader", **base},
              {"record": "writable", "at": "2026-12-06T10:00:01.900Z", "service": "rds", **base}]
    fault = _last_fault(ledger)
    assert _fault_text(fault, fault["injected"] + 3) == (
        "rds-cluster-failover +3s injected, database readers serving 0.3s, database writable 1.9s")
