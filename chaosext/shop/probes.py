"""Probes that judge the shop the way a shopper does, over the WooCommerce Store API."""
import json
import logging
import os
from typing import Optional

from chaoslib.types import Configuration, Secrets

from chaosext.load.config import run_dir_of
from chaosext.shop.client import StoreSession
from groundfloor import run_files

__all__ = ["shop_responds", "checkout_journey_succeeds", "remembered_carts_lost"]

logger = logging.getLogger("chaostoolkit")
CARTS_FILE = run_files.REMEMBERED_CARTS


def shop_responds(path: str = "/wp-json/wc/store/v1/products?per_page=1", shop_url: Optional[str] = None,
                  timeout: float = 5.0, configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """True when the shop answers `path` with HTTP 200 within `timeout` seconds."""
    reply = StoreSession.for_configuration(configuration, shop_url, timeout).request("GET", path)
    if reply.status != 200:
        logger.warning("shop answered %s on %s", reply.status or reply.body, path)
    return reply.status == 200


def checkout_journey_succeeds(shop_url: Optional[str] = None, timeout: float = 10.0,
                              configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """True when a new guest can list products, fill a cart and check out with `cod`."""
    session = StoreSession.for_configuration(configuration, shop_url, timeout)
    ok, why, _ = session.fill_cart()
    if not ok:
        logger.warning("checkout journey failed before checkout: %s", why)
        return False
    reply = session.checkout()
    order = reply.body.get("order_id") if isinstance(reply.body, dict) else None
    if reply.status not in (200, 201) or not order:
        logger.warning("checkout journey: checkout answered %s %s", reply.status, reply.body)
        return False
    return True


def remembered_carts_lost(run_dir: Optional[str] = None, shop_url: Optional[str] = None,
                          configuration: Configuration = None, secrets: Secrets = None) -> int:
    """How many carts remembered by `remember_carts` no longer hold what was put in them (RPO of
    sessions). 0 when none were remembered yet."""
    path = os.path.join(run_dir_of(configuration, run_dir), CARTS_FILE)
    if not os.path.exists(path):
        return 0
    with open(path) as fh:
        remembered = json.load(fh)
    lost = 0
    for cart in remembered:
        session = StoreSession.for_configuration(configuration, shop_url)
        session.headers.update(cart["headers"])
        items = session.cart_items()
        expected = {int(k): v for k, v in cart["items"].items()}
        if items != expected:
            lost += 1
            logger.warning("cart %s… lost: expected %s, found %s", cart["headers"].get("Cart-Token", "")[:12],
                           expected, items)
    return lost
