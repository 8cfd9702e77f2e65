"""The FIS variants of the gray-failure experiments (`*-fis`) on the real lab: the same files that
run on AWS go through the lab's FIS API and its network layer. Each test runs the shortest form
that shows the fault and checks the run's own files against the lab's ground truth (its network
events and its primaries before and after)."""
import statistics
import time

import pytest

from groundfloor.timefmt import parse_time
from test_experiments import primaries_in_one_az, run_on_lab
from test_network_experiments import _checkout_back_after, _checkout_outage, _faults, _p95s, _window

pytestmark = pytest.mark.lab


def _primaries(lab) -> dict:
    """Where the DB writer and the cache primary are now (the lab's own state)."""
    snap = lab.snapshot()
    db = snap["db_instances"]["shop-db"]
    cache = next(name for name, node in snap["cache_clusters"].items() if node["role"] == "primary")
    return {"db": db["primary"], "cache": cache, "az": db["nodes"][db["primary"]]["az"]}


def _network_events(lab, since: float, what: str) -> list:
    """(time, AZ) of the lab's network events `what` ("started" or "ended") since `since`."""
    prefix = f"network impairment {what} on "
    return [(e["time"], e["message"][len(prefix):].split(" ")[0].rstrip(":"))
            for e in lab.events(since) if "network" in e.get("categories", [])
            and e["message"].startswith(prefix)]


def _common_checks(lab, summary, fault, before, fault_name) -> None:
    """Every FIS gray failure: an impairment fault whose experiment completed, nothing failed
    over, each service writable again within the experiment's threshold, nothing lost, nothing
    left impaired."""
    assert summary["verdict"] == "passed", summary["verdict_reasons"]
    assert (fault["fault"], fault["kind"], fault["fis"]["state"]) == (fault_name, "impairment", "completed")
    assert _primaries(lab) == before  # a network impairment fails nothing over by itself
    assert set(fault["recovery"]) == {"rds", "elasticache"}
    assert summary["rpo"]["orders_acknowledged"] > 0 and summary["rpo"]["orders_lost"] == 0
    assert lab.call("/_lab/network", "GET")["impairments"] == []


@pytest.mark.timeout(300)
def test_fis_az_slowdown_adds_200_ms_to_checkout_in_the_primaries_az_and_fails_nothing_over(
        lab, monkeypatch, tmp_path):
    primaries_in_one_az(lab)
    before, since = _primaries(lab), time.time()
    monkeypatch.setenv("GAMEDAY_IMPAIRMENT_SECONDS", "10")
    code, journal, summary = run_on_lab(lab, monkeypatch, tmp_path, "az-network-slowdown-fis")
    assert code == 0, summary["verdict_reasons"]
    [fault] = _faults(journal, "az_application_slowdown")
    _common_checks(lab, summary, fault, before, "fis-az-application-slowdown")
    assert (fault["impairment"]["availability_zone"], fault["impairment"]["delay_ms"]) == (before["az"], 200)
    start, end = _window(fault)
    assert 9.5 <= end - start <= 12.0
    assert [az for _, az in _network_events(lab, since, "started")] == [before["az"]]
    assert all(r["time_to_recover_seconds"] <= 5.0 for r in fault["recovery"].values()), fault["recovery"]
    run_dir = tmp_path / "az-network-slowdown-fis"
    baseline = _p95s(run_dir, 0, parse_time(fault["injected_at"]).timestamp())
    during = _p95s(run_dir, start + 1, end)
    assert baseline and during
    assert statistics.median(during) >= statistics.median(baseline) + 200, (baseline, during)


@pytest.mark.timeout(300)
def test_fis_cross_az_loss_impairs_the_flows_into_the_other_azs_and_loses_nothing(lab, monkeypatch, tmp_path):
    primaries_in_one_az(lab)
    before, since = _primaries(lab), time.time()
    monkeypatch.setenv("GAMEDAY_IMPAIRMENT_SECONDS", "10")
    code, journal, summary = run_on_lab(lab, monkeypatch, tmp_path, "cross-az-packet-loss-fis")
    assert code == 0, summary["verdict_reasons"]
    [fault] = _faults(journal, "cross_az_traffic_slowdown")
    _common_checks(lab, summary, fault, before, "fis-cross-az-traffic-slowdown")
    assert fault["impairment"]["loss_percent"] == 15
    started = {az for _, az in _network_events(lab, since, "started")}
    assert started and before["az"] not in started  # loss toward the other AZs, not inside its own
    assert all(az in fault["impairment"]["flows"] for az in started)
    assert all(r["time_to_recover_seconds"] <= 5.0 for r in fault["recovery"].values()), fault["recovery"]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_fis_isolation_keeps_checkout_down_for_the_whole_minute_and_fails_nothing_over(lab, monkeypatch, tmp_path):
    primaries_in_one_az(lab)
    before, since = _primaries(lab), time.time()
    code, journal, summary = run_on_lab(lab, monkeypatch, tmp_path, "az-network-isolation-fis")
    assert code == 0, summary["verdict_reasons"]
    [fault] = _faults(journal, "disrupt_az_connectivity")
    _common_checks(lab, summary, fault, before, "fis-az-connectivity-disruption")
    assert (fault["impairment"]["availability_zone"], fault["impairment"]["blackhole"]) == (before["az"], True)
    start, end = _window(fault)
    assert 59.5 <= end - start <= 62.0  # PT1M, FIS's shortest network action
    assert [az for _, az in _network_events(lab, since, "started")] == [before["az"]]
    # no checkout succeeds inside the cut, and every one tried after it does
    outage = _checkout_outage(tmp_path / "az-network-isolation-fis", start, end)
    assert end - start - 1.0 <= outage, (outage, end - start)
    _checkout_back_after(tmp_path / "az-network-isolation-fis", end)
    assert all(r["time_to_recover_seconds"] <= 10.0 for r in fault["recovery"].values()), fault["recovery"]
