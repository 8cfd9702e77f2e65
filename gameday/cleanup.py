"""`gameday cleanup RUN_DIR`: cancel (or trash) the orders one run placed, and optionally fail
the resources back to where they were before the run.

Only orders whose customer note is exactly this run's mark are touched (see
`chaosext.shop.marker`); they are found among the ids the load acknowledged and the newest orders
of the store. Writing needs REST keys with write access, given explicitly as
GAMEDAY_SHOP_WRITE_CONSUMER_KEY / GAMEDAY_SHOP_WRITE_CONSUMER_SECRET (the read keys of a run are
never enough). Cancelling gives the stock back, as WooCommerce does for a cancelled order.
"""
import json
import os
from pathlib import Path
from typing import Dict, List, Optional, Set

from chaosext.errors import GamedayError, Refused
from chaosext.load.timeline import read_orders
from chaosext.shop.marker import is_marked
from chaosext.shop.rest import RestClient

from .preflight import guards
from groundfloor import run_files

__all__ = ["cleanup", "run_orders", "read_target"]

WRITE_KEY_ENV = ("GAMEDAY_SHOP_WRITE_CONSUMER_KEY", "GAMEDAY_SHOP_WRITE_CONSUMER_SECRET")
DONE = {"cancelled": ("cancelled", "trash"), "trash": ("trash",)}


def read_target(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / run_files.TARGET).read_text())
    except (OSError, ValueError):
        raise GamedayError(f"{run_dir} has no readable target.json: give the directory of a "
                           "`gameday run` (reports/<run-id>)") from None


def _client(target: dict) -> RestClient:
    shop = (target.get("endpoints") or {}).get("shop")
    if not shop:
        raise GamedayError("target.json names no shop URL: this run placed no orders through the pack")
    if target.get("kind") == "aws" and guards.is_loopback_url(shop):
        raise Refused(f"cleanup refused: target.json of an AWS run names a loopback shop {shop} "
                      "(the lab's); nothing was changed")
    key, secret = (os.environ.get(name) for name in WRITE_KEY_ENV)
    if not key or not secret:
        raise GamedayError(f"cleanup writes orders: set {WRITE_KEY_ENV[0]} and {WRITE_KEY_ENV[1]} "
                           "(REST keys with write access)")
    return RestClient(shop, key, secret)


def _check(status: int, body, what: str) -> None:
    if status != 200:
        why = body.get("message") if isinstance(body, dict) else body
        raise GamedayError(f"cleanup: {what} answered {status or 'nothing'}: {why}")


def run_orders(client: RestClient, run_id: str, ledger_ids: List[int], pages: int = 10) -> List[dict]:
    """The run's orders: the ledger's ids plus the newest `pages` pages, filtered by the mark."""
    found: Dict[int, dict] = {}
    for start in range(0, len(ledger_ids), 100):
        chunk = ",".join(str(i) for i in ledger_ids[start:start + 100])
        status, body = client.call("GET", f"/orders?include={chunk}&per_page=100&status=any")
        _check(status, body, "listing the run's orders")
        found.update({o["id"]: o for o in body})
    for page in range(1, pages + 1):
        status, body = client.call("GET", f"/orders?per_page=100&page={page}&status=any")
        _check(status, body, "listing the newest orders")
        found.update({o["id"]: o for o in body})
        if len(body) < 100:
            break
    return sorted((o for o in found.values() if is_marked(o, run_id)), key=lambda o: o["id"])


def _apply(client: RestClient, orders: List[dict], mode: str) -> Set[int]:
    changed = set()
    for order in orders:
        if order.get("status") in DONE[mode]:
            continue
        if mode == "trash":
            status, body = client.call("DELETE", f"/orders/{order['id']}")
        else:
            status, body = client.call("PUT", f"/orders/{order['id']}", {"status": "cancelled"})
        _check(status, body, f"order {order['id']}")
        changed.add(order["id"])
    return changed


def cleanup(run_dir: str, trash: bool = False, failback: bool = False, yes: bool = False,
            state_dir: Optional[Path] = None) -> int:
    """Cancel (or trash) the run's orders; with `failback`, move the resources back first."""
    path = Path(run_dir).resolve()
    target = read_target(path)
    if failback:
        from .failback import failback as fail_back
        fail_back(target, yes, state_dir)
    client = _client(target)
    ledger = [int(o["order_id"]) for o in read_orders(str(path / run_files.ORDERS))]
    orders = run_orders(client, path.name, list(dict.fromkeys(ledger)))
    mode = "trash" if trash else "cancelled"
    todo = [o for o in orders if o.get("status") not in DONE[mode]]
    if todo and target.get("kind") == "aws":
        guards.confirm(f"gameday: {'trash' if trash else 'cancel'} {len(todo)} orders of run {path.name} "
                       f"at {client.base_url}", yes, what="cleanup",
                       prompt=f"Type yes to {'trash' if trash else 'cancel'} these orders: ")
    changed = _apply(client, todo, mode)
    print(f"cleanup: {len(changed)} of {len(orders)} orders of run {path.name} "
          f"{'moved to the trash' if trash else 'cancelled'}"
          f"{' (the rest already were)' if len(changed) < len(orders) else ''}", flush=True)
    return 0
