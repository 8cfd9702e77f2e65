"""A real 200 ms slowdown of the primaries' AZ under shopper load, measured by the report: the
lab's `/_lab/network` impairment (5 s), real Locust shoppers, the summary's per-step figures.
The fault result is the one the impairment contract describes (docs/reports.md, "Impairments")."""
import json
import time

import pytest
from chaoslib.experiment import run_experiment

from chaosext.load import control
from gameday.report import write_report
from groundfloor.supervisor import poll_until
from groundfloor.timefmt import iso

pytestmark = pytest.mark.lab

LAB = None
AZ, DELAY_MS, SECONDS = "us-east-1a", 200, 5


def pause(seconds: float) -> None:
    time.sleep(seconds)


def slow_down_az() -> dict:
    """Delay every flow into the AZ for SECONDS and return the fault result once it has ended."""
    applied = LAB.call(f"/_lab/network?az={AZ}&delay_ms={DELAY_MS}&seconds={SECONDS}")
    started = applied["impairment"]["started_at"]
    assert poll_until(lambda: not LAB.call("/_lab/network", method="GET")["impairments"],
                      SECONDS + 10, 0.05)
    ended = time.time()
    record = {"availability_zone": AZ, "direction": "both", "delay_ms": DELAY_MS, "jitter_ms": 0,
              "loss_percent": 0, "bandwidth_kbps": None, "blackhole": False, "partition": None,
              "flows": f"every flow into {AZ}", "duration_seconds": SECONDS,
              "started_at": iso(started), "ended_at": iso(ended)}
    return {"fault": "az-network-slowdown", "target": AZ, "method": "lab network impairment",
            "services": ["rds", "elasticache"], "kind": "impairment", "injected_at": iso(started),
            "control_plane_completed_at": iso(ended), "data_plane_writable_at": None,
            "rto_seconds": None, "control_plane_seconds": round(ended - started, 3),
            "recovery": {}, "before": {}, "after": None, "events": [], "impairment": record}


@pytest.fixture
def lab_shop(lab, monkeypatch):
    global LAB
    LAB = lab
    monkeypatch.delenv("GAMEDAY_RUN_DIR", raising=False)
    control.configure_control()
    yield lab
    control.cleanup_control()
    LAB.call("/_lab/network?clear=1")
    LAB = None


def action(func, **arguments):
    return {"type": "action", "name": func, "provider": {
        "type": "python", "module": "test_report_impairment_lab", "func": func,
        "arguments": arguments}}


def test_a_200_ms_slowdown_shows_in_checkout_and_recovers_within_5_s(lab_shop, tmp_path):
    env = lab_shop.env
    experiment = {
        "title": "AZ network slowdown", "description": "test",
        "configuration": {"shop_url": env["GAMEDAY_SHOP_URL"], "gameday_run_dir": str(tmp_path),
                          "impairment_thresholds": {"time_to_recover_seconds": 5,
                                                    "orders_lost": 0}},
        "secrets": {"shop": {"consumer_key": env["GAMEDAY_SHOP_CONSUMER_KEY"],
                             "consumer_secret": env["GAMEDAY_SHOP_CONSUMER_SECRET"]}},
        "controls": [{"name": "shopper-load", "provider": {
            "type": "python", "module": "chaosext.load.control",
            "arguments": {"users": 12, "spawn_rate": 12, "max_duration": 120, "warmup": 2,
                          "shopper": {"think_min": 0, "think_max": 0.2, "checkout_weight": 4}}}}],
        "method": [action("pause", seconds=8), action("slow_down_az"),
                   action("pause", seconds=8),
                   {"type": "probe", "name": "rpo", "provider": {
                       "type": "python", "module": "chaosext.load.probes", "secrets": ["shop"],
                       "func": "acknowledged_orders_exist"}}],
    }
    journal = run_experiment(experiment)
    assert journal["status"] == "completed"
    (tmp_path / "journal.json").write_text(json.dumps(journal, default=str))
    summary = write_report(str(tmp_path))["summary"]  # the whole report, charts included
    [fault] = summary["faults"]
    impact = fault["impairment_impact"]
    checkout = impact["steps"]["checkout"]
    assert checkout["during"]["requests"] > 0 and checkout["baseline"]["requests"] > 0
    assert checkout["p95_increase_ms"] >= DELAY_MS, checkout
    assert checkout["unavailable_seconds"] == 0
    assert checkout["recovered"] and checkout["time_to_recover_seconds"] <= 5, checkout
    assert impact["orders_lost"] == 0 and summary["rpo"]["orders_checked"] > 0
    failed = [c["message"] for c in impact["checks"] if c["outcome"] == "failed"]
    assert failed == [] and summary["verdict"] == "passed", (failed, summary["verdict_reasons"])
