"""The shopper journey file and its recorder, run by Locust against the lab's real shop; what
the recorder wrote is checked against Locust's own report and the shop's access log."""
import json
import os
import subprocess
import sys
import threading

import pytest

from groundfloor.supervisor import poll_until

from chaosext.load.process import DEFAULT_LOCUSTFILE
from chaosext.load.timeline import read_lines, read_orders, totals
from load_helpers import (DB_DOWN, ROUTES, STOCK_REFUSALS, ShopLog, db_order_keys,
                          error_class, shop_settings)
from test_load_control import closed_port_url

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


def assert_locust_finished(result, run_dir):
    """Locust ran to its end: exit code 1 only because some request failed (the shop's stock
    refusals are normal), never a crash."""
    failed = locust_counts(run_dir)["Aggregated"][1]
    assert result.returncode == (1 if failed else 0), result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def once_checkouts_flow(run_dir, action, timeout=30.0):
    """Run ``action`` from a thread as soon as the timeline holds a checkout second, so the fault
    lands under load however long Locust took to start on a busy machine."""
    timeline = os.path.join(run_dir, "timeline.jsonl")

    def checkouts() -> bool:
        return os.path.exists(timeline) and any(ln["step"] == "checkout" for ln in read_lines(timeline))

    def body() -> None:
        if poll_until(checkouts, timeout, interval=0.05):
            action()
    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def locust_request_seconds(run_dir):
    """The whole seconds of Locust's own first and last request (its JSON report)."""
    with open(os.path.join(run_dir, "locust.json")) as fh:
        stats = [s for s in json.load(fh) if s["num_requests"]]
    return int(min(s["start_time"] for s in stats)), int(max(s["last_request_timestamp"] for s in stats))


@pytest.fixture
def shop(lab):
    """The lab's shop URL; the lab is idle again (DB failover finished) when the test ends."""
    yield lab.env["GAMEDAY_SHOP_URL"]
    lab.wait_idle()


@pytest.mark.lab
def test_short_run_writes_a_timeline_matching_locust_and_a_ledger_of_real_orders(
        lab, shop, tmp_path):
    log = ShopLog(lab)
    result = run_locust(shop, tmp_path)
    assert_locust_finished(result, tmp_path)
    t = totals(str(tmp_path / "timeline.jsonl"))
    counts = locust_counts(tmp_path)
    for step in ("browse", "product", "add_to_cart", "view_cart", "checkout"):
        assert t["steps"][step]["requests"] == counts[step][0] > 0
        # writes were accepted (Nonce/Cart-Token sent back): only sold-out products say no
        assert log.unexplained(t["steps"][step]["errors"], ROUTES[step]) == {}, step
    assert not [r for r in log.records() if r["status"] in (401, 403)]
    ledger = {o["order_id"]: o["order_key"] for o in read_orders(str(tmp_path / "orders.jsonl"))}
    assert ledger and db_order_keys(lab, ledger) == ledger  # real rows, with the keys answered
    lines = list(read_lines(str(tmp_path / "timeline.jsonl")))
    assert {(ln["t"], ln["step"]) for ln in lines}.__len__() == len(lines)  # one per second/step
    first, last = locust_request_seconds(tmp_path)  # the timeline spans the seconds Locust sent in
    assert abs(t["first_second"] - first) <= 1 and abs(t["last_second"] - last) <= 1, (t, first, last)
    assert t["last_second"] > t["first_second"]


@pytest.mark.lab
def test_checkout_failures_in_the_timeline_match_what_the_shop_answered_in_a_db_failover(
        lab, shop, tmp_path):
    log = ShopLog(lab)
    once_checkouts_flow(tmp_path, lambda: lab.failover_db(wait=False))  # DB endpoint unavailable ~1.5 s
    run_locust(shop, tmp_path, seconds=8,
               env={"SHOPPER_CHECKOUT_WEIGHT": "6", "SHOPPER_BROWSE_WEIGHT": "2"})
    checkout = totals(str(tmp_path / "timeline.jsonl"))["steps"]["checkout"]
    served = log.server_errors("checkout")
    assert served.get(DB_DOWN, 0) > 0, "the DB failover caused no failed checkout"
    assert log.unexplained(checkout["errors"], "checkout") == served == {DB_DOWN: served[DB_DOWN]}
    assert checkout["failures"] == sum(checkout["errors"].values())  # every failure classified
    assert checkout["requests"] > checkout["failures"]  # it recovered after the fault
    samples = json.loads((tmp_path / "load-errors.json").read_text())
    sample = next(s for s in samples if s["step"] == "checkout" and s["error"] == DB_DOWN)
    assert "Your cart is kept" in sample["message"]  # the shop's own WP REST message


@pytest.mark.lab
def test_carts_the_shop_forgot_are_counted_as_lost(lab, shop, tmp_path):
    """A one-second cart lifetime in Redis and shoppers who think longer: every cart expires
    between two steps although the shop answers each request with success."""
    log = ShopLog(lab)
    with shop_settings(lab, cart_ttl=1):
        run_locust(shop, tmp_path, seconds=5,
                   env={"SHOPPER_ADD_TO_CART_WEIGHT": "6", "SHOPPER_VIEW_CART_WEIGHT": "6",
                        "SHOPPER_BROWSE_WEIGHT": "0", "SHOPPER_PRODUCT_WEIGHT": "0",
                        "SHOPPER_CHECKOUT_WEIGHT": "0",
                        "SHOPPER_THINK_MIN": "1.2", "SHOPPER_THINK_MAX": "1.4"})
    t = totals(str(tmp_path / "timeline.jsonl"))
    assert t["carts_lost"] >= 1
    lost = sum(s["errors"].get("cart_lost", 0) for s in t["steps"].values())
    assert lost == t["carts_lost"]
    assert all(log.unexplained(s["errors"], ROUTES[step]).keys() <= {"cart_lost"}
               for step, s in t["steps"].items())
    # the shop said nothing was wrong: the loss is only visible to the shopper's own check
    carts = log.records("cart") + log.records("cart_add_item")
    assert carts and not [r for r in carts if r["status"] >= 400
                          and error_class(r) not in STOCK_REFUSALS]


@pytest.mark.lab
def test_worker_processes_report_into_one_timeline_and_ledger(lab, shop, tmp_path):
    log = ShopLog(lab)
    result = run_locust(shop, tmp_path, seconds=6, users=12, args=["--processes", "2"])
    assert_locust_finished(result, tmp_path)
    t = totals(str(tmp_path / "timeline.jsonl"))
    counts = locust_counts(tmp_path)
    assert t["requests"] == counts["Aggregated"][0]
    orders = read_orders(str(tmp_path / "orders.jsonl"))
    checkout = t["steps"]["checkout"]
    # every order a worker saw acknowledged reached the master's ledger...
    assert len(orders) == checkout["requests"] - checkout["failures"] > 0
    # ...and exists; the shop may have placed a few more, while Locust was stopping
    ledger = {o["order_id"]: o["order_key"] for o in orders}
    assert db_order_keys(lab, ledger) == ledger
    assert 0 <= log.answered("checkout", 200) - len(orders) <= 12


@pytest.mark.lab
def test_tags_limit_the_journey_to_the_named_steps(lab, shop, tmp_path):
    log = ShopLog(lab)
    run_locust(shop, tmp_path, seconds=3, args=["--tags", "browse", "product"])
    steps = set(totals(str(tmp_path / "timeline.jsonl"))["steps"])
    assert steps <= {"browse", "product", "view_cart"}  # view_cart: on_start's session fetch
    assert {"browse", "product"} <= steps
    assert {r["route"] for r in log.records()} <= {"products", "product", "cart"}


@pytest.mark.parametrize("env, words", [
    ({"SHOPPER_BROWSE_WEIGHT": "-1"}, "journey weights must be >= 0"),
    ({"SHOPPER_THINK_MIN": "3", "SHOPPER_THINK_MAX": "1"}, "--think-min"),
])
def test_bad_shopper_settings_stop_locust_with_one_clear_line(tmp_path, env, words):
    """Refused while Locust initialises, before any request: no shop needed."""
    result = run_locust(closed_port_url(), tmp_path, seconds=3, env=env)
    assert result.returncode != 0
    assert words in result.stderr and "Traceback" not in result.stderr
