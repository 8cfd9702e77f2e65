"""The shopper journey file and its recorder, run by Locust against the Store API double."""
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from chaosext.load.process import DEFAULT_LOCUSTFILE
from chaosext.load.timeline import read_lines, read_orders, totals
from test_load_stubshop import DB_DOWN, StubShop

FAST = {"SHOPPER_THINK_MIN": "0", "SHOPPER_THINK_MAX": "0.05"}


def run_locust(host, run_dir, seconds=5, users=8, args=(), env=None):
    cmd = [sys.executable, "-m", "locust", "-f", DEFAULT_LOCUSTFILE, "--headless",
           "-u", str(users), "-r", str(users), "--run-time", f"{seconds}s", "--host", host,
           "--only-summary", "--json-file", os.path.join(run_dir, "locust"), *args]
    return subprocess.run(cmd, env={**os.environ, "GAMEDAY_RUN_DIR": str(run_dir), **FAST,
                                    **(env or {})},
                          capture_output=True, text=True, timeout=seconds + 60)


def locust_counts(run_dir):
    """Locust's own final per-step counts (its JSON report is written after the last request)."""
    with open(os.path.join(run_dir, "locust.json")) as fh:
        stats = json.load(fh)
    counts = {s["name"]: (s["num_requests"], s["num_failures"]) for s in stats}
    counts["Aggregated"] = tuple(sum(c[i] for c in counts.values()) for i in (0, 1))
    return counts


def during(seconds_from, seconds_to, on, off):
    """Flip a fault on and off from a timer thread while Locust runs."""
    def flip():
        time.sleep(seconds_from)
        on()
        time.sleep(seconds_to - seconds_from)
        off()
    thread = threading.Thread(target=flip, daemon=True)
    thread.start()
    return thread


def test_short_run_writes_a_timeline_matching_locust_and_a_ledger_of_real_orders(tmp_path):
    with StubShop() as shop:
        result = run_locust(shop.url, tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        t = totals(str(tmp_path / "timeline.jsonl"))
        counts = locust_counts(tmp_path)
        for step in ("browse", "product", "add_to_cart", "view_cart", "checkout"):
            assert t["steps"][step]["requests"] == counts[step][0] > 0
        assert t["failures"] == 0  # writes were accepted: Nonce/Cart-Token were sent back
        orders = read_orders(str(tmp_path / "orders.jsonl"))
        assert orders and {o["order_id"] for o in orders} <= set(shop.orders)
        assert all(o["order_key"] == f"wc_order_{o['order_id']}" for o in orders)
        lines = list(read_lines(str(tmp_path / "timeline.jsonl")))
        assert {(ln["t"], ln["step"]) for ln in lines}.__len__() == len(lines)  # one per second/step
        assert t["last_second"] - t["first_second"] >= 4


def test_checkout_failures_in_the_timeline_match_the_faults_the_shop_injected(tmp_path):
    with StubShop() as shop:
        def on():
            shop.checkout_error = DB_DOWN

        def off():
            shop.checkout_error = None
        during(1.5, 3.5, on, off)
        run_locust(shop.url, tmp_path, seconds=6,
                   env={"SHOPPER_CHECKOUT_WEIGHT": "6", "SHOPPER_BROWSE_WEIGHT": "2"})
        checkout = totals(str(tmp_path / "timeline.jsonl"))["steps"]["checkout"]
        assert shop.checkout_failures > 0
        assert checkout["errors"] == {"503 gameday_db_unavailable": shop.checkout_failures}
        assert checkout["failures"] == shop.checkout_failures
        assert checkout["requests"] > checkout["failures"]  # it recovered after the fault
        samples = json.loads((tmp_path / "load-errors.json").read_text())
        assert {"step": "checkout", "error": "503 gameday_db_unavailable",
                "message": DB_DOWN[2]} in samples


def test_carts_the_shop_forgot_are_counted_as_lost(tmp_path):
    with StubShop() as shop:
        during(2.0, 2.0, shop.forget_carts, lambda: None)
        run_locust(shop.url, tmp_path, seconds=5,
                   env={"SHOPPER_ADD_TO_CART_WEIGHT": "6", "SHOPPER_VIEW_CART_WEIGHT": "6",
                        "SHOPPER_CHECKOUT_WEIGHT": "0"})
        t = totals(str(tmp_path / "timeline.jsonl"))
        assert t["carts_lost"] >= 1
        lost = sum(s["errors"].get("cart_lost", 0) for s in t["steps"].values())
        assert lost == t["carts_lost"]


def test_worker_processes_report_into_one_timeline_and_ledger(tmp_path):
    with StubShop() as shop:
        result = run_locust(shop.url, tmp_path, seconds=6, users=12, args=["--processes", "2"])
        assert result.returncode == 0, result.stderr[-2000:]
        t = totals(str(tmp_path / "timeline.jsonl"))
        counts = locust_counts(tmp_path)
        assert t["requests"] == counts["Aggregated"][0]
        orders = read_orders(str(tmp_path / "orders.jsonl"))
        checkout = t["steps"]["checkout"]
        # every order a worker saw acknowledged reached the master's ledger...
        assert len(orders) == checkout["requests"] - checkout["failures"] > 0
        # ...and exists; the shop may hold a few more, committed while Locust was stopping
        assert {o["order_id"] for o in orders} <= set(shop.orders)
        assert len(shop.orders) - len(orders) <= 12


def test_tags_limit_the_journey_to_the_named_steps(tmp_path):
    with StubShop() as shop:
        run_locust(shop.url, tmp_path, seconds=3, args=["--tags", "browse", "product"])
        steps = set(totals(str(tmp_path / "timeline.jsonl"))["steps"])
        assert steps <= {"browse", "product", "view_cart"}  # view_cart: on_start's session fetch
        assert "checkout" not in steps and not shop.orders


@pytest.mark.parametrize("env, words", [
    ({"SHOPPER_BROWSE_WEIGHT": "-1"}, "journey weights must be >= 0"),
    ({"SHOPPER_THINK_MIN": "3", "SHOPPER_THINK_MAX": "1"}, "--think-min"),
])
def test_bad_shopper_settings_stop_locust_with_one_clear_line(tmp_path, env, words):
    with StubShop() as shop:
        result = run_locust(shop.url, tmp_path, seconds=3, env=env)
        assert result.returncode != 0
        assert words in result.stderr and "Traceback" not in result.stderr
