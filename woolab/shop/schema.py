"""The shop's tables and its seeded catalogue (idempotent: safe to run on every lab start).

Stock carries a CHECK constraint as a second line of defence behind checkout's guarded
decrement, so stock can never go negative even through a bug. Orders have a unique
``checkout_key`` (session + cart revision) so a checkout retried after an ambiguous failure
returns the order it already placed instead of placing a second one.
"""
from __future__ import annotations

import random
import ssl
from typing import List, Optional, Tuple

import pymysql

CATEGORIES = [
    (1, "Clothing", "clothing"), (2, "Accessories", "accessories"), (3, "Decor", "decor"),
    (4, "Music", "music"), (5, "Posters", "posters"), (6, "Hoodies", "hoodies"),
    (7, "Tshirts", "tshirts"), (8, "Kitchen", "kitchen"),
]
ADJECTIVES = ["Classic", "Vintage", "Organic", "Premium", "Everyday", "Limited", "Deluxe", "Eco"]
NOUNS = ["Hoodie", "Beanie", "Pennant", "Album", "Poster", "Cap", "Mug", "Belt", "Sunglasses", "Scarf"]

TABLES = [
    """CREATE TABLE IF NOT EXISTS categories (
        id INT UNSIGNED PRIMARY KEY,
        name VARCHAR(100) NOT NULL,
        slug VARCHAR(100) NOT NULL UNIQUE
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE IF NOT EXISTS products (
        id INT UNSIGNED PRIMARY KEY,
        name VARCHAR(200) NOT NULL,
        slug VARCHAR(200) NOT NULL UNIQUE,
        sku VARCHAR(64) NOT NULL,
        short_description VARCHAR(500) NOT NULL DEFAULT '',
        category_id INT UNSIGNED NOT NULL,
        price INT UNSIGNED NOT NULL COMMENT 'minor units',
        regular_price INT UNSIGNED NOT NULL COMMENT 'minor units',
        stock INT NOT NULL,
        CONSTRAINT stock_not_negative CHECK (stock >= 0),
        KEY category (category_id),
        FOREIGN KEY (category_id) REFERENCES categories (id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE IF NOT EXISTS orders (
        id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
        order_key VARCHAR(32) NOT NULL,
        checkout_key VARCHAR(80) NOT NULL UNIQUE,
        status VARCHAR(20) NOT NULL,
        currency CHAR(3) NOT NULL,
        total INT UNSIGNED NOT NULL COMMENT 'minor units',
        payment_method VARCHAR(40) NOT NULL,
        customer_note TEXT NOT NULL,
        billing_address TEXT NOT NULL COMMENT 'JSON',
        shipping_address TEXT NOT NULL COMMENT 'JSON',
        created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE IF NOT EXISTS order_items (
        id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
        order_id BIGINT UNSIGNED NOT NULL,
        product_id INT UNSIGNED NOT NULL,
        name VARCHAR(200) NOT NULL,
        quantity INT UNSIGNED NOT NULL,
        price INT UNSIGNED NOT NULL COMMENT 'minor units',
        total INT UNSIGNED NOT NULL COMMENT 'minor units',
        KEY order_id (order_id),
        FOREIGN KEY (order_id) REFERENCES orders (id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    # WooCommerce's own tables (WC_Install::get_schema), the columns the lab uses
    """CREATE TABLE IF NOT EXISTS woocommerce_api_keys (
        key_id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
        user_id BIGINT UNSIGNED NOT NULL,
        description VARCHAR(200) NULL,
        permissions VARCHAR(10) NOT NULL,
        consumer_key CHAR(64) NOT NULL UNIQUE,
        consumer_secret VARCHAR(100) NOT NULL,
        nonces LONGTEXT NULL,
        truncated_key CHAR(7) NOT NULL,
        last_access DATETIME NULL DEFAULT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE IF NOT EXISTS woocommerce_sessions (
        session_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
        session_key CHAR(32) NOT NULL,
        session_value LONGTEXT NOT NULL,
        session_expiry BIGINT UNSIGNED NOT NULL,
        PRIMARY KEY (session_key),
        UNIQUE KEY session_id (session_id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
]


def catalogue(products: int = 200, seed: int = 42) -> List[Tuple]:
    """Deterministic product rows: (id, name, slug, sku, description, category, price, regular, stock).

    Every 50th product is nearly sold out (stock 3) so tests can exercise the stock guard.
    """
    rng = random.Random(seed)
    rows = []
    for pid in range(1, products + 1):
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {pid}"
        slug = name.lower().replace(" ", "-")
        regular = rng.randrange(500, 10000, 5)
        price = regular if pid % 7 else regular * 8 // 10  # every 7th on sale
        stock = 3 if pid % 50 == 0 else rng.randrange(500, 5000)
        category = (pid - 1) % len(CATEGORIES) + 1
        rows.append((pid, name, slug, f"SKU-{pid:05d}", f"A {name.lower()}.", category,
                     price, regular, stock))
    return rows


def install(host: str, port: int, user: str, password: str, database: str = "shop",
            products: int = 200, ssl_ca: Optional[str] = None) -> None:
    """Create the tables in ``database`` and seed the catalogue once (existing rows are kept);
    over TLS verified against ``ssl_ca`` when given (an encrypted lab), else in the clear."""
    tls = {"ssl": ssl.create_default_context(cafile=ssl_ca)} if ssl_ca else {"ssl_disabled": True}
    conn = pymysql.connect(host=host, port=int(port), user=user, password=password,
                           database=database, charset="utf8mb4", connect_timeout=5, autocommit=False, **tls)
    try:
        with conn.cursor() as cur:
            for ddl in TABLES:
                cur.execute(ddl)
            cur.executemany("INSERT IGNORE INTO categories (id, name, slug) VALUES (%s, %s, %s)",
                            CATEGORIES)
            cur.executemany(
                "INSERT IGNORE INTO products (id, name, slug, sku, short_description, category_id,"
                " price, regular_price, stock) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                catalogue(products))
        conn.commit()
    finally:
        conn.close()
