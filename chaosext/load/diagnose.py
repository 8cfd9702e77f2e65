"""Why a load measured little: sentences naming the cause and what to change on the store.

Used by the load summary (``problems``); worker losses come from :mod:`chaosext.load.workers`.
"""
from __future__ import annotations

from typing import Any, Dict, List

__all__ = ["HINTS", "diagnose"]

# Known WooCommerce refusals → what to change on the store.
HINTS = {
    "nonce": "the store refused the session headers: the Store API needs the Nonce (or a "
             "Cart-Token) from a previous response; check that no cache or proxy strips the "
             "Nonce/Cart-Token headers",
    "payment_method": "enable Cash on delivery (WooCommerce > Settings > Payments) for the "
                      "shipping method in use",
    "rest_no_route": "the Store API route is missing: WooCommerce must be active and "
                     "permalinks must not be 'Plain' (/wp-json/ needs pretty permalinks)",
    "cart_empty": "the cart was empty at checkout: carts are not kept between requests",
    "shipping": "no shipping method covers the checkout address: add a shipping zone for "
                "SHOPPER_COUNTRY/SHOPPER_POSTCODE or use virtual products",
    "account": "guest checkout is disabled: allow customers to place orders without an account "
               "(WooCommerce > Settings > Accounts & Privacy)",
}


def diagnose(timeline: Dict[str, Any], orders: int, samples: List[dict], host: str) -> List[str]:
    """Sentences naming why the load measured little: steps that always failed, no orders."""
    problems = []
    if timeline["requests"] == 0:
        problems.append(f"no request to {host} completed (see locust.log)")
    for step, s in timeline["steps"].items():
        if s["requests"] and s["failures"] == s["requests"]:
            top, count = max(s["errors"].items(), key=lambda kv: kv[1])
            message = next((x["message"] for x in samples
                            if x["step"] == step and x["error"] == top), "")
            hint = next((h for k, h in HINTS.items() if k in top or k in message.lower()), "")
            problems.append(f"every {step} request failed ({s['requests']}x), mostly {top!r}"
                            + (f": {message}" if message else "") + (f" -- {hint}" if hint else ""))
    checkout = timeline["steps"].get("checkout", {})
    if checkout.get("requests") and not orders:
        problems.append("the store acknowledged no order: the RPO check has nothing to verify")
    return problems
