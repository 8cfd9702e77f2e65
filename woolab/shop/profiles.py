"""Shop profiles: ``hardened`` (the resilience advice applied) and ``stock`` (what most stores run).

A profile is one shop setting, switchable at run time like ``retry=false``. Besides the
behaviour it selects (see :mod:`woolab.shop.stock`), ``stock`` brings the client defaults of an
unconfigured WordPress + Redis Object Cache install; a knob set explicitly in the same settings
still wins, so ``profile=stock retry=true`` measures the stock store with retries added.

Defaults and where they come from (docs/shop.md cites each):
- Redis Object Cache (rhubarbgroup/redis-cache, ``WP_Object_Cache::build_parameters`` in
  ``includes/object-cache.php``): ``timeout`` 1 s, ``read_timeout`` 1 s, ``retry_interval``
  unset, so no retries.
- PHP's mysqli: connect timeout ``default_socket_timeout`` (60 s); WordPress's ``wpdb`` sets no
  read timeout of its own (the lab bounds reads at 60 s like its worker timeout).
"""
from __future__ import annotations

from typing import Dict

PROFILES = ("hardened", "stock")
DEFAULT_PROFILE = "hardened"

STOCK_DEFAULTS: Dict[str, object] = {
    "retry": False,
    "connection_timeout": 1.0,
    "read_write_timeout": 1.0,
    "db_connect_timeout": 60.0,
    "db_read_timeout": 60.0,
    "db_write_timeout": 60.0,
}


def apply_profile_defaults(data: Dict[str, object]) -> Dict[str, object]:
    """``data`` with the chosen profile's defaults for every knob it does not set itself."""
    if str(data.get("profile") or DEFAULT_PROFILE).strip().lower() != "stock":
        return data
    return {**STOCK_DEFAULTS, **data}
