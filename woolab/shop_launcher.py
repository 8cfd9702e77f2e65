"""Start the stand-in shop (gunicorn) against the lab's endpoints, change its settings at run time,
and warm its object cache as a production shop's would be."""
import json
import os
import signal
import urllib.request

from groundfloor.supervisor import child_pids, poll_until, spawn

from . import servers
from .config import write_json_atomic
from .errors import LabInvalidState
from .parts import LabParts
from .tls import REDIS_USERNAME, lab_tls

SECRET_SHOP_KEYS = {"db_password", "redis_password", "consumer_key", "consumer_secret", "nonce_secret"}


class ShopLauncher:
    def __init__(self, parts: LabParts):
        self.parts = parts
        self.path = parts.config.path("run", "shop.json")
        self._base_config: dict = {}

    def start(self) -> None:
        from .shop import schema, server  # imported late: `--no-shop` labs never load it
        cfg, s = self.parts.config, self.parts.secrets
        primary = self.parts.state.db_owner()
        tls = lab_tls(cfg)
        schema.install(primary.nodes[primary.primary].ip, cfg.db_endpoint_port, "shop", s["db_app_password"], "shop",
                       ssl_ca=str(tls.ca) if tls else None)
        shop_config = {
            "db_host": cfg.db_writer_name, "db_port": cfg.db_endpoint_port, "db_user": "shop",
            "db_password": s["db_app_password"], "db_name": "shop",
            "redis_host": cfg.cache_primary_name, "redis_port": cfg.cache_primary_port,
            "redis_password": s["redis_password"], "redis_reader_port": cfg.cache_reader_port,
            "dns_server": f"127.0.0.1:{cfg.dns_port}",
            "consumer_key": s["shop_consumer_key"], "consumer_secret": s["shop_consumer_secret"],
            "nonce_secret": s["shop_nonce_secret"], "access_log": str(cfg.path("run", "shop-access.jsonl")),
            # carts are acknowledged only once a replica has them, so a primary loss keeps them
            "cart_wait_replicas": 1, "cart_wait_timeout_ms": 200}
        if cfg.db_topology == "cluster":  # the hardened shop reads its catalogue from the readers
            shop_config["db_reader_host"] = cfg.db_reader_endpoint_name
        if tls:  # TLS to both, verified against the lab's CA; Redis as the ACL user
            shop_config.update(db_ssl_ca=str(tls.ca), redis_ssl=True, redis_ssl_ca=str(tls.ca),
                               redis_username=REDIS_USERNAME)
        shop_config.update(cfg.shop_env)
        self._base_config = dict(shop_config)
        write_json_atomic(self.path, shop_config, mode=0o600)
        argv = server.gunicorn_argv(str(self.path), cfg.shop_port, shop_config["access_log"])
        env = dict(os.environ, WOOLAB_SHOP_CONFIG=str(self.path))
        proc = self.parts.procs.add("shop", spawn(argv, cfg.path("run", "shop.log"), env=env))
        servers.wait_for_port(cfg.shop_port, 20, proc, "the shop (gunicorn)")
        self.warm_cache()

    def configure(self, overrides: dict) -> dict:
        """Change the shop's settings (e.g. the Redis retry knobs) and reload its workers; an empty
        `overrides` restores the lab defaults. Returns the settings now in force (no secrets)."""
        from .shop.config import ConfigError, load_config
        master = self.parts.procs.pid("shop")
        if master is None:
            raise LabInvalidState("the lab runs without the shop (--no-shop)")
        previous = json.loads(self.path.read_text())
        settings = {**self._base_config, **overrides}
        write_json_atomic(self.path, settings, mode=0o600)
        try:
            load_config(str(self.path), environ={})
        except (ConfigError, TypeError, ValueError) as exc:
            write_json_atomic(self.path, previous, mode=0o600)
            raise LabInvalidState(f"shop settings refused: {exc}") from None
        before = child_pids(master)
        os.kill(master, signal.SIGHUP)

        def reloaded():
            now = child_pids(master)
            return bool(now) and not (now & before) and len(now) == len(before)
        if not poll_until(reloaded, 30):
            raise LabInvalidState("the shop's workers did not reload within 30 s")
        servers.wait_for_port(self.parts.config.shop_port, 10, self.parts.procs.get("shop"), "the shop (gunicorn)")
        self.parts.marker("shop", f"shop settings changed: {sorted(overrides) or 'defaults'}")
        return {k: v for k, v in settings.items() if k not in SECRET_SHOP_KEYS}

    def warm_cache(self) -> None:
        """Visit every product once: browsing then survives a database outage from the object
        cache (a cold page still needs the DB)."""
        base = f"http://127.0.0.1:{self.parts.config.shop_port}/wp-json/wc/store/v1/products"
        ids, page, pages = [], 1, 1
        while page <= pages:
            with urllib.request.urlopen(f"{base}?per_page=100&page={page}", timeout=10) as reply:
                ids += [p["id"] for p in json.loads(reply.read())]
                pages = int(reply.headers.get("X-WP-TotalPages", 1))
            page += 1
        for product_id in ids:
            urllib.request.urlopen(f"{base}/{product_id}", timeout=10).read()
