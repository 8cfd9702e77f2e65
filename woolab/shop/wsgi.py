"""The WSGI entry point gunicorn loads: ``gunicorn woolab.shop.wsgi:app``.

Configuration comes from ``$WOOLAB_SHOP_CONFIG`` (and ``SHOP_*`` overrides) at import time, so a
bad configuration stops the worker at boot with one clear message.
"""
from .app import ShopApp
from .config import load_config

app = ShopApp(load_config())
