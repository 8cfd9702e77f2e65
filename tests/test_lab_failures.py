"""Unplanned failures in the lab, healed the way Multi-AZ RDS and ElastiCache heal them.

Ground truth comes from the lab's event log; writers through the endpoints prove nothing that was
acknowledged is lost. (The 20-crash loops are in scripts/bench.py, not here.)
"""
import time

import pytest

from groundfloor.supervisor import poll_until
from woolab.measure import EndpointWriter

pytestmark = pytest.mark.lab


def wait_for(condition, timeout: float = 30.0, what: str = "condition"):
    value = poll_until(condition, timeout, 0.1)
    assert value, f"{what} not reached within {timeout} s"
    return value


def healthy_again(lab) -> bool:
    """Multi-AZ available with a healthy standby, and the cache group back to full redundancy."""
    snap = lab.snapshot()
    db = snap["db_instances"]["shop-db"]
    group = snap["replication_groups"]["shop-cache"]
    nodes = snap["cache_clusters"]
    return (db["status"] == "available" and all(n["status"] == "available" for n in db["nodes"].values())
            and group["status"] == "available" and len(nodes) == 2
            and all(n["status"] == "available" for n in nodes.values()))


def messages(lab, since, source_type=None):
    return [e["message"] for e in lab.events(since)
            if e["source_type"] != "lab" and (source_type is None or e["source_type"] == source_type)]


def marker_time(lab, since, text):
    return next(e["time"] for e in lab.events(since) if e["source_type"] == "lab" and text in e["message"])


def test_crashed_db_primary_fails_over_on_its_own_and_the_standby_is_rebuilt(lab):
    wait_for(lambda: healthy_again(lab), what="a healthy lab")
    before = lab.snapshot()["db_instances"]["shop-db"]
    writer = EndpointWriter(lab.env, "db")
    writer.start()
    wait_for(lambda: len(writer.acked) > 20)
    t0 = time.time()
    lab.call(f"/_lab/crash?id={before['primary']}")
    wait_for(lambda: "Multi-AZ instance failover completed" in messages(lab, t0), what="automatic failover")
    writable = marker_time(lab, t0, "endpoint writable")
    assert writable - t0 <= 5.0
    wait_for(lambda: healthy_again(lab), what="a rebuilt standby")
    acked = len(writer.acked)
    wait_for(lambda: len(writer.acked) > acked + 20)
    writer.finish()
    assert writer.lost() == [] and writer.failure_times
    after = lab.snapshot()["db_instances"]["shop-db"]
    assert (after["primary"], after["standby"]) == (before["standby"], before["primary"])
    assert messages(lab, t0, "db-instance") == [
        "Multi-AZ instance failover started.", "The primary host of the RDS Multi-AZ instance is unhealthy.",
        "Multi-AZ instance failover completed", "Recovery of standby DB instance has started.",
        "Recovery of standby DB instance has completed."]


def test_hung_db_primary_is_detected_and_replaced(lab):
    wait_for(lambda: healthy_again(lab), what="a healthy lab")
    primary = lab.snapshot()["db_instances"]["shop-db"]["primary"]
    t0 = time.time()
    lab.call(f"/_lab/freeze?id={primary}")
    wait_for(lambda: "Multi-AZ instance failover completed" in messages(lab, t0), what="automatic failover")
    assert "The RDS Multi-AZ primary instance is busy and unresponsive." in messages(lab, t0)
    wait_for(lambda: healthy_again(lab), what="a rebuilt standby")
    assert lab.snapshot()["db_instances"]["shop-db"]["standby"] == primary


def test_crashed_db_standby_is_rebuilt_without_a_failover(lab):
    wait_for(lambda: healthy_again(lab), what="a healthy lab")
    db = lab.snapshot()["db_instances"]["shop-db"]
    t0 = time.time()
    lab.call(f"/_lab/crash?id={db['standby']}")
    wait_for(lambda: "Recovery of standby DB instance has completed." in messages(lab, t0), what="rebuild")
    wait_for(lambda: healthy_again(lab), what="a healthy standby")
    assert messages(lab, t0, "db-instance") == ["Recovery of standby DB instance has started.",
                                                "Recovery of standby DB instance has completed."]
    assert lab.snapshot()["db_instances"]["shop-db"]["primary"] == db["primary"]


def crash_cache_primary_under_writes(lab, writable_within=None):
    """Crash the cache primary while a WAIT-1 writer writes through the endpoint; wait for its
    replacement, full redundancy and 20 more acknowledged writes. Returns (old, new, t0, writer)."""
    wait_for(lambda: healthy_again(lab), what="a healthy lab")
    old = next(n for n, v in lab.snapshot()["cache_clusters"].items() if v["role"] == "primary")
    writer = EndpointWriter(lab.env, "cache", wait_replicas=1)
    writer.start()
    wait_for(lambda: len(writer.acked) > 20)
    t0 = time.time()
    lab.call(f"/_lab/crash?id={old}")
    wait_for(lambda: any(m.startswith("Finished recovery") for m in messages(lab, t0)), what="node replacement")
    if writable_within is not None:
        assert marker_time(lab, t0, "endpoint writable") - t0 <= writable_within
    wait_for(lambda: healthy_again(lab), what="full redundancy")
    acked = len(writer.acked)
    wait_for(lambda: len(writer.acked) > acked + 20)
    writer.finish()
    new = next(n for n, v in lab.snapshot()["cache_clusters"].items() if v["role"] == "primary")
    return old, new, t0, writer


def test_crashed_cache_primary_is_replaced_and_wait_acknowledged_writes_survive(lab):
    old, new, t0, writer = crash_cache_primary_under_writes(lab, writable_within=3.5)
    assert writer.lost() == []
    assert new != old
    assert messages(lab, t0) == [f"Failover from primary node {old} to replica node {new} completed",
                                 "Recovering cache nodes 0001", "Finished recovery for cache nodes 0001"]


def test_crashed_cache_replica_is_replaced(lab):
    wait_for(lambda: healthy_again(lab), what="a healthy lab")
    replica = next(n for n, v in lab.snapshot()["cache_clusters"].items() if v["role"] == "replica")
    t0 = time.time()
    lab.call(f"/_lab/crash?id={replica}")
    wait_for(lambda: any(m.startswith("Finished recovery") for m in messages(lab, t0)), what="node replacement")
    wait_for(lambda: healthy_again(lab), what="full redundancy")
    assert not any(m.startswith("Failover") for m in messages(lab, t0))


def test_az_power_interruption_fails_both_services_over_and_replaces_nothing_until_power_returns(lab):
    wait_for(lambda: healthy_again(lab), what="a healthy lab")
    snap = lab.snapshot()
    az = snap["db_instances"]["shop-db"]["nodes"][snap["db_instances"]["shop-db"]["primary"]]["az"]
    t0 = time.time()
    off = lab.call(f"/_lab/interrupt-az?id={az}&seconds=8")["powered_off"]
    assert off  # the primary's AZ holds lab nodes
    with pytest.raises(Exception, match="already without power"):
        lab.call(f"/_lab/interrupt-az?id={az}&seconds=8")
    wait_for(lambda: "Multi-AZ instance failover completed" in messages(lab, t0), what="DB failover")
    restored_at = wait_for(lambda: next((e["time"] for e in lab.events(t0) if "power restored" in e["message"]),
                                        None), timeout=20, what="power back")
    recoveries = [e for e in lab.events(t0) if e["source_type"] != "lab" and "ecover" in e["message"]]
    assert all(e["time"] >= restored_at for e in recoveries)  # nothing replaced while the power was off
    wait_for(lambda: healthy_again(lab), what="full redundancy after the power returns")
    moved = lab.snapshot()["db_instances"]["shop-db"]
    assert moved["nodes"][moved["primary"]]["az"] != az


def test_bad_failure_requests_are_refused_and_change_nothing(lab):
    wait_for(lambda: healthy_again(lab), what="a healthy lab")
    before = lab.snapshot()
    for route, why in (("/_lab/crash?id=shop-db-z", "not found"), ("/_lab/interrupt-az?id=eu-west-9z&seconds=5",
                                                                  "not found"),
                       ("/_lab/interrupt-az?id=us-east-1a&seconds=abc", "number")):
        with pytest.raises(Exception, match=why):
            lab.call(route)
    assert lab.snapshot() == before
