"""The stand-in WooCommerce shop: Store API v1 + REST v3 orders over MariaDB and Redis.

Modules: config (knobs), tokens (Cart-Token/Nonce), cache (Redis + retry), db (per-request
MariaDB), catalog/cart/checkout/orders (behaviour), app (WSGI), wsgi (gunicorn entry),
server (gunicorn arguments), schema (tables + seed), bench (throughput measurement).
"""
