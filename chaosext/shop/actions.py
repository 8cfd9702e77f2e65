"""Shop-level actions: remember carts before a fault, and walk the DR runbook's end-to-end checkout
through a database failover (graceful 503 during it, success of the same cart after it)."""
import json
import os
import time
from typing import Any, Dict, Optional

from chaoslib.types import Configuration, Secrets

from chaosext import guardrails, timing
from chaosext.aws import aws_client
from chaosext.errors import ActivityError
from chaosext.load.config import run_dir_of
from chaosext.rds.probes import describe_instance
from chaosext.shop.client import STORE, StoreSession
from chaosext.shop.probes import CARTS_FILE
from groundfloor.timefmt import iso

__all__ = ["remember_carts", "warm_catalogue", "checkout_through_db_failover"]

MAX_WARM_PAGES = 500  # a catalogue bigger than this is not warmed page by page


def remember_carts(count: int = 5, items: int = 2, shop_url: Optional[str] = None,
                   run_dir: Optional[str] = None, configuration: Configuration = None,
                   secrets: Secrets = None) -> Dict[str, Any]:
    """Fill `count` guest carts and remember their tokens, so `remembered_carts_lost` can check
    after a cache failover that acknowledged carts survived."""
    remembered = []
    for _ in range(int(count)):
        session = StoreSession.for_configuration(configuration, shop_url)
        ok, why, added = session.fill_cart(items)
        if not ok:
            raise ActivityError(f"could not fill a cart to remember: {why}")
        remembered.append({"headers": dict(session.headers), "items": added})
    path = os.path.join(run_dir_of(configuration, run_dir), CARTS_FILE)
    with open(path, "w") as fh:
        json.dump(remembered, fh)
    return {"carts": len(remembered), "items_per_cart": items, "file": path}


def warm_catalogue(per_page: int = 20, products: bool = True, shop_url: Optional[str] = None,
                   configuration: Configuration = None, secrets: Secrets = None
                   ) -> Dict[str, Any]:
    """Read every product-list page (and product) once, so the shop's object cache holds them.

    A shop that has served traffic for a while has its catalogue in the object cache; a shop
    just started has not, and browsing a page nobody read yet fails while the database is down.
    Warming first makes "browsing survives a database failover" a claim about the cache, not
    about which pages the load happened to read. `per_page` must match what the shoppers ask
    for (the pack's Locust shoppers read 20 per page). Returns pages and products read.
    """
    session = StoreSession.for_configuration(configuration, shop_url)
    ids, page, pages = [], 1, 1
    while page <= min(pages, MAX_WARM_PAGES):
        reply = session.request("GET", f"{STORE}/products?per_page={int(per_page)}&page={page}")
        if reply.status != 200 or not isinstance(reply.body, list):
            raise ActivityError(f"warming the catalogue: page {page} answered {reply.status}")
        ids += [p["id"] for p in reply.body if isinstance(p, dict) and "id" in p]
        pages = int(reply.headers.get("X-WP-TotalPages") or 1)
        page += 1
    for product_id in ids if products else []:
        reply = session.request("GET", f"{STORE}/products/{product_id}")
        if reply.status != 200:
            raise ActivityError(f"warming the catalogue: product {product_id} answered "
                                f"{reply.status}")
    return {"pages": page - 1, "products": len(ids) if products else 0}


def checkout_through_db_failover(db_instance_identifier: str, wait_for_fault: float = 120.0,
                                 timeout: Optional[float] = None, interval: float = 0.2,
                                 shop_url: Optional[str] = None, configuration: Configuration = None,
                                 secrets: Secrets = None) -> Dict[str, Any]:
    """Fill a cart, wait until the DB instance leaves `available`, then check out the same cart
    until it succeeds. Run it in the background beside the failover action.

    Fails when the shop answered anything but the graceful 503 (with Retry-After) during the
    outage, when a request hung past its timeout, or when the cart never checked out within
    `timeout` seconds of the fault (default: as long as the failover action waits, twice the
    configured RTO threshold; chaosext.timing).
    """
    if guardrails.is_dry_run(configuration):
        return {"dry_run": True, "skipped": "no failover happens in a dry run"}
    timeout = timing.fault_timeout(configuration, "rds-force-failover", db_instance_identifier,
                                   timeout)
    session = StoreSession.for_configuration(configuration, shop_url, timeout=10.0)
    ok, why, added = session.fill_cart(1)
    if not ok:
        raise ActivityError(f"checkout journey: {why}")
    rds = aws_client("rds", configuration, secrets)
    deadline = time.monotonic() + float(wait_for_fault)
    while True:
        status = describe_instance(rds, db_instance_identifier)["DBInstanceStatus"]
        if status != "available":
            break
        if time.monotonic() > deadline:
            raise ActivityError(f"checkout journey: {db_instance_identifier} stayed available for "
                                f"{wait_for_fault:g} s; no failover to check out through")
        time.sleep(0.05)
    fault_seen = time.time()
    statuses: Dict[str, int] = {}
    deadline = time.monotonic() + float(timeout)
    first_503 = None
    while time.monotonic() < deadline:
        reply = session.checkout()
        key = str(reply.status or reply.body.get("code"))
        statuses[key] = statuses.get(key, 0) + 1
        if reply.status in (200, 201) and isinstance(reply.body, dict) and reply.body.get("order_id"):
            return {"db_instance": db_instance_identifier, "fault_seen_at": iso(fault_seen),
                    "first_503_at": iso(first_503) if first_503 else None, "completed_at": iso(time.time()),
                    "order_id": reply.body["order_id"], "statuses": statuses, "items": added,
                    "saw_graceful_503": first_503 is not None}
        if reply.status == 503 and reply.headers.get("Retry-After"):
            first_503 = first_503 or time.time()
        else:  # a 500, a hang, a 503 without Retry-After, or a refusal (e.g. the cart was lost)
            code = reply.body.get("code") if isinstance(reply.body, dict) else reply.body
            raise ActivityError(f"checkout during the DB failover was not graceful: {reply.status or 'no answer'} "
                                f"{code} after {reply.seconds:.1f} s (answers so far: {statuses})")
        time.sleep(float(interval))
    raise ActivityError(f"the same cart did not check out within {timeout:g} s after the fault "
                        f"(answers: {statuses})")
