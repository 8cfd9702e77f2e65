"""Waits derived from the RTO threshold, and the load bound that covers the whole experiment."""
import json
from pathlib import Path

import pytest
from chaoslib.configuration import load_configuration

from chaosext import thresholds
from chaosext.fault_model import ACTIVITIES, CATALOGUE, service_of_data_plane
from chaosext.load import control

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.json"))


def _declared(fault):
    return CATALOGUE[fault].services


@pytest.mark.parametrize("value, fault, target, expected", [
    (90, "rds-force-failover", "shop-db", 90.0),
    ("45", "elasticache-test-failover", None, 45.0),
    ({"rds": 180, "elasticache": 120}, "rds-force-failover", "shop-db", 180.0),
    ({"rds": 180, "shop-cache": 30, "default": 60}, "elasticache-test-failover", "shop-cache", 30.0),
    ({"rds-force-failover": 100, "rds": 180}, "rds-force-failover", "shop-db", 100.0),
    ({"default": 60}, "rds-reboot", "shop-db", 60.0),
    ('{"rds": 150}', "rds-force-failover", None, 150.0),
    ({"rds": 180}, "elasticache-test-failover", None, None),
    (None, "rds-force-failover", None, None),
    ("{not json", "rds-force-failover", None, None),
    ({"rds": 180, "elasticache": 120}, "db-primary-crash", "shop-db", 180.0),
    ({"rds": 180, "elasticache": 120}, "cache-primary-crash", "shop-cache", 120.0),
    ({"rds": 180, "elasticache": 120}, "fis-rds-reboot-db-instances", None, 180.0),
    ({"rds": 180, "elasticache": 120}, "fis-elasticache-interrupt-az-power", None, 120.0),
])
def test_thresholds_are_looked_up_by_fault_target_and_declared_service(value, fault, target,
                                                                       expected):
    (service,) = _declared(fault)
    assert thresholds.threshold_from(value, fault, target, service) == expected


def test_a_fault_gets_the_threshold_of_the_service_it_declares_never_of_its_name():
    value = {"rds": 180, "elasticache": 120, "default": 240}
    assert thresholds.threshold_from(value, "network-latency", None, "rds") == 180.0
    assert thresholds.threshold_from(value, "network-latency", None, "elasticache") == 120.0
    assert thresholds.threshold_from(value, "rds-lookalike", None, None) == 240.0  # declared none
    assert thresholds.threshold_from(value, "db-anything", None) == 240.0


def test_a_fault_of_two_services_gets_one_threshold_per_service_and_waits_for_the_longer():
    config = {"rto_threshold_seconds": {"rds": 180, "elasticache": 120, "default": 240}}
    services = _declared("fis-az-power-interruption")
    assert services == ("rds", "elasticache")
    assert thresholds.per_service(config["rto_threshold_seconds"], "fis-az-power-interruption",
                                  None, services) == {"rds": 180, "elasticache": 120}
    assert thresholds.fault_threshold(config, "fis-az-power-interruption", None, services) == 180.0
    assert thresholds.fault_timeout(config, "fis-az-power-interruption", None,
                                    services=services) == 360.0


def test_fault_timeouts_scale_with_the_threshold_unless_given():
    config = {"rto_threshold_seconds": {"rds": 180, "elasticache": 10}}
    rds, cache = ("rds",), ("elasticache",)
    assert thresholds.fault_timeout(config, "rds-force-failover", services=rds) == 360.0
    assert thresholds.fault_timeout(config, "elasticache-test-failover",
                                    services=cache) == 40.0  # threshold + 30 s
    assert thresholds.fault_timeout(config, "rds-force-failover", given=42, services=rds) == 42.0
    assert thresholds.fault_timeout({**config, "fault_timeout_factor": 3}, "rds-reboot",
                                    services=rds) == 540.0
    assert thresholds.fault_timeout(config, "rds-force-failover") == \
        thresholds.DEFAULT_FAULT_TIMEOUT  # no service declared: the name alone decides nothing
    assert thresholds.fault_timeout({}, "rds-force-failover", services=rds) == \
        thresholds.DEFAULT_FAULT_TIMEOUT
    assert thresholds.redundancy_timeout({}) == thresholds.DEFAULT_REDUNDANCY_TIMEOUT
    assert thresholds.redundancy_timeout({"redundancy_timeout_seconds": "900"}) == 900.0


def test_the_threshold_can_be_set_per_target_from_the_environment(monkeypatch):
    experiment = json.loads((ROOT / "experiments" / "gameday.json").read_text())
    default = load_configuration(experiment["configuration"])
    assert thresholds.rto_threshold(default, "rds-force-failover", "shop-db", "rds") == 180.0
    monkeypatch.setenv("GAMEDAY_RTO_THRESHOLD_SECONDS", '{"rds": 20, "elasticache": 15}')
    lab = load_configuration(experiment["configuration"])
    assert thresholds.rto_threshold(lab, "rds-force-failover", "shop-db", "rds") == 20.0
    assert thresholds.rto_threshold(lab, "elasticache-test-failover", "shop-cache",
                                    "elasticache") == 15.0


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_no_experiment_hard_codes_a_fault_wait(path):
    """Fault waits come from the threshold, so one file is right in the fast lab and on AWS."""
    experiment = json.loads(path.read_text())
    for activity in experiment["method"] + experiment.get("rollbacks", []):
        arguments = activity["provider"].get("arguments") or {}
        if activity["provider"].get("func") == "wait_for_experiments":
            continue  # bounded by the FIS experiment's own duration, not by an RTO
        assert "timeout" not in arguments and "within_seconds" not in arguments, activity["name"]
    load = next(c for c in experiment["controls"] if c["provider"]["module"] == "chaosext.load.control")
    assert "max_duration" not in load["provider"]["arguments"]


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_the_load_bound_covers_the_longest_run_of_every_experiment(path, monkeypatch):
    experiment = json.loads(path.read_text())
    load_args = next(c for c in experiment["controls"]
                     if c["provider"]["module"] == "chaosext.load.control")["provider"]["arguments"]
    monkeypatch.setenv("GAMEDAY_RTO_THRESHOLD_SECONDS", '{"rds": 300, "elasticache": 200}')
    config = load_configuration(experiment["configuration"])
    control.configure_control(configuration=config, experiment=experiment)
    bound = control._bound(load_args)
    waits = 0.0
    for activity in experiment["method"]:
        func, args = activity["provider"].get("func"), activity["provider"].get("arguments") or {}
        if func in ACTIVITIES:
            waits += thresholds.fault_timeout(config, ACTIVITIES[func],
                                              services=_declared(ACTIVITIES[func]))
        elif func == "wait_until_writable":
            waits += thresholds.fault_timeout(config, None,
                                              services=[service_of_data_plane(args["kind"])])
    pauses = sum((a.get("pauses") or {}).get("after", 0) for a in experiment["method"])
    assert waits >= 400  # each fault waits twice a 200-300 s threshold
    assert bound >= waits + pauses + load_args.get("warmup", 0)


def test_an_explicit_load_bound_shorter_than_the_experiment_is_kept_but_warned(caplog):
    experiment = json.loads((ROOT / "experiments" / "rds-force-failover.json").read_text())
    control.configure_control(configuration={"rto_threshold_seconds": 180},
                              experiment=experiment)
    assert control._bound({"max_duration": 300}) == 300
    assert "shorter than this experiment can last" in caplog.text
    assert control._bound({"max_duration": "auto"}) > 360
    control.configure_control(configuration={}, experiment=None)
    assert control._bound({"max_duration": "auto"}) is None  # LoadSettings' own default


def test_the_load_bound_covers_an_fis_cut_as_long_as_its_configuration_asks():
    """The FIS isolation's duration is "${cut_duration}": resolved from the configuration, a
    30-minute cut on AWS keeps the shoppers running for all of it."""
    experiment = json.loads((ROOT / "experiments" / "az-network-isolation-fis.json").read_text())
    short = load_configuration(experiment["configuration"])
    long = {**short, "cut_duration": "PT30M"}
    assert thresholds.experiment_seconds(experiment, long) - thresholds.experiment_seconds(experiment, short) == 1740
