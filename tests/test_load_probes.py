"""Probes over a run directory: windows of the live timeline, liveness, and the RPO check."""
import json
import math
import os
import subprocess
import sys
import time
import types

import pytest

from chaosext.errors import ActivityError
from chaosext.load import probes
from chaosext.load.probes import (acknowledged_orders_exist, error_ratio, latency_percentile,
                                  load_is_running, requests_in_window)
from chaosext.load.timeline import StepSecond
from load_helpers import ShopLog, place_orders
from test_load_control import closed_port_url

STOCK = "409 woocommerce_rest_product_out_of_stock"


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    """30 s of timeline ending now: checkout fails 503 in the last 5 s, browse is slow before.

    The probes read the clock pinned inside the second the timeline ends in: on a busy machine a
    second boundary between writing it and probing would shift every window by one second."""
    monkeypatch.delenv("GAMEDAY_RUN_DIR", raising=False)
    now = math.floor(time.time())
    monkeypatch.setattr(probes, "time", types.SimpleNamespace(time=lambda: now + 0.5))
    with open(tmp_path / "timeline.jsonl", "w") as fh:
        for t in range(now - 30, now):
            for step in ("browse", "checkout"):
                cell = StepSecond()
                for i in range(10):
                    recent = t >= now - 5
                    error = "503" if step == "checkout" and recent and i < 5 else None
                    error = STOCK if step == "checkout" and not recent and i == 0 else error
                    cell.add(200.0 if step == "browse" and not recent else 10.0 + i, error)
                fh.write(json.dumps(cell.to_line(t, step)) + "\n")
    return tmp_path


def config(run_dir):
    return {"gameday_run_dir": str(run_dir)}


def test_error_ratio_looks_only_at_the_window_and_the_step(run_dir):
    assert error_ratio(step="checkout", window=5, configuration=config(run_dir)) == 0.5
    assert error_ratio(window=5, configuration=config(run_dir)) == 0.25
    assert error_ratio(step="browse", window=20, configuration=config(run_dir)) == 0.0


def test_error_ratio_can_ignore_the_shops_normal_refusals(run_dir):
    before_fault = dict(step="checkout", window=25, configuration=config(run_dir))
    assert error_ratio(**before_fault) > 0.1
    assert error_ratio(ignore_errors=[STOCK], **before_fault) == pytest.approx(
        (5 * 5) / 250, rel=1e-6)


def test_latency_percentile_follows_the_window(run_dir):
    assert latency_percentile(step="browse", pct=95, window=5,
                              configuration=config(run_dir)) < 20
    assert latency_percentile(step="browse", pct=95, window=30,
                              configuration=config(run_dir)) == pytest.approx(200, rel=0.03)


def test_requests_in_window_by_outcome(run_dir, monkeypatch):
    monkeypatch.setenv("GAMEDAY_RUN_DIR", str(run_dir))  # the control exports it
    assert requests_in_window(step="checkout", window=5) == 50
    assert requests_in_window(step="checkout", window=5, outcome="failed") == 25
    assert requests_in_window(step="checkout", window=5, outcome="ok") == 25
    assert requests_in_window(window=1000, step="nope") == 0


def test_probes_without_a_run_dir_say_how_to_set_one(monkeypatch):
    monkeypatch.delenv("GAMEDAY_RUN_DIR", raising=False)
    with pytest.raises(ActivityError, match="gameday_run_dir"):
        error_ratio()


def test_load_is_running_follows_the_recorded_process(tmp_path):
    assert not load_is_running(run_dir=str(tmp_path))
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "load.pid").write_text(str(child.pid))
        (tmp_path / "timeline.jsonl").write_text("")
        assert load_is_running(run_dir=str(tmp_path))
        old = time.time() - 60
        os.utime(tmp_path / "timeline.jsonl", (old, old))
        assert not load_is_running(max_silence=10, run_dir=str(tmp_path))
    finally:
        child.kill()
        child.wait()
    assert not load_is_running(run_dir=str(tmp_path))


def write_ledger(run_dir, ids):
    with open(run_dir / "orders.jsonl", "w") as fh:
        for oid in ids:
            fh.write(json.dumps({"order_id": oid, "order_key": f"wc_order_{oid}", "t": 1.0}) + "\n")


@pytest.fixture(scope="module")
def real_orders(lab):
    """Five orders the lab's shop really placed (guest checkouts through the Store API)."""
    return place_orders(lab.env["GAMEDAY_SHOP_URL"], 5)


def credentials(lab):
    return {"consumer_key": lab.env["GAMEDAY_SHOP_CONSUMER_KEY"],
            "consumer_secret": lab.env["GAMEDAY_SHOP_CONSUMER_SECRET"]}


@pytest.mark.lab
@pytest.mark.parametrize("path", ["listing", "one-by-one"])
def test_rpo_check_names_every_acknowledged_order_the_shop_does_not_have(
        lab, real_orders, tmp_path, path):
    """Listing in batches (``include``); one GET per order when the shop refuses the listing
    (here: a ledger id that is not a number, which the shop answers 400 rest_invalid_param)."""
    never = max(real_orders) + 10 ** 6  # acknowledged, but no such order in the shop
    odd = never + 1 if path == "listing" else "wc-7"
    ledger = real_orders[:2] + [never] + real_orders[2:4] + [odd] + real_orders[4:]
    write_ledger(tmp_path, ledger)
    log = ShopLog(lab)
    result = acknowledged_orders_exist(run_dir=str(tmp_path), shop_url=lab.env["GAMEDAY_SHOP_URL"],
                                       batch_size=2 if path == "listing" else 100,
                                       **credentials(lab))
    assert result["checked"] == 7 and result["found"] == 5
    assert result["missing"] == [never, odd] and result["missing_count"] == 2
    asked = [(r["route"], r["status"]) for r in log.records()]
    if path == "listing":
        assert asked == [("orders", 200)] * 4  # 7 ids in batches of 2
    else:
        assert asked[0] == ("orders", 400)
        assert [r["path"] for r in log.records()[1:]] == [f"/wp-json/wc/v3/orders/{i}"
                                                          for i in ledger]


@pytest.mark.lab
def test_rpo_check_reads_credentials_from_secrets_and_refuses_wrong_ones(lab, real_orders,
                                                                         tmp_path):
    write_ledger(tmp_path, real_orders[:1])
    cfg = {"shop_url": lab.env["GAMEDAY_SHOP_URL"], "gameday_run_dir": str(tmp_path)}
    ok = acknowledged_orders_exist(configuration=cfg, secrets=credentials(lab))
    assert ok["checked"] == 1 and ok["missing_count"] == 0
    wrong = {**credentials(lab), "consumer_secret": "wrong"}
    with pytest.raises(ActivityError,
                       match="HTTP 401 woocommerce_rest_authentication_error .*consumer key"):
        acknowledged_orders_exist(configuration=cfg, secrets=wrong)


def test_rpo_check_of_an_empty_ledger_checks_nothing(tmp_path):
    """Nothing to look up, so nothing is asked: the shop URL here has no server behind it."""
    result = acknowledged_orders_exist(run_dir=str(tmp_path), shop_url=closed_port_url(),
                                       consumer_key="k", consumer_secret="s")
    assert result["checked"] == 0 and result["missing"] == []
