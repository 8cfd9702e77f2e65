"""Gray-failure game days on the lab (chaosext.network): the shortest meaningful form of each
experiment, read from the run's own files, a bad AZ refused by the lab, and the rollback that
lifts the impairment after SIGTERM to `gameday run`."""
import json
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from chaosext.errors import ActivityError, GuardrailRefused
from chaosext.network import actions
from groundfloor.supervisor import poll_until
from groundfloor.timefmt import parse_time
from test_experiments import primaries_in_one_az, run_on_lab


def _faults(journal: dict, func: str) -> list:
    return [r["output"] for r in journal["run"]
            if r["activity"]["provider"].get("func") == func and r["status"] == "succeeded"]


def _checkout_seconds(run_dir: Path) -> dict:
    """second -> successful checkouts in it, from the run's timeline.jsonl."""
    found = {}
    for line in (run_dir / "timeline.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["step"] == "checkout":
            found[row["t"]] = found.get(row["t"], 0) + row["requests"] - row["failures"]
    return found


def _p95s(run_dir: Path, since: float, until: float) -> list:
    rows = [json.loads(line) for line in (run_dir / "timeline.jsonl").read_text().splitlines()]
    return [r["p95"] for r in rows if r["step"] == "checkout" and since <= r["t"] < until
            and r["requests"] and r.get("p95") is not None]


def _window(fault: dict) -> tuple:
    imp = fault["impairment"]
    return parse_time(imp["started_at"]).timestamp(), parse_time(imp["ended_at"]).timestamp()


def _checkout_back_after(run_dir: Path, end: float, until: float = float("inf")) -> None:
    """Checkout works again as soon as shoppers try it after a cut: no checkout completing from
    2 s after `end` on failed for an outage (a 4xx is the shopper's own cart, e.g. an empty cart
    after a session restart; in-flight requests are released at `end`, so none of the cut's
    timeouts can land that late), and at least one succeeded after it. When the first shopper
    tries is the load's random task mix, not the lab's recovery, so it is not bounded here.
    `until`: where the next fault begins."""
    after = _errors(run_dir, "checkout", int(end) + 2, until)
    assert not {code: n for code, n in after.items() if not code.startswith("4")}, after
    assert any(end < t < until for t, n in _checkout_seconds(run_dir).items() if n > 0), \
        "no checkout succeeded after the cut"


def _checkout_outage(run_dir: Path, start: float, end: float = None) -> float:
    """Seconds from `start` until the first timeline second that begins after it with a
    successful checkout; with `end`, no second wholly inside [start, end] may have one."""
    ok = {t for t, n in _checkout_seconds(run_dir).items() if n > 0}
    if end is not None:
        inside = sorted(t for t in ok if start <= t and t + 1 <= end)
        assert not inside, f"checkouts succeeded during the cut at {inside}"
    return min(t for t in ok if t > start) - start


@pytest.mark.lab
@pytest.mark.timeout(300)
def test_slowdown_of_200_ms_raises_checkout_p95_by_200_ms_recovers_fast_and_loses_nothing(
        lab, monkeypatch, tmp_path):
    primaries_in_one_az(lab)
    monkeypatch.setenv("GAMEDAY_IMPAIRMENT_SECONDS", "10")
    code, journal, summary = run_on_lab(lab, monkeypatch, tmp_path, "az-network-slowdown")
    assert code == 0, summary["verdict_reasons"]
    [fault] = _faults(journal, "impair_az_network")
    assert fault["kind"] == "impairment" and fault["impairment"]["delay_ms"] == 200
    start, end = _window(fault)
    assert 9.5 <= end - start <= 11.0
    assert fault["after"]["moved"] == []  # a slowdown fails nothing over
    for service, entry in fault["recovery"].items():
        assert entry["time_to_recover_seconds"] <= 5.0, (service, entry)
    run_dir = tmp_path / "az-network-slowdown"
    baseline = _p95s(run_dir, 0, parse_time(fault["injected_at"]).timestamp())
    during = _p95s(run_dir, start + 1, end)
    assert baseline and during
    assert statistics.median(during) >= statistics.median(baseline) + 200, (baseline, during)
    assert summary["rpo"]["orders_acknowledged"] > 0 and summary["rpo"]["orders_lost"] == 0
    assert lab.call("/_lab/network", "GET")["impairments"] == []


def _cache_nodes_outside_the_primarys_az(lab) -> int:
    nodes = lab.snapshot()["cache_clusters"].values()
    primary_az = next(n["az"] for n in nodes if n["role"] == "primary")
    return sum(1 for n in nodes if n["az"] != primary_az)


def _errors(run_dir: Path, step: str, since: float, until: float) -> dict:
    found: dict = {}
    for line in (run_dir / "timeline.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["step"] == step and since <= row["t"] < until:
            for key, count in (row.get("errors") or {}).items():
                found[key] = found.get(key, 0) + count
    return found


@pytest.mark.lab
@pytest.mark.timeout(300)
def test_isolation_keeps_checkout_down_for_the_whole_cut_and_explicit_failovers_move_the_writers_out(
        lab, monkeypatch, tmp_path):
    primaries_in_one_az(lab)
    # the shortest cut that can tell the two apart: requests in flight when the cut starts hang
    # for the shopper's 10 s timeout (and the shop's 5 s ones) whatever fails over, so the
    # explicit failovers can only end checkout's outage sooner when the cut is clearly longer
    cut = 20.0
    monkeypatch.setenv("GAMEDAY_CUT_SECONDS", f"{cut:g}")
    replicas_outside = _cache_nodes_outside_the_primarys_az(lab) - 1  # one becomes the primary
    code, journal, summary = run_on_lab(lab, monkeypatch, tmp_path, "az-network-isolation")
    assert code == 0, summary["verdict_reasons"]
    alone, with_failover = _faults(journal, "impair_az_network")
    assert alone["after"]["moved"] == [] and alone["after"]["primaries"] == alone["before"]["primaries"]
    run_dir = tmp_path / "az-network-isolation"
    start, end = _window(alone)
    outage = _checkout_outage(run_dir, start, end)
    assert end - start - 2.0 <= outage, (outage, end - start)
    second = parse_time(with_failover["injected_at"]).timestamp()
    _checkout_back_after(run_dir, end, until=second)
    failovers = _faults(journal, "force_failover") + _faults(journal, "test_failover")
    assert len(failovers) == 2
    # each failover makes its endpoint writable again well before the cut ends
    assert all(0 < f["rto_seconds"] < cut - 2.0 for f in failovers), failovers
    cache_back = max(parse_time(f["data_plane_writable_at"]).timestamp() for f in failovers)
    if replicas_outside:  # the new cache primary has a replica to acknowledge carts (WAIT 1)
        assert _checkout_outage(run_dir, second) < outage - 2.0
    else:  # its only replica is the old primary, in the cut AZ: carts are refused, not lost
        refused = _errors(run_dir, "add_to_cart", cache_back, second + cut)
        assert refused.get("503 woocommerce_rest_cart_not_replicated"), refused
    assert summary["rpo"]["orders_lost"] == 0 and summary["rpo"]["carts_lost"] == 0


@pytest.mark.lab
def test_an_az_the_lab_does_not_have_is_refused_in_one_line_and_nothing_changes(lab, monkeypatch):
    lab.aws_env(monkeypatch)
    config = {"db_instance_id": "shop-db", "replication_group_id": "shop-cache",
              "lab_control_url": lab.env["AWS_ENDPOINT_URL"]}
    with pytest.raises(ActivityError, match="unknown AZ 'us-east-1z'") as refused:
        actions.impair_az_network("us-east-1z", delay_ms=200, duration_seconds=5, configuration=config)
    assert "\n" not in str(refused.value)
    assert lab.call("/_lab/network", "GET")["impairments"] == []


@pytest.mark.lab
def test_dry_run_and_guardrails_change_nothing(lab, monkeypatch):
    lab.aws_env(monkeypatch)
    config = {"db_instance_id": "shop-db", "replication_group_id": "shop-cache",
              "lab_control_url": lab.env["AWS_ENDPOINT_URL"]}
    dry = actions.impair_az_network(blackhole=True, duration_seconds=30, dry_run=True, configuration=config)
    assert dry["dry_run"] is True and dry["fault"] == "az-network-isolation"
    assert dry["would"].startswith("would impair every connection to and from us-east-1")
    assert dry["impairment"]["started_at"] is None
    with pytest.raises(GuardrailRefused, match="shop-db"):
        actions.impair_az_network(delay_ms=200, duration_seconds=30,
                                  configuration={**config, "aws_allowed_resources": "other-db"})
    assert lab.call("/_lab/network", "GET")["impairments"] == []
    assert actions.STARTED == []


@pytest.mark.lab
@pytest.mark.timeout(240)
def test_sigterm_to_gameday_run_lifts_the_impairment_through_the_rollback(lab, tmp_path):
    primaries_in_one_az(lab)
    env = {**os.environ, "GAMEDAY_REPORTS_DIR": str(tmp_path), "GAMEDAY_LAB_STATE_DIR": str(lab.state_dir),
           "GAMEDAY_IMPAIRMENT_SECONDS": "600"}
    proc = subprocess.Popen([sys.executable, "-m", "gameday.cli", "run", "az-network-slowdown", "--users", "4",
                             "--run-id", "sigterm"], cwd=tmp_path, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def impaired():
        assert proc.poll() is None, proc.stdout.read()
        return bool(lab.call("/_lab/network", "GET")["impairments"])
    assert poll_until(impaired, 120, 0.2), "the impairment never started"
    os.kill(proc.pid, signal.SIGTERM)  # gameday alone, as `timeout` or a cancelled CI job does
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 143, output
    assert lab.call("/_lab/network", "GET")["impairments"] == []  # 600 s were asked: the rollback lifted it
    journal = json.loads((tmp_path / "sigterm" / "journal.json").read_text())
    assert journal["status"] == "interrupted"
    [rollback] = journal["rollbacks"]
    assert rollback["activity"]["name"] == "lift-network-impairments"
    assert len(rollback["output"]["cleared"]) == 1 and rollback["output"]["in_force"] == []


def _error_ratio(run_dir: Path, since: float, until: float) -> float:
    rows = [json.loads(line) for line in (run_dir / "timeline.jsonl").read_text().splitlines()]
    inside = [r for r in rows if since <= r["t"] < until]
    requests = sum(r["requests"] for r in inside)
    return sum(r["failures"] for r in inside) / requests if requests else 0.0


@pytest.mark.lab
@pytest.mark.timeout(400)
def test_cache_latency_hurts_the_stock_redis_settings_more_than_the_hardened_ones(lab, monkeypatch, tmp_path):
    monkeypatch.setenv("GAMEDAY_IMPAIRMENT_SECONDS", "10")
    ratios = {}
    for profile in ("stock", "hardened"):
        code, journal, summary = run_on_lab(lab, monkeypatch, tmp_path / profile, "cache-latency",
                                            shop_settings={"profile": profile})
        [fault] = _faults(journal, "impair_az_network")
        assert fault["fault"] == "cache-latency" and fault["services"] == ["elasticache"]
        assert fault["impairment"]["service"] == "cache" and "cache nodes" in fault["impairment"]["flows"]
        assert list(fault["recovery"]) == ["elasticache"]  # the database is not part of this fault
        assert fault["recovery"]["elasticache"]["time_to_recover_seconds"] <= 5.0
        assert summary["rpo"]["orders_lost"] == 0
        start, end = _window(fault)
        ratios[profile] = _error_ratio(tmp_path / profile / "cache-latency", start + 1, end)
    # one-second timeouts without retries fail under 1.2 s round trips; 5 s timeouts ride them out
    assert ratios["stock"] > 0.5 and ratios["hardened"] < ratios["stock"] / 2, ratios


@pytest.mark.lab
@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", ["az-network-slowdown", "cache-latency", "cross-az-packet-loss"])
def test_full_form_of_the_gray_failure_experiment_passes_and_loses_nothing(lab, monkeypatch, tmp_path, name):
    primaries_in_one_az(lab)
    code, journal, summary = run_on_lab(lab, monkeypatch, tmp_path, name)
    assert code == 0, summary["verdict_reasons"]
    [fault] = _faults(journal, "impair_az_network")
    start, end = _window(fault)
    assert 19.5 <= end - start <= 21.0 and fault["after"]["moved"] == []
    assert all(r["time_to_recover_seconds"] <= 5.0 for r in fault["recovery"].values()), fault["recovery"]
    assert summary["rpo"]["orders_acknowledged"] > 0 and summary["rpo"]["orders_lost"] == 0


@pytest.mark.lab
@pytest.mark.timeout(300)
def test_cross_az_packet_loss_stalls_checkout_fails_nothing_over_and_loses_nothing(lab, monkeypatch, tmp_path):
    primaries_in_one_az(lab)
    # the experiment's own 20 s: its verdict judges checkout's p95 in the window, and over the
    # ~9 checkouts of a 10 s window that p95 is simply the slowest one
    monkeypatch.setenv("GAMEDAY_IMPAIRMENT_SECONDS", "20")
    code, journal, summary = run_on_lab(lab, monkeypatch, tmp_path, "cross-az-packet-loss")
    assert code == 0, summary["verdict_reasons"]
    [fault] = _faults(journal, "impair_az_network")
    assert fault["kind"] == "impairment" and fault["impairment"]["loss_percent"] == 15
    assert fault["after"]["moved"] == []
    assert all(r["time_to_recover_seconds"] <= 5.0 for r in fault["recovery"].values()), fault["recovery"]
    run_dir = tmp_path / "cross-az-packet-loss"
    start, end = _window(fault)
    baseline = _p95s(run_dir, 0, parse_time(fault["injected_at"]).timestamp())
    during = _p95s(run_dir, start + 1, end)
    # a lost chunk waits at least one 200 ms retransmission timeout; checkout sends many
    assert statistics.median(during) >= statistics.median(baseline) + 200, (baseline, during)
    assert summary["rpo"]["orders_acknowledged"] > 0 and summary["rpo"]["orders_lost"] == 0
