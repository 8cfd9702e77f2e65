"""The fault model: declared services and kind decide what run_fault measures, per service."""
import json
import threading
import time

import pytest

from chaosext import dataplane, fault_model
from chaosext.errors import ActivityError
from chaosext.fault_model import ACTIVITIES, CATALOGUE, KINDS, FaultSpec
from chaosext.recovery import Fault, run_fault
from groundfloor.supervisor import poll_until

ENDPOINTS = {"mysql_host": "db.invalid", "mysql_port": 3306, "redis_host": "cache.invalid",
             "redis_port": 6379}


class Outages:
    """Stands in for the writes of chaosext.dataplane: each endpoint kind refuses writes from
    the injection until `down[kind]` seconds after it (0: it never fails)."""

    def __init__(self, monkeypatch, **down):
        self.down, self.injected = down, None
        for kind in ("mysql", "redis"):
            monkeypatch.setitem(dataplane.WRITERS, kind, self._writer(kind))

    def _writer(self, kind):
        def write(configuration, secrets):
            if self.injected is not None and time.time() < self.injected + self.down.get(kind, 0):
                raise OSError(f"{kind} refused")
        return write

    def inject(self):
        self.injected = time.time()


def _fault(spec, outages, done_after=0.2, events=()):
    def poll():
        over = outages.injected is not None and time.time() >= outages.injected + done_after
        return over, {"status": "available" if over else "failing-over"}
    return Fault(spec, "target-1", "Inject()", {}, outages.inject, poll, lambda since: list(events))


def test_a_fault_of_two_services_gets_one_rto_per_service(monkeypatch, tmp_path):
    monkeypatch.setenv("GAMEDAY_RUN_DIR", str(tmp_path))
    outages = Outages(monkeypatch, mysql=0.3, redis=0.8)
    spec = FaultSpec("az-outage", ("rds", "elasticache"), "outage")
    result = run_fault(_fault(spec, outages), timeout=10, poll_interval=0.05,
                       configuration=ENDPOINTS)
    db, cache = result["recovery"]["rds"], result["recovery"]["elasticache"]
    # each RTO is the middle of the interval in which the endpoint came back (one 100 ms pacing
    # step wide here), so within 0.1 s of the outage the stub gave that service
    assert abs(db["rto_seconds"] - 0.3) <= 0.1 and abs(cache["rto_seconds"] - 0.8) <= 0.1
    assert (db["data_plane"]["kind"], cache["data_plane"]["kind"]) == ("mysql", "redis")
    assert result["rto_seconds"] == cache["rto_seconds"]  # over once the last service writes
    assert result["services"] == ["rds", "elasticache"] and result["kind"] == "outage"
    ledger = [json.loads(line) for line in (tmp_path / "faults.jsonl").read_text().splitlines()]
    assert ledger[0]["services"] == ["rds", "elasticache"] and ledger[0]["kind"] == "outage"
    assert sorted(r["service"] for r in ledger if r["record"] == "writable") == \
        ["elasticache", "rds"]


def test_only_the_declared_services_are_watched(monkeypatch):
    outages = Outages(monkeypatch, mysql=0.3, redis=0.3)
    spec = FaultSpec("network-latency-db", ("rds",), "failover")
    result = run_fault(_fault(spec, outages), timeout=10, poll_interval=0.05,
                       configuration=ENDPOINTS)
    assert list(result["recovery"]) == ["rds"]
    assert result["data_plane"]["kind"] == "mysql"


def test_an_impairment_ends_when_it_is_lifted_and_measures_the_time_to_recover(monkeypatch):
    """No failover completion event: a stray one from an earlier failover must not count."""
    outages = Outages(monkeypatch, mysql=0.6)
    spec = FaultSpec("network-blackhole-db", ("rds",), "impairment", None)
    stray = [{"kind": "failover-completed", "date": "2026-12-06T00:00:00.000Z"}]
    result = run_fault(_fault(spec, outages, done_after=0.3, events=stray), timeout=10,
                       poll_interval=0.05, configuration=ENDPOINTS)
    assert result["control_plane_completed_at"] == result["control_plane_observed_at"]
    recovery = result["recovery"]["rds"]
    assert abs(recovery["rto_seconds"] - 0.6) <= 0.1  # the middle of its 100 ms interval
    assert 0.0 < recovery["time_to_recover_seconds"] < recovery["rto_seconds"]


def test_a_service_that_never_fails_is_writable_all_along(monkeypatch):
    outages = Outages(monkeypatch, mysql=0.3)
    spec = FaultSpec("az-outage", ("rds", "elasticache"), "outage")
    result = run_fault(_fault(spec, outages), timeout=10, poll_interval=0.05,
                       configuration=ENDPOINTS)
    assert result["recovery"]["elasticache"]["rto_seconds"] == 0.0
    assert result["recovery"]["elasticache"]["data_plane"]["first_failure_at"] is None
    assert abs(result["recovery"]["rds"]["rto_seconds"] - 0.3) <= 0.1


def test_a_service_still_down_at_the_deadline_names_its_endpoint(monkeypatch):
    outages = Outages(monkeypatch, redis=60)
    spec = FaultSpec("az-outage", ("rds", "elasticache"), "outage")
    with pytest.raises(ActivityError, match=r"redis endpoint cache.invalid:6379 was not "
                                            r"writable again within 1 s"):
        run_fault(_fault(spec, outages), timeout=1, poll_interval=0.05, configuration=ENDPOINTS)


@pytest.mark.parametrize("kind, services, message", [
    ("meltdown", ("rds",), "fault x: unknown kind 'meltdown'; use one of failover, outage, "
                           "impairment"),
    ("outage", ("dynamodb",), "fault x: unknown service(s) dynamodb; use rds, rds-reader, elasticache"),
])
def test_an_unknown_kind_or_service_is_one_clear_error(kind, services, message):
    with pytest.raises(ActivityError) as caught:
        FaultSpec("x", services, kind)
    assert str(caught.value) == message


def test_every_fault_action_is_declared_with_its_services_and_kind():
    assert set(ACTIVITIES.values()) <= set(CATALOGUE)
    for spec in CATALOGUE.values():
        assert spec.services and spec.kind in KINDS, spec
        assert (spec.completion_kind is not None) == KINDS[spec.kind].completion_event, spec
    assert CATALOGUE["fis-az-power-interruption"].services == ("rds", "elasticache")


def test_records_without_a_kind_read_as_failovers_and_unknown_services_are_dropped():
    assert fault_model.declared(["rds", "sqs"], None) == (("rds",), "failover")
    assert fault_model.declared(("elasticache",), "impairment") == (("elasticache",), "impairment")


def test_the_poller_waits_for_a_background_thread_without_a_fixed_sleep():
    seen = threading.Event()
    threading.Timer(0.2, seen.set).start()
    started = time.monotonic()
    assert poll_until(seen.is_set, 5, interval=0.01) is True
    assert 0.15 <= time.monotonic() - started < 2
    assert poll_until(lambda: None, 0.1, interval=0.02) is None
