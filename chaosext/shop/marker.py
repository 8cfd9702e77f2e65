"""The mark every order of a run carries, so the run's orders can be found and cleaned up.

WooCommerce's Store API checkout accepts a `customer_note` (docs/before-aws.md cites the
checkout schema); the shopper load and the checkout probes put ``failover-gameday run <run id>``
there, and `gameday cleanup` touches only orders whose note is exactly that.
"""
import os
from typing import Any, Mapping, Optional
from groundfloor import run_files

__all__ = ["NOTE_PREFIX", "current_run_id", "order_note", "is_marked"]

NOTE_PREFIX = "failover-gameday run "


def current_run_id() -> str:
    """$GAMEDAY_RUN_ID (set by `gameday run`), else the run directory's name, else "adhoc"."""
    found = os.environ.get("GAMEDAY_RUN_ID") or os.path.basename(
        os.environ.get(run_files.RUN_DIR_ENV, "").rstrip("/"))
    return found or "adhoc"


def order_note(run_id: Optional[str] = None) -> str:
    return NOTE_PREFIX + (run_id or current_run_id())


def is_marked(order: Mapping[str, Any], run_id: str) -> bool:
    """True only for an order placed by run `run_id` (its customer note is the run's mark)."""
    return (order.get("customer_note") or "").strip() == order_note(run_id)
