"""The load control around real Chaos Toolkit runs against the lab's shop: Locust starts, stops,
and never stays behind; faults are the lab's (a DB failover) or the shop's own settings."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from chaoslib.exit import exit_ungracefully
from chaoslib.experiment import run_experiment
from chaoslib.extension import get_extension

from chaosext.load import control
from chaosext.load.timeline import read_orders
from groundfloor.supervisor import poll_until
from load_helpers import (DB_DOWN, STOCK_REFUSALS, ShopLog, db_order_keys, error_class,
                          locust_processes, shop_settings)

LAB = None  # the lab the python actions below act on


def break_checkout():
    LAB.failover_db(wait=False)  # the lab holds the DB endpoint unavailable ~1.5 s


def interrupt_now():
    exit_ungracefully()  # what a safeguard does: SIGUSR2, interrupted, rollbacks skipped


def pause(seconds: float = 2.0):
    time.sleep(seconds)


def experiment(run_dir, shop_url, method=None, arguments=None, probes=None, rollbacks=None):
    probes = probes if probes is not None else [
        {"type": "probe", "name": "load-running", "tolerance": True,
         "provider": {"type": "python", "module": "chaosext.load.probes",
                      "func": "load_is_running"}},
        {"type": "probe", "name": "checkout-healthy", "tolerance": {"type": "range", "range": [0, 0.01]},
         "provider": {"type": "python", "module": "chaosext.load.probes", "func": "error_ratio",
                      "arguments": {"step": "checkout", "window": 5,
                                    "ignore_errors": STOCK_REFUSALS}}}]
    return {
        "title": "load control", "description": "test",
        "configuration": {"shop_url": shop_url, "gameday_run_dir": str(run_dir)},
        "controls": [{"name": "shopper-load", "provider": {
            "type": "python", "module": "chaosext.load.control",
            "arguments": {"users": 4, "spawn_rate": 4, "max_duration": 120, "warmup": 2,
                          "stop_grace": 10, "shopper": {"think_min": 0, "think_max": 0.1,
                                                        "checkout_weight": 6},
                          **(arguments or {})}}}],
        "steady-state-hypothesis": {"title": "shop takes orders", "probes": probes},
        "method": method or [{"type": "action", "name": "pause", "provider": {
            "type": "python", "module": "test_load_control", "func": "pause"}}],
        "rollbacks": rollbacks or [],
    }


@pytest.fixture
def shop(lab):
    """The lab's shop URL; the lab is idle again (DB failover finished) when the test ends."""
    global LAB
    LAB = lab
    yield lab.env["GAMEDAY_SHOP_URL"]
    LAB = None
    lab.wait_idle()


@pytest.fixture(autouse=True)
def fresh_control(monkeypatch, tmp_path):
    monkeypatch.delenv("GAMEDAY_RUN_DIR", raising=False)
    control.configure_control()
    yield
    control.cleanup_control()


def summary_of(journal):
    return get_extension(journal, "gameday-load")


@pytest.mark.lab
def test_completed_run_stops_locust_and_journals_the_load(lab, shop, tmp_path):
    log = ShopLog(lab)
    journal = run_experiment(experiment(tmp_path, shop))
    assert journal["status"] == "completed" and not journal["deviated"]
    load = summary_of(journal)
    assert load["status"] == "stopped" and load["stopped_by"] == "SIGINT"
    ledger = {o["order_id"]: o["order_key"] for o in read_orders(str(tmp_path / "orders.jsonl"))}
    assert load["requests"] > 0 and load["orders_acknowledged"] == len(ledger) > 0
    assert db_order_keys(lab, ledger) == ledger  # every acknowledged order is a real row
    # the shop may have placed a few more: answered while Locust was stopping its 4 users
    assert 0 <= log.answered("checkout", 200) - len(ledger) <= 4
    assert json.loads((tmp_path / "load-summary.json").read_text())["requests"] == load["requests"]
    assert (tmp_path / "locust.html").exists() and (tmp_path / "locust_stats.csv").exists()
    assert not locust_processes(tmp_path) and not (tmp_path / "load.pid").exists()


@pytest.mark.lab
def test_deviated_run_stops_locust_after_rollbacks_and_counts_the_fault(lab, shop, tmp_path):
    log = ShopLog(lab)
    method = [{"type": "action", "name": "break-checkout", "provider": {
                  "type": "python", "module": "test_load_control", "func": "break_checkout"}},
              {"type": "action", "name": "pause", "provider": {
                  "type": "python", "module": "test_load_control", "func": "pause",
                  "arguments": {"seconds": 3}}}]
    journal = run_experiment(experiment(tmp_path, shop, method=method))
    assert journal["deviated"]
    load = summary_of(journal)
    assert load["reason"] == "after rollbacks"
    checkout = load["steps"]["checkout"]
    failed = log.unexplained(checkout["errors"], "checkout")
    assert set(failed) == {DB_DOWN} and failed[DB_DOWN] > 0
    assert failed == log.server_errors("checkout")  # every 503 the shop sent, and no other
    assert not locust_processes(tmp_path)


@pytest.mark.lab
def test_without_a_hypothesis_the_load_starts_before_the_method(shop, tmp_path):
    exp = experiment(tmp_path, shop)
    del exp["steady-state-hypothesis"]
    journal = run_experiment(exp)
    assert journal["status"] == "completed"
    assert summary_of(journal)["requests"] > 0 and not locust_processes(tmp_path)


@pytest.mark.lab
def test_interrupted_run_stops_locust_without_rollbacks(shop, tmp_path):
    method = [{"type": "action", "name": "plug", "provider": {
        "type": "python", "module": "test_load_control", "func": "interrupt_now"}}]
    journal = run_experiment(experiment(tmp_path, shop, method=method))
    assert journal["status"] == "interrupted"
    assert summary_of(journal)["reason"] == "experiment interrupted"
    assert not locust_processes(tmp_path)


def closed_port_url():
    """A loopback URL nothing listens on (the OS just handed the port out and took it back)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def assert_interrupted_naming(journal, run_dir, caplog, cause):
    assert journal["status"] == "interrupted"
    load = summary_of(journal)
    assert load["status"] == "failed" and cause in load["error"]
    assert cause in json.loads((run_dir / "load-summary.json").read_text())["error"]
    assert any(cause in r.getMessage() for r in caplog.records)
    assert not locust_processes(run_dir)


@pytest.mark.parametrize("arguments, host, cause", [
    ({"users": 0}, None, "users must be a whole number >= 1"),
    ({"locustfile": "/nonexistent/shopper.py"}, None, "locust file not found: /nonexistent/shopper.py"),
    ({}, None, "is unreachable (Connection refused)"),
    ({}, "http://192.0.2.10:80", "refusing to send shopper load to 192.0.2.10 (not loopback)"),
])
def test_bad_input_interrupts_the_run_with_one_message_naming_the_cause(
        tmp_path, caplog, arguments, host, cause):
    """Refused before any request: no shop needed (validation comes before the host check)."""
    journal = run_experiment(experiment(tmp_path, host or closed_port_url(), arguments=arguments))
    assert_interrupted_naming(journal, tmp_path, caplog, cause)


@pytest.mark.lab
def test_locust_exiting_during_start_up_interrupts_the_run_naming_its_last_line(
        shop, tmp_path, caplog):
    journal = run_experiment(experiment(tmp_path, shop,
                                        arguments={"shopper": {"browse_weight": -3}}))
    assert_interrupted_naming(journal, tmp_path, caplog, "Locust exited during start-up")
    assert "journey weights must be >= 0" in summary_of(journal)["error"]


@pytest.mark.lab
def test_store_refusing_checkout_is_named_in_the_summary(lab, shop, tmp_path):
    log = ShopLog(lab)
    with shop_settings(lab, payment_methods="bacs,cheque"):  # Cash on delivery switched off
        journal = run_experiment(experiment(tmp_path, shop, probes=[]))
    refused = "400 woocommerce_rest_checkout_payment_method_disabled"
    assert {error_class(r) for r in log.records("checkout")} == {refused}
    problems = " ".join(summary_of(journal)["problems"])
    assert "every checkout request failed" in problems and refused in problems
    assert "enable Cash on delivery" in problems and "acknowledged no order" in problems


# ---------------------------------------------------------------- the chaos CLI as a process

def chaos_run(tmp_path, shop_url, processes=1, **arguments):
    """`chaos run` of a long pause under load, returned once the load measures with all its
    `processes` (master and workers) and, with `web`, once Locust's UI listens."""
    exp = experiment(tmp_path / "run", shop_url, arguments=arguments, method=[
        {"type": "action", "name": "long-pause", "provider": {
            "type": "python", "module": "test_load_control", "func": "pause",
            "arguments": {"seconds": 60}}}])
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(exp))
    # this module is an activity of the run; the caller's path (a checkout under test) stays first
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (os.environ.get("PYTHONPATH"), os.path.dirname(__file__)) if p)}
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "chaos"), "--no-log-file",
                             "run", "--journal-path", str(tmp_path / "journal.json"), str(path)],
                            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    timeline = tmp_path / "run" / "timeline.jsonl"

    def ready():
        assert proc.poll() is None, "chaos ended before the load started"
        return (timeline.exists() and timeline.stat().st_size  # measuring, workers included
                and len(locust_processes(tmp_path / "run")) >= processes
                and ("web" not in arguments or _listens(WEB_PORT)))
    assert poll_until(ready, 60, 0.1), "load never started"
    return proc


def _listens(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_gone(run_dir, seconds):
    poll_until(lambda: not locust_processes(run_dir), seconds, 0.1)
    return locust_processes(run_dir)


@pytest.mark.lab
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_of_chaos_stops_locust_and_keeps_the_summary(shop, tmp_path, sig):
    # the signal lands while the control warms up: chaoslib turns SIGTERM into an interruption
    # there (inside a method activity it would only fail that activity)
    proc = chaos_run(tmp_path, shop, processes=3, workers=2, warmup=30)
    assert len(locust_processes(tmp_path / "run")) == 3  # master + 2 workers
    os.kill(proc.pid, sig)
    assert proc.wait(timeout=60) is not None
    assert not wait_gone(tmp_path / "run", 1)
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["status"] == "interrupted"
    assert summary_of(journal)["requests"] > 0
    assert json.loads((tmp_path / "run" / "load-summary.json").read_text())["stopped_by"] == "SIGINT"


WEB_PORT = int(os.environ.get("GAMEDAY_LAB_BASE_PORT", 25300)) + 72  # clear of the lab's ports


@pytest.mark.lab
@pytest.mark.parametrize("arguments, processes", [
    ({}, 1), ({"workers": 2}, 3), ({"web": f"127.0.0.1:{WEB_PORT}"}, 1)],
    ids=["one-process", "two-workers", "web-ui"])
def test_a_killed_chaos_process_takes_locust_with_it(shop, tmp_path, arguments, processes):
    proc = chaos_run(tmp_path, shop, processes, **arguments)
    assert len(locust_processes(tmp_path / "run")) == processes  # the master and its workers
    if "web" in arguments:  # Locust's UI answers while the load runs ...
        with socket.create_connection(("127.0.0.1", WEB_PORT), timeout=5):
            pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert not wait_gone(tmp_path / "run", 10)
    assert list((tmp_path / "run").glob("timeline.jsonl"))
    if "web" in arguments:  # ... and is gone with it (the UI, not the runner, kept Locust alive)
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", WEB_PORT)) != 0
