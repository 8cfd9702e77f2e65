"""Probes over the live shopper load: error ratio, latency, traffic, liveness, and the RPO check.

The timeline probes read ``RUN_DIR/timeline.jsonl`` (``run_dir`` argument > configuration
``gameday_run_dir`` > ``$GAMEDAY_RUN_DIR``) and look at the last ``window`` seconds of wall-clock
time. The recorder writes a second once it is over (3 s later with Locust workers), so the newest
second or three are not yet visible: pick windows of 5 s or more. Every probe returns a plain
number or dict that a tolerance can judge, e.g.
``{"type": "range", "range": [0, 0.05]}`` on :func:`error_ratio`.
"""
from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Dict, List, Optional
from urllib.parse import quote, urlencode

from chaoslib.types import Configuration, Secrets

from chaosext import faultlog, unmeasured
from chaosext.errors import ActivityError
from chaosext.load.config import run_dir_of, shop_url_of
from chaosext.load.safeguard import spans_from_ledger
from chaosext.shop.rest import RestClient
from chaosext.load.timeline import percentile, read_orders, read_recent, window_stats
from groundfloor.supervisor import pid_alive

AFTER_FAULT_SETTLE = 3.0  # seconds after recovery before the steady state is judged again

__all__ = ["error_ratio", "errors_within_budget", "latency_percentile", "requests_in_window",
           "load_is_running", "acknowledged_orders_exist"]


def _window(window: float, step: Optional[str], run_dir: Optional[str],
            configuration: Configuration, after_faults: bool = False) -> Dict[str, Any]:
    if not window or window <= 0:
        raise ActivityError(f"load probe: window must be > 0 seconds (got {window!r})")
    rd = run_dir_of(configuration, run_dir)
    now = math.floor(time.time())
    since = now - float(window)
    if after_faults:  # the steady state after the outages, not their tail
        ends = [s.ended for s in spans_from_ledger(faultlog.read(rd), configuration)
                if s.ended is not None]  # a fault started without waiting has no known end
        since = max([since] + [e + AFTER_FAULT_SETTLE for e in ends])
    return window_stats(read_recent(os.path.join(rd, "timeline.jsonl"), since), step)


def error_ratio(step: Optional[str] = None, window: float = 10,
                ignore_errors: Optional[List[str]] = None, after_faults: bool = False,
                run_dir: Optional[str] = None, configuration: Configuration = None,
                secrets: Secrets = None) -> float:
    """Fraction (0..1) of shopper requests that failed in the last ``window`` seconds.

    ``step`` narrows it to one journey step (browse, product, add_to_cart, view_cart, checkout);
    ``ignore_errors`` lists error classes that are the shop's normal answers, not outages
    (e.g. ``["409 woocommerce_rest_product_out_of_stock"]``). With ``after_faults`` the window
    starts no earlier than a few seconds after the last fault of the run recovered (fault
    ledger): a steady-state check after a minutes-long failover judges the recovered shop, not
    the outage's tail (the outage itself is judged by its RTO and the safeguard). No requests
    in the window gives 0.0 (pair it with ``requests_in_window`` to catch a stall).
    """
    stats = _window(window, step, run_dir, configuration, after_faults)
    if not stats["requests"]:
        return 0.0
    ignored = sum(stats["errors"].get(k, 0) for k in (ignore_errors or []))
    return round((stats["failures"] - ignored) / stats["requests"], 6)


def errors_within_budget(max_ratio: float = 0.02, window: float = 30, step: Optional[str] = None,
                         ignore_errors: Optional[List[str]] = None, run_dir: Optional[str] = None,
                         configuration: Configuration = None, secrets: Secrets = None) -> Dict[str, Any]:
    """Check, as a method step, that shoppers saw at most ``max_ratio`` failed requests in the last
    ``window`` seconds (the fault just before it), and say which errors they saw.

    Returns {"met", "error_ratio", "requests", "failures", "errors"}: ``errors`` counts each error
    class (e.g. ``"503 woocommerce_rest_cache_unavailable (ReadOnlyError)"``), so a report shows
    whether clients met READONLY from a demoted primary, timeouts or refusals.
    """
    stats = _window(window, step, run_dir, configuration)
    ignored = set(ignore_errors or [])
    errors = {k: v for k, v in (stats.get("errors") or {}).items() if k not in ignored}
    failures = stats["failures"] - sum(v for k, v in (stats.get("errors") or {}).items() if k in ignored)
    ratio = round(failures / stats["requests"], 6) if stats["requests"] else 0.0
    return {"met": ratio <= float(max_ratio), "error_ratio": ratio, "max_ratio": float(max_ratio),
            "requests": stats["requests"], "failures": failures, "errors": errors, "window_seconds": window}


def latency_percentile(step: Optional[str] = None, pct: float = 95, window: float = 10,
                       run_dir: Optional[str] = None, configuration: Configuration = None,
                       secrets: Secrets = None) -> float:
    """The ``pct``-th percentile latency in ms of shopper requests in the last ``window`` seconds.

    Computed from the per-second histograms (5 % buckets), failures included; 0.0 when empty.
    """
    if not 0 < float(pct) <= 100:
        raise ActivityError(f"load probe: pct must be in (0, 100] (got {pct!r})")
    stats = _window(window, step, run_dir, configuration)
    return percentile(stats["hist"].items(), float(pct))


def requests_in_window(step: Optional[str] = None, window: float = 10, outcome: str = "all",
                       run_dir: Optional[str] = None, configuration: Configuration = None,
                       secrets: Secrets = None) -> int:
    """How many shopper requests completed in the last ``window`` seconds.

    ``outcome`` is ``all``, ``ok`` (succeeded) or ``failed``; ``step`` narrows it to one step.
    """
    if outcome not in ("all", "ok", "failed"):
        raise ActivityError(f"load probe: outcome must be all, ok or failed (got {outcome!r})")
    stats = _window(window, step, run_dir, configuration)
    return {"all": stats["requests"], "failed": stats["failures"],
            "ok": stats["requests"] - stats["failures"]}[outcome]


def load_is_running(max_silence: Optional[float] = None, run_dir: Optional[str] = None,
                    configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """True while the Locust process of this run is alive.

    With ``max_silence`` it must also have written its timeline within that many seconds
    (a Locust that is alive but measures nothing counts as not running).
    """
    rd = run_dir_of(configuration, run_dir)
    try:
        with open(os.path.join(rd, "load.pid")) as fh:
            pid = int(fh.read().strip())
    except (OSError, ValueError):
        return False
    if not pid_alive(pid):
        return False
    if max_silence is None:
        return True
    try:
        age = time.time() - os.path.getmtime(os.path.join(rd, "timeline.jsonl"))
    except OSError:
        age = time.time() - os.path.getmtime(os.path.join(rd, "load.pid"))
    return age <= float(max_silence)


def acknowledged_orders_exist(run_dir: Optional[str] = None, shop_url: Optional[str] = None,
                              consumer_key: Optional[str] = None,
                              consumer_secret: Optional[str] = None, batch_size: int = 100,
                              timeout: float = 10.0, configuration: Configuration = None,
                              secrets: Secrets = None) -> Dict[str, Any]:
    """Look up every order the shop acknowledged during the load (RPO): none may be missing.

    Reads ``RUN_DIR/orders.jsonl`` and asks the WooCommerce REST API v3
    (``GET /wp-json/wc/v3/orders?include=...``, in batches) which still exist, authenticated as
    the store accepts on its scheme: Basic over HTTPS, an OAuth 1.0a signature over HTTP. Returns
    ``{"checked", "found", "missing_count", "missing": [ids], "by_worker": {name: {"checked",
    "missing_count"}}}`` (split by the load worker that acknowledged each order); judge it with a
    jsonpath tolerance on ``$.missing_count`` == 0. Credentials come from the
    arguments, else secrets ``consumer_key``/``consumer_secret``, else
    ``$GAMEDAY_SHOP_CONSUMER_KEY``/``$GAMEDAY_SHOP_CONSUMER_SECRET``. Without keys the check is
    skipped (``"not_measured": true``, a warning, and the report says "not measured").
    """
    secrets = secrets or {}
    base = shop_url_of(configuration, shop_url)
    if not base:
        raise ActivityError("RPO check: no shop URL (pass shop_url, or set configuration "
                            "shop_url or $GAMEDAY_SHOP_URL)")
    key = consumer_key or secrets.get("consumer_key") or os.environ.get("GAMEDAY_SHOP_CONSUMER_KEY")
    secret = (consumer_secret or secrets.get("consumer_secret")
              or os.environ.get("GAMEDAY_SHOP_CONSUMER_SECRET"))
    if not key or not secret:
        unmeasured.skip("order RPO", "no WooCommerce REST consumer key/secret; set "
                        "GAMEDAY_SHOP_CONSUMER_KEY/_SECRET (read keys) to measure it", configuration)
        return {"checked": 0, "found": 0, "missing_count": 0, "missing": [], "not_measured": True}
    ledger = os.path.join(run_dir_of(configuration, run_dir), "orders.jsonl")
    orders = read_orders(ledger)
    ids = list(dict.fromkeys(o["order_id"] for o in orders))
    client = RestClient(base, key, secret, timeout)
    size = max(1, min(int(batch_size), 100))  # WooCommerce caps per_page at 100
    found: set = set()
    for i in range(0, len(ids), size):
        found |= _existing(client, ids[i:i + size])
    missing = [oid for oid in ids if oid not in found]
    return {"checked": len(ids), "found": len(ids) - len(missing),
            "missing_count": len(missing), "missing": missing, "ledger": ledger,
            "by_worker": _by_worker(orders, set(missing))}


def _by_worker(orders: List[dict], missing: set) -> Dict[str, Dict[str, int]]:
    """Checked and missing orders per load worker that acknowledged them (ledger ``worker``)."""
    out: Dict[str, Dict[str, int]] = {}
    seen: set = set()
    for order in orders:
        if order["order_id"] in seen:
            continue
        seen.add(order["order_id"])
        row = out.setdefault(str(order.get("worker") or "local"),
                             {"checked": 0, "missing_count": 0})
        row["checked"] += 1
        row["missing_count"] += order["order_id"] in missing
    return out


def _existing(client: RestClient, ids: List[Any]) -> set:
    """Which of ``ids`` the shop returns; falls back to one GET per order if ``include`` is unknown."""
    query = urlencode({"include": ",".join(str(i) for i in ids), "per_page": len(ids),
                       "status": "any", "_fields": "id"})
    status, body = _answer(client, f"/orders?{query}")
    if status == 200 and isinstance(body, list):
        wanted = {str(i): i for i in ids}
        return {wanted[str(o.get("id"))] for o in body
                if isinstance(o, dict) and str(o.get("id")) in wanted}
    if status not in (400, 404):
        raise ActivityError(_refusal("list orders", status, body, client.base_url))
    exists = set()
    for oid in ids:
        status, body = _answer(client, f"/orders/{quote(str(oid))}")
        if status == 200:
            exists.add(oid)
        elif status != 404:
            raise ActivityError(_refusal(f"read order {oid}", status, body, client.base_url))
    return exists


def _answer(client: RestClient, path: str):
    status, body = client.call("GET", path)
    if status == 0:
        raise ActivityError(f"RPO check: shop at {client.base_url} is unreachable ({body})")
    return status, body


def _refusal(what: str, status: int, body: Any, base: str) -> str:
    code = body.get("code") if isinstance(body, dict) else None
    hint = " (check the consumer key/secret and that it has read access)" \
        if status in (401, 403) else ""
    return f"RPO check: {base} refused to {what}: HTTP {status}" + (f" {code}" if code else "") + hint
