"""The lab's topology and its failover mechanics.

One `Lab` lives in the controller process. It starts the real servers, keeps the AWS-visible
state (roles, AZs, statuses, tags) and runs failovers in background threads, as AWS does: the
`start_*` calls validate, set the status at once and return; the work proceeds and every step is
written to the ground-truth event log.
"""
import copy
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Optional

import pymysql
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import servers
from .config import (AZS, DB_INSTANCE_ID, MAX_CACHE_NODES, NODE_GROUP_ID, REPLICATION_GROUP_ID,
                     LabConfig, load_or_create_secrets, write_json_atomic)
from .errors import LabInvalidState, LabNotFound, LabStartError
from .events import EventLog
from .webhook import WebhookReceiver

log = logging.getLogger("woolab")

_SECRET_SHOP_KEYS = {"db_password", "redis_password", "consumer_key", "consumer_secret", "nonce_secret"}

RDS_FAILOVER_STARTED = ("RDS-EVENT-0013", "Multi-AZ instance failover started.")
RDS_FAILOVER_COMPLETED = ("RDS-EVENT-0049", "Multi-AZ instance failover completed")
RDS_RESTARTED = ("RDS-EVENT-0006", "DB instance restarted")
RDS_SHUTDOWN = ("RDS-EVENT-0004", "DB instance shutdown")
RDS_FAILOVER_NOT_ATTEMPTED = ("RDS-EVENT-0034", "Amazon RDS is not attempting a requested failover "
                              "because a failover recently occurred on the DB instance.")


def _gtid_seqs(position: str) -> dict:
    """'0-1-12,1-2-5' -> {0: 12, 1: 5} (GTID domain -> sequence number)."""
    seqs = {}
    for gtid in filter(None, (x.strip() for x in position.split(","))):
        domain, _server, seq = gtid.split("-")
        seqs[int(domain)] = int(seq)
    return seqs


class Lab:
    def __init__(self, config: LabConfig):
        self.config = config
        self.run_dir = config.path("run")
        self.secrets: dict = {}
        self.events: Optional[EventLog] = None
        self._lock = threading.RLock()
        self._procs: dict = {}  # process name -> Popen
        self._db: dict = {}
        self._groups: dict = {}
        self._nodes: dict = {}
        self._threads: list = []
        self._stopping = threading.Event()
        self.background_errors: list = []
        self.webhook: Optional[WebhookReceiver] = None
        self._generation = 0  # bumped by every mechanic, so the watcher never applies a stale view

    # ------------------------------------------------------------------ bring-up / shutdown
    def start(self) -> None:
        missing = servers.missing_packages()
        if missing:
            raise LabStartError("missing Debian packages: " + " ".join(missing)
                                + " (run `make bootstrap` as root, or apt-get install them)")
        servers.check_ports_free([p for p in self.config.all_ports() if p != self.config.facade_port])
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.secrets = load_or_create_secrets(self.config.state_dir)
        self.events = EventLog(self.config.path("events.jsonl"))
        self._haproxy_socket = self.run_dir / "haproxy.sock"
        with ThreadPoolExecutor(2) as pool:  # MariaDB and Redis come up side by side
            db = pool.submit(self._start_db)
            cache = pool.submit(self._start_cache_nodes)
            db.result()
            cache.result()
        self._start_haproxy()
        self._wait_sentinels_ready()
        if self.config.with_shop:
            self._start_shop()
        self.webhook = WebhookReceiver(self.config.webhook_port, self.config.path("webhook")).start()
        self._save()
        watcher = threading.Thread(target=self._watch, name="lab-watch", daemon=True)
        watcher.start()

    def stop(self) -> None:
        """Stop every process this lab started, by pid, newest layer first."""
        self._stopping.set()
        for t in list(self._threads):
            t.join(timeout=15)
        if self.webhook is not None:
            self.webhook.stop()
        order = ["shop", "haproxy"] + [n for n in self._procs if n.startswith("sentinel")] \
            + [n for n in self._procs if n.startswith(REPLICATION_GROUP_ID) or n in self._nodes] \
            + list(self._procs)
        seen = set()
        for name in order:
            proc = self._procs.get(name)
            if proc is None or name in seen:
                continue
            seen.add(name)
            servers.stop_pid(proc.pid, timeout=5.0)
            proc.poll()
        self._save()

    def _background(self, fn, *args) -> None:
        self._generation += 1
        def run():
            try:
                fn(*args)
            except Exception as exc:  # a failed mechanic must not kill the controller
                log.exception("background operation %s failed", fn.__name__)
                self.background_errors.append(f"{fn.__name__}: {exc}")
                self._settle_after_failure(f"{fn.__name__}: {exc}")
        t = threading.Thread(target=run, name=fn.__name__, daemon=True)
        self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    def _settle_after_failure(self, why: str) -> None:
        """A failed operation must not leave a resource `modifying` forever (nothing else could run)."""
        with self._lock:
            for resource in list(self._db.values()) + list(self._groups.values()):
                if resource["status"] != "available":
                    resource["status"] = "available"
            for node_id, node in list(self._nodes.items()):
                if node["status"] == "creating" and not servers.pid_alive(node["pid"]):
                    del self._nodes[node_id]
        self.events.record("lab", "lab", f"operation failed: {why}")
        self._save()

    def take_background_errors(self) -> list:
        """Errors of background operations since the last call (each reported once)."""
        with self._lock:
            errors, self.background_errors = self.background_errors, []
        return errors

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Block until every background operation has finished (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        for t in list(self._threads):
            t.join(max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------ MariaDB
    def _start_db(self) -> None:
        cfg = self.config
        names = ["shop-db-a", "shop-db-b"] if cfg.db_multi_az else ["shop-db-a"]
        datadirs = [cfg.path("db", n) for n in names]
        if not (datadirs[0] / "mysql").exists():
            servers.mariadb_install(datadirs[0], self.config.path("mariadb-install.log"))
        for d in datadirs[1:]:
            if not (d / "mysql").exists():
                shutil.copytree(datadirs[0], d)
        nodes = {}
        for i, (name, datadir) in enumerate(zip(names, datadirs)):
            proc = servers.mariadb_start(datadir, cfg.db_node_port(i), i + 1, self.run_dir, read_only=i > 0)
            self._procs[name] = proc
            nodes[name] = {"az": AZS[i], "port": cfg.db_node_port(i), "role": "primary" if i == 0 else "standby",
                           "pid": proc.pid, "server_id": i + 1}
        for name, node in nodes.items():
            servers.wait_for_port(node["port"], 20, self._procs[name], f"mariadbd {name}")
        primary = self._root(names[0])
        s = self.secrets
        for stmt, args in (
                ("CREATE USER IF NOT EXISTS 'admin'@'127.0.0.1' IDENTIFIED BY %s", s["db_admin_password"]),
                ("GRANT ALL ON *.* TO 'admin'@'127.0.0.1' WITH GRANT OPTION", None),
                ("CREATE USER IF NOT EXISTS 'repl'@'127.0.0.1' IDENTIFIED BY %s", s["db_repl_password"]),
                ("GRANT REPLICATION SLAVE, SLAVE MONITOR ON *.* TO 'repl'@'127.0.0.1'", None),
                ("CREATE DATABASE IF NOT EXISTS shop", None),
                ("CREATE DATABASE IF NOT EXISTS woolab", None),
                ("CREATE TABLE IF NOT EXISTS woolab.probe (id INT PRIMARY KEY, t DOUBLE)", None),
                ("CREATE USER IF NOT EXISTS 'shop'@'127.0.0.1' IDENTIFIED BY %s", s["db_app_password"]),
                ("GRANT ALL ON shop.* TO 'shop'@'127.0.0.1'", None)):
            servers.sql(primary, stmt, args)
        primary.close()
        for name in names[1:]:
            self._replicate(name, nodes[names[0]]["port"], gtid_mode="slave_pos")
        conn = self._root(names[0])
        version = servers.sql(conn, "SELECT VERSION()")[0][0].split("-")[0]
        conn.close()
        self._db[DB_INSTANCE_ID] = {
            "id": DB_INSTANCE_ID, "engine": "mariadb", "engine_version": version, "status": "available",
            "multi_az": cfg.db_multi_az, "endpoint": {"address": "127.0.0.1", "port": cfg.db_endpoint_port},
            "primary": names[0], "standby": names[1] if len(names) > 1 else None, "nodes": nodes,
            "db_name": "shop", "master_username": "admin", "instance_class": "db.lab.small",
            "created_at": time.time(), "last_failover_at": None, "tags": {"chaos:allowed": "true"}}

    def _root(self, name: str):
        return servers.mysql_root(self.run_dir, name)

    def _replicate(self, name: str, primary_port: int, gtid_mode: str) -> None:
        conn = self._root(name)
        try:
            servers.sql(conn, "STOP SLAVE")
            servers.sql(conn, "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%s, MASTER_USER='repl', "
                              "MASTER_PASSWORD=%s, MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=" + gtid_mode,
                        (primary_port, self.secrets["db_repl_password"]))
            servers.sql(conn, "SET GLOBAL read_only=1")
            servers.sql(conn, "START SLAVE")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                status = servers.sql_dict(conn, "SHOW SLAVE STATUS")[0]
                if status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes":
                    return
                if status["Last_Error"] or status["Last_IO_Error"]:
                    if "connect" not in status["Last_IO_Error"].lower():
                        raise LabStartError(f"replication on {name} failed: "
                                            f"{status['Last_Error'] or status['Last_IO_Error']}")
                time.sleep(0.05)
            raise LabStartError(f"replication on {name} did not start within 10 s")
        finally:
            conn.close()

    # ------------------------------------------------------------------ Redis, Sentinel, HAProxy
    def _start_cache_nodes(self) -> None:
        cfg = self.config
        self._groups[REPLICATION_GROUP_ID] = {
            "id": REPLICATION_GROUP_ID, "status": "available", "automatic_failover": True, "multi_az": True,
            "engine": "redis", "engine_version": "",
            "primary_endpoint": {"address": "127.0.0.1", "port": cfg.cache_primary_port},
            "reader_endpoint": {"address": "127.0.0.1", "port": cfg.cache_reader_port},
            "node_groups": {NODE_GROUP_ID: {"status": "available", "members": []}},
            "tags": {"chaos:allowed": "true"}}
        primary_port = cfg.cache_node_port(1)
        for number in range(1, cfg.cache_replicas + 2):
            self._launch_cache_node(REPLICATION_GROUP_ID, number, None if number == 1 else primary_port)
        for node_id in list(self._nodes):
            servers.wait_for_port(self._nodes[node_id]["port"], 10, self._procs[node_id], f"redis {node_id}")
        for i in range(3):
            name = f"sentinel-{i + 1}"
            self._procs[name] = servers.sentinel_start(
                i + 1, cfg.sentinel_port(i), primary_port, self.secrets["redis_password"],
                REPLICATION_GROUP_ID, cfg.sentinel_down_after_ms, self.run_dir)
        for i in range(3):
            servers.wait_for_port(cfg.sentinel_port(i), 10, self._procs[f"sentinel-{i + 1}"], "redis-sentinel")
        info = self._redis(primary_port).info("server")
        self._groups[REPLICATION_GROUP_ID]["engine_version"] = info["redis_version"]

    def _launch_cache_node(self, group_id: str, number: int, replica_of: Optional[int]) -> str:
        node_id = f"{group_id}-{number:03d}"
        port = self.config.cache_node_port(number)
        proc = servers.redis_start(node_id, port, self.secrets["redis_password"], self.run_dir, replica_of)
        self._procs[node_id] = proc
        existing = self._nodes.get(node_id, {})
        self._nodes[node_id] = {
            "id": node_id, "replication_group_id": group_id, "node_group_id": NODE_GROUP_ID,
            "az": existing.get("az", AZS[(number - 1) % len(AZS)]), "address": "127.0.0.1", "port": port,
            "role": "replica" if replica_of else "primary", "status": "available", "pid": proc.pid,
            "created_at": existing.get("created_at", time.time()), "node_type": "cache.lab.small"}
        members = self._groups[group_id]["node_groups"][NODE_GROUP_ID]["members"]
        if node_id not in members:
            members.append(node_id)
            members.sort()
        return node_id

    def _redis(self, port: int, timeout: float = 1.0) -> redis.Redis:
        """No client-side retries: the lab measures and decides, it must not wait inside redis-py."""
        return redis.Redis(host="127.0.0.1", port=port, password=self.secrets["redis_password"],
                           socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))

    def _sentinel(self, index: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.config.sentinel_port(index), socket_timeout=1.0,
                           socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0))

    def _start_haproxy(self) -> None:
        cfg = self.config
        db = self._db[DB_INSTANCE_ID]
        text = servers.haproxy_config(
            socket_path=self._haproxy_socket, db_port=cfg.db_endpoint_port,
            db_nodes=[(n, v["port"]) for n, v in db["nodes"].items()], db_primary=db["primary"],
            cache_primary_port=cfg.cache_primary_port, cache_reader_port=cfg.cache_reader_port,
            cache_slots=[(f"{REPLICATION_GROUP_ID}-{n:03d}", cfg.cache_node_port(n))
                         for n in range(1, MAX_CACHE_NODES + 1)],
            redis_password=self.secrets["redis_password"])
        path = self.run_dir / "haproxy.cfg"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self._procs["haproxy"] = servers.haproxy_start(path, self.run_dir)
        for port in (cfg.db_endpoint_port, cfg.cache_primary_port, cfg.cache_reader_port):
            servers.wait_for_port(port, 10, self._procs["haproxy"], "haproxy")
        self._wait_cache_endpoint_writable(timeout=10)

    def _haproxy(self, command: str) -> str:
        return servers.haproxy_command(self._haproxy_socket, command)

    def _wait_sentinels_ready(self, timeout: float = 15.0) -> None:
        """Sentinels must know each other and the replicas before a failover can win a quorum."""
        deadline = time.monotonic() + timeout
        replicas = len(self._nodes) - 1
        while time.monotonic() < deadline:
            try:
                ready = True
                for i in range(3):
                    s = self._sentinel(i)
                    ready &= len(s.sentinel_sentinels(REPLICATION_GROUP_ID)) >= 2
                    ready &= len(s.sentinel_slaves(REPLICATION_GROUP_ID)) >= replicas
                    s.close()
                if ready:
                    return
            except redis.RedisError:
                pass
            time.sleep(0.1)
        raise LabStartError(f"Sentinels did not reach quorum within {timeout:.0f} s")

    def _wait_sentinels_know(self, port: int, timeout: float = 30.0) -> None:
        """A new replica can be promoted only once every Sentinel has seen it healthy (they poll
        the primary's INFO every 10 s, so this can take that long)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            known = 0
            for i in range(3):
                try:
                    s = self._sentinel(i)
                    known += any(int(r["port"]) == port and not r.get("is_sdown") and not r.get("is_disconnected")
                                 for r in s.sentinel_slaves(REPLICATION_GROUP_ID))
                    s.close()
                except redis.RedisError:
                    pass
            if known == 3:
                return
            time.sleep(0.2)
        raise LabInvalidState(f"Sentinels did not discover the replica on port {port} within {timeout:.0f} s")

    def _sentinel_primary_port(self) -> Optional[int]:
        return next((port for port in map(self._sentinel_view, range(3)) if port), None)

    # ------------------------------------------------------------------ the shop
    def _start_shop(self) -> None:
        from .shop import schema, server  # imported late: `--no-shop` labs never load it
        cfg, s = self.config, self.secrets
        schema.install("127.0.0.1", cfg.db_endpoint_port, "shop", s["db_app_password"], "shop")
        shop_config = {
            "db_host": "127.0.0.1", "db_port": cfg.db_endpoint_port, "db_user": "shop",
            "db_password": s["db_app_password"], "db_name": "shop",
            "redis_host": "127.0.0.1", "redis_port": cfg.cache_primary_port, "redis_password": s["redis_password"],
            "redis_reader_port": cfg.cache_reader_port,
            "consumer_key": s["shop_consumer_key"], "consumer_secret": s["shop_consumer_secret"],
            "nonce_secret": s["shop_nonce_secret"], "access_log": str(self.run_dir / "shop-access.jsonl"),
            # carts are acknowledged only once a replica has them, so a primary loss keeps them
            "cart_wait_replicas": 1, "cart_wait_timeout_ms": 200}
        shop_config.update(cfg.shop_env)
        self._shop_base_config = dict(shop_config)
        path = self.run_dir / "shop.json"
        write_json_atomic(path, shop_config, mode=0o600)
        argv = server.gunicorn_argv(str(path), cfg.shop_port, shop_config["access_log"])
        env = dict(os.environ, WOOLAB_SHOP_CONFIG=str(path))
        log_file = open(self.run_dir / "shop.log", "ab")
        self._procs["shop"] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_file,
                                               stderr=subprocess.STDOUT, start_new_session=True, env=env)
        log_file.close()
        servers.wait_for_port(cfg.shop_port, 20, self._procs["shop"], "the shop (gunicorn)")
        self._warm_shop_cache()

    def configure_shop(self, overrides: dict) -> dict:
        """Change the shop's settings (e.g. the seed's Redis retry knobs) and reload its workers;
        an empty `overrides` restores the lab defaults. Returns the settings now in force."""
        from .shop.config import ConfigError, load_config
        if "shop" not in self._procs:
            raise LabInvalidState("the lab runs without the shop (--no-shop)")
        path = self.run_dir / "shop.json"
        previous = json.loads(path.read_text())
        settings = {**self._shop_base_config, **overrides}
        write_json_atomic(path, settings, mode=0o600)
        try:
            load_config(str(path), environ={})
        except (ConfigError, TypeError, ValueError) as exc:
            write_json_atomic(path, previous, mode=0o600)
            raise LabInvalidState(f"shop settings refused: {exc}") from None
        master = self._procs["shop"].pid
        before = servers.child_pids(master)
        os.kill(master, signal.SIGHUP)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = servers.child_pids(master)
            if now and not (now & before) and len(now) == len(before):
                break
            time.sleep(0.05)
        else:
            raise LabInvalidState("the shop's workers did not reload within 30 s")
        servers.wait_for_port(self.config.shop_port, 10, self._procs["shop"], "the shop (gunicorn)")
        self.events.record("lab", "shop", f"shop settings changed: {sorted(overrides) or 'defaults'}")
        return {k: v for k, v in settings.items() if k not in _SECRET_SHOP_KEYS}

    def _warm_shop_cache(self) -> None:
        """Visit every product once, as a warmed-up production cache would have: browsing then
        survives a database outage from the object cache (a cold page still needs the DB)."""
        base = f"http://127.0.0.1:{self.config.shop_port}/wp-json/wc/store/v1/products"
        ids, page = [], 1
        while True:
            with urllib.request.urlopen(f"{base}?per_page=100&page={page}", timeout=10) as reply:
                batch = json.loads(reply.read())
                pages = int(reply.headers.get("X-WP-TotalPages", 1))
            ids += [p["id"] for p in batch]
            if page >= pages:
                break
            page += 1
        for product_id in ids:
            urllib.request.urlopen(f"{base}/{product_id}", timeout=10).read()

    # ------------------------------------------------------------------ views
    def snapshot(self) -> dict:
        with self._lock:
            return copy.deepcopy({
                "region": self.config.region, "account_id": self.config.account_id,
                "db_instances": self._db, "replication_groups": self._groups, "cache_clusters": self._nodes})

    def processes(self) -> dict:
        return {name: proc.pid for name, proc in self._procs.items()}

    def _save(self) -> None:
        data = self.snapshot()
        data["processes"] = {name: {"pid": p.pid, "alive": servers.pid_alive(p.pid)}
                             for name, p in self._procs.items()}
        write_json_atomic(self.config.path("topology.json"), data)

    def _get(self, table: dict, resource_id: str, what: str) -> dict:
        if resource_id not in table:
            raise LabNotFound(f"{what} {resource_id} not found")
        return table[resource_id]

    # ------------------------------------------------------------------ DB mechanics
    def start_db_reboot(self, instance_id: str, force_failover: bool) -> None:
        with self._lock:
            db = self._get(self._db, instance_id, "DB instance")
            if db["status"] != "available":
                raise LabInvalidState(f"DB instance {instance_id} is {db['status']}, not available")
            if force_failover and not db["multi_az"]:
                raise LabInvalidState(f"DB instance {instance_id} is not Multi-AZ: no standby to fail over to")
            last = db["last_failover_at"]
            too_soon = bool(force_failover and last and time.time() - last < self.config.min_failover_interval)
            db["status"] = "rebooting"
        if force_failover and not too_soon:
            self._background(self._db_failover, instance_id)
        else:
            self._background(self._db_reboot_in_place, instance_id, too_soon)

    def _db_event(self, instance_id: str, event: tuple, categories) -> None:
        self.events.record("db-instance", instance_id, event[1], event[0], categories)

    def _db_failover(self, instance_id: str) -> None:
        db = self._db[instance_id]
        old, new = db["primary"], db["standby"]
        self._db_event(instance_id, RDS_FAILOVER_STARTED, ["failover"])
        self._haproxy(f"set server db/{old} state maint")
        self._haproxy(f"shutdown sessions server db/{old}")
        self.events.record("lab", instance_id, f"endpoint unavailable (was {old})")
        went_down = time.monotonic()
        position = None
        if servers.pid_alive(self._procs[old].pid):
            try:
                with closing(self._root(old)) as conn:
                    servers.sql(conn, "SET GLOBAL read_only=1")
                    position = servers.sql(conn, "SELECT @@gtid_binlog_pos")[0][0]
            except Exception as exc:  # a dead primary: promote what the standby received
                log.warning("could not quiesce %s: %s", old, exc)
        with closing(self._root(new)) as conn:
            if position and not self._wait_applied(conn, position, timeout=10):
                log.error("standby %s did not apply %s within 10 s (it has %s)", new, position,
                          servers.sql(conn, "SELECT @@gtid_current_pos, @@gtid_slave_pos, @@gtid_binlog_pos")[0])
            servers.stop_pid(self._procs[old].pid, hard=True)
            servers.sql(conn, "STOP SLAVE")
            servers.sql(conn, "RESET SLAVE ALL")
            servers.sql(conn, "SET GLOBAL read_only=0")
        held = self.config.db_failover_outage_seconds - (time.monotonic() - went_down)
        if held > 0:  # emulate the RDS endpoint's DNS flip, so shoppers can meet the outage
            time.sleep(held)
        self._haproxy(f"set server db/{new} state ready")
        self.events.record("lab", instance_id, f"endpoint writable on {new}", categories=["writable"],
                           at=self._wait_db_endpoint_writable())
        with self._lock:
            db["primary"], db["standby"] = new, old
            db["nodes"][new]["role"], db["nodes"][old]["role"] = "primary", "standby"
        self._restart_db_node(old, read_only=True)
        self._replicate(old, db["nodes"][new]["port"], gtid_mode="current_pos")
        self._db_event(instance_id, RDS_RESTARTED, ["availability"])
        with self._lock:
            db["status"] = "available"
            db["last_failover_at"] = time.time()
        self._db_event(instance_id, RDS_FAILOVER_COMPLETED, ["failover"])
        self._save()

    @staticmethod
    def _wait_applied(conn, position: str, timeout: float) -> bool:
        """Wait until the node holds every GTID of `position` (applied or its own), per domain."""
        wanted = _gtid_seqs(position)
        deadline = time.monotonic() + timeout
        while True:
            have = _gtid_seqs(servers.sql(conn, "SELECT @@gtid_current_pos")[0][0])
            if all(have.get(domain, -1) >= seq for domain, seq in wanted.items()):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)

    def _restart_db_node(self, name: str, read_only: bool) -> None:
        db = self._db[DB_INSTANCE_ID]
        node = db["nodes"][name]
        proc = servers.mariadb_start(self.config.path("db", name), node["port"], node["server_id"],
                                     self.run_dir, read_only=read_only)
        self._procs[name] = proc
        node["pid"] = proc.pid
        servers.wait_for_port(node["port"], 20, proc, f"mariadbd {name}")

    def _db_reboot_in_place(self, instance_id: str, failover_refused: bool) -> None:
        db = self._db[instance_id]
        primary = db["primary"]
        if failover_refused:
            self._db_event(instance_id, RDS_FAILOVER_NOT_ATTEMPTED, ["failover"])
        self._db_event(instance_id, RDS_SHUTDOWN, ["availability"])
        self._haproxy(f"set server db/{primary} state maint")
        self._haproxy(f"shutdown sessions server db/{primary}")
        self.events.record("lab", instance_id, f"endpoint unavailable (was {primary})")
        servers.stop_pid(self._procs[primary].pid, timeout=10)
        self._restart_db_node(primary, read_only=False)
        self._haproxy(f"set server db/{primary} state ready")
        self.events.record("lab", instance_id, f"endpoint writable on {primary}", categories=["writable"],
                           at=self._wait_db_endpoint_writable())
        self._db_event(instance_id, RDS_RESTARTED, ["availability"])
        with self._lock:
            db["status"] = "available"
        self._save()

    # ------------------------------------------------------------------ cache mechanics
    def _group_for_change(self, group_id: str) -> dict:
        group = self._get(self._groups, group_id, "Replication group")
        if group["status"] != "available":
            raise LabInvalidState(f"Replication group {group_id} is {group['status']}, not available")
        return group

    def _primary_of(self, group: dict, node_group_id: str) -> str:
        for node_id in group["node_groups"][node_group_id]["members"]:
            if self._nodes[node_id]["role"] == "primary":
                return node_id
        raise LabInvalidState(f"node group {node_group_id} of {group['id']} has no primary")

    def start_cache_primary_loss(self, replication_group_id: str, node_group_id: str) -> None:
        with self._lock:
            group = self._group_for_change(replication_group_id)
            if node_group_id not in group["node_groups"]:
                raise LabNotFound(f"node group {node_group_id} not found in {replication_group_id}")
            if len(group["node_groups"][node_group_id]["members"]) < 2:
                raise LabInvalidState(f"node group {node_group_id} has no replica to promote")
            group["status"] = "modifying"
        self._background(self._cache_failover, replication_group_id, node_group_id, False)

    def start_delete_cache_node(self, cache_cluster_id: str) -> None:
        with self._lock:
            node = self._get(self._nodes, cache_cluster_id, "Cache cluster")
            group = self._group_for_change(node["replication_group_id"])
            members = group["node_groups"][node["node_group_id"]]["members"]
            if node["role"] == "primary" and len(members) < 2:
                raise LabInvalidState(f"{cache_cluster_id} is the only node of its node group")
            group["status"] = "modifying"
            node["status"] = "deleting"
        if node["role"] == "primary":
            self._background(self._cache_failover, group["id"], node["node_group_id"], True)
        else:
            self._background(self._remove_replica, cache_cluster_id)

    def start_add_cache_node(self, replication_group_id: str, cache_cluster_id: Optional[str] = None,
                             az: Optional[str] = None) -> str:
        with self._lock:
            group = self._group_for_change(replication_group_id)
            used = {int(n.rsplit("-", 1)[1]) for n in self._nodes if n.startswith(replication_group_id + "-")}
            free = [n for n in range(1, MAX_CACHE_NODES + 1) if n not in used]
            if cache_cluster_id:
                try:
                    number = int(cache_cluster_id.rsplit("-", 1)[1])
                except (IndexError, ValueError):
                    number = 0
                if cache_cluster_id != f"{replication_group_id}-{number:03d}" or number not in free:
                    raise LabInvalidState(f"cannot create {cache_cluster_id}: the lab names nodes "
                                          f"{replication_group_id}-00N, N free among {free}")
            elif not free:
                raise LabInvalidState(f"{replication_group_id} already has {MAX_CACHE_NODES} nodes (lab limit)")
            else:
                number = free[0]
            node_id = f"{replication_group_id}-{number:03d}"
            group["status"] = "modifying"
            self._nodes[node_id] = {"id": node_id, "az": az or AZS[(number - 1) % len(AZS)], "status": "creating",
                                    "created_at": time.time(), "role": "replica",
                                    "replication_group_id": replication_group_id, "node_group_id": NODE_GROUP_ID,
                                    "address": "127.0.0.1", "port": self.config.cache_node_port(number),
                                    "pid": None, "node_type": "cache.lab.small"}
        self._background(self._add_replica, replication_group_id, number)
        return node_id

    def _cache_failover(self, group_id: str, node_group_id: str, remove_old: bool) -> None:
        group = self._groups[group_id]
        old = self._primary_of(group, node_group_id)
        old_port = self._nodes[old]["port"]
        if not remove_old:
            self.events.record("replication-group", group_id,
                               f"Test Failover API called for node group {node_group_id}", None, ["failover"])
        servers.stop_pid(self._procs[old].pid, hard=True)
        killed = time.monotonic()
        self.events.record("lab", group_id, f"primary {old} killed")
        if not remove_old:
            held = self.config.cache_failover_outage_seconds - (time.monotonic() - killed)
            if held > 0:  # ElastiCache needs a while to detect the loss; clients must ride through it
                time.sleep(held)
            self._ask_sentinel_to_fail_over(group_id)
        writable_at = self._wait_cache_endpoint_writable(timeout=30)
        deadline, new_port = time.monotonic() + 15, old_port
        while new_port == old_port and time.monotonic() < deadline:
            new_port = self._sentinel_primary_port() or old_port
            time.sleep(0.02) if new_port == old_port else None
        new = next((n for n, v in self._nodes.items() if v["port"] == new_port and n != old), None)
        if new is None:
            raise LabInvalidState(f"Sentinel did not promote a replica of {old}")
        self.events.record("lab", group_id, f"endpoint writable on {new}", categories=["writable"], at=writable_at)
        with self._lock:
            self._nodes[new]["role"] = "primary"
            self._nodes[old]["role"] = "replica"
        self.events.record("replication-group", group_id,
                           f"Failover from primary node {old} to replica node {new} completed", None, ["failover"])
        if remove_old:
            self._forget_node(old)
            self.events.record("cache-cluster", old, "Cache cluster deleted", None, ["deletion"])
        else:
            self.events.record("cache-cluster", old, f"Recovering cache nodes {node_group_id}", None, ["recovery"])
            number = int(old.rsplit("-", 1)[1])
            self._launch_cache_node(group_id, number, new_port)
            self._wait_replica_synced(old)
            self.events.record("cache-cluster", old, f"Finished recovery for cache nodes {node_group_id}",
                               None, ["recovery"])
        with self._lock:
            group["status"] = "available"
        self._save()

    def _ask_sentinel_to_fail_over(self, group_id: str) -> None:
        """A managed failover (TestFailover) promotes at once; a hard loss waits for Sentinel's
        own detection and election instead (down-after + vote), as an unplanned failure does."""
        for i in range(3):
            try:
                s = self._sentinel(i)
                s.execute_command("SENTINEL FAILOVER", group_id)
                s.close()
                return
            except redis.RedisError as exc:
                log.info("sentinel-%d refused a forced failover (%s); trying the next", i + 1, exc)

    def _wait_cache_endpoint_writable(self, timeout: float) -> float:
        """Poll a write through the primary endpoint every 20 ms; returns when the first one landed."""
        client = self._redis(self.config.cache_primary_port, timeout=0.1)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                try:
                    client.set("woolab:probe", time.time())
                    return time.time()
                except redis.RedisError:
                    client.connection_pool.disconnect()
                    time.sleep(0.02)
        finally:
            client.close()
        raise LabInvalidState(f"cache primary endpoint not writable within {timeout:.0f} s")

    def _wait_db_endpoint_writable(self, timeout: float = 30.0) -> float:
        """Poll a commit through the DB instance endpoint every 20 ms; returns when one was acknowledged."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                conn = pymysql.connect(host="127.0.0.1", port=self.config.db_endpoint_port, user="admin",
                                       password=self.secrets["db_admin_password"], connect_timeout=0.5,
                                       read_timeout=5, write_timeout=5, autocommit=True, ssl_disabled=True)
                try:
                    servers.sql(conn, "REPLACE INTO woolab.probe VALUES (1, %s)", (time.time(),))
                    return time.time()
                finally:
                    conn.close()
            except pymysql.MySQLError:
                time.sleep(0.02)
        raise LabInvalidState(f"DB instance endpoint not writable within {timeout:.0f} s")

    def _wait_replica_synced(self, node_id: str, timeout: float = 20.0) -> None:
        client = self._redis(self._nodes[node_id]["port"])
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                try:
                    if client.info("replication").get("master_link_status") == "up":
                        return
                except redis.RedisError:
                    pass
                time.sleep(0.05)
        finally:
            client.close()
        raise LabInvalidState(f"replica {node_id} did not sync within {timeout:.0f} s")

    def _forget_node(self, node_id: str) -> None:
        with self._lock:
            node = self._nodes.pop(node_id)
            self._procs.pop(node_id, None)
            members = self._groups[node["replication_group_id"]]["node_groups"][node["node_group_id"]]["members"]
            members.remove(node_id)

    def _remove_replica(self, node_id: str) -> None:
        group_id = self._nodes[node_id]["replication_group_id"]
        servers.stop_pid(self._procs[node_id].pid, timeout=5)
        self._forget_node(node_id)
        self.events.record("cache-cluster", node_id, "Cache cluster deleted", None, ["deletion"])
        with self._lock:
            self._groups[group_id]["status"] = "available"
        self._save()

    def _add_replica(self, group_id: str, number: int) -> None:
        primary_port = self._nodes[self._primary_of(self._groups[group_id], NODE_GROUP_ID)]["port"]
        node_id = self._launch_cache_node(group_id, number, primary_port)
        servers.wait_for_port(self._nodes[node_id]["port"], 10, self._procs[node_id], f"redis {node_id}")
        self._wait_replica_synced(node_id)
        self._wait_sentinels_know(self._nodes[node_id]["port"])
        self.events.record("cache-cluster", node_id, "Cache cluster created", None, ["creation"])
        with self._lock:
            self._groups[group_id]["status"] = "available"
        self._save()

    # ------------------------------------------------------------------ tags
    def _tagged(self, kind: str, resource_id: str) -> dict:
        table = {"db": self._db, "replication-group": self._groups, "cache-cluster": self._nodes}.get(kind)
        if table is None:
            raise LabNotFound(f"unknown resource kind {kind}")
        return self._get(table, resource_id, kind).setdefault("tags", {})

    def set_tags(self, kind: str, resource_id: str, tags: dict) -> None:
        with self._lock:
            self._tagged(kind, resource_id).update(tags)
        self._save()

    def remove_tags(self, kind: str, resource_id: str, keys: list) -> None:
        with self._lock:
            tags = self._tagged(kind, resource_id)
            for key in keys:
                tags.pop(key, None)
        self._save()

    # ------------------------------------------------------------------ watcher
    def _live_cache_ports(self) -> dict:
        with self._lock:
            return {n: v["port"] for n, v in self._nodes.items() if servers.pid_alive(v["pid"])}

    def _redis_role(self, port: int) -> Optional[str]:
        client = self._redis(port, timeout=0.5)
        try:
            return client.info("replication").get("role")
        except redis.RedisError:
            return None
        finally:
            client.close()

    def _demote_stale_primaries(self, masters: list) -> bool:
        """Two nodes saying `master` (Sentinel re-elected while an old primary still runs) would let
        the endpoint split writes; ElastiCache never shows that, so the lab demotes at once what
        Sentinel would only convert ~10 s later. Returns whether anything changed."""
        votes = [self._sentinel_view(i) for i in range(3)]
        ports = [v for v in votes if v]
        true_port = max(set(ports), key=ports.count) if ports else None
        if true_port is None or ports.count(true_port) < 2:
            return False
        demoted = False
        for node_id in masters:
            node = self._nodes[node_id]
            if node["port"] != true_port:
                client = self._redis(node["port"])
                try:
                    client.execute_command("REPLICAOF", "127.0.0.1", true_port)
                    self.events.record("lab", node_id, f"demoted stale primary {node_id} (Sentinel quorum "
                                                       f"names port {true_port})")
                    demoted = True
                except redis.RedisError as exc:
                    log.warning("could not demote %s: %s", node_id, exc)
                finally:
                    client.close()
        return demoted

    def _sentinel_view(self, index: int) -> Optional[int]:
        try:
            s = self._sentinel(index)
            addr = s.sentinel_get_master_addr_by_name(REPLICATION_GROUP_ID)
            s.close()
            return int(addr[1]) if addr else None
        except redis.RedisError:
            return None

    def _watch(self) -> None:
        """Notice nodes that died on their own and roles that changed without us (Sentinel)."""
        reported = set()
        while not self._stopping.wait(1.0):
            changed = False
            with self._lock:
                if any(t.is_alive() for t in self._threads):
                    continue  # a mechanic is changing the topology: its own view is the truth
                for node_id, node in self._nodes.items():
                    alive = servers.pid_alive(node["pid"])
                    status = "available" if alive else "incompatible-network"
                    if node["status"] != status:
                        node["status"], changed = status, True
                for db in self._db.values():
                    for name, node in db["nodes"].items():
                        if not servers.pid_alive(node["pid"]) and name not in reported:
                            reported.add(name)
                            if node["role"] == "primary":
                                db["status"] = "failed"
                            changed = True
                            self.events.record("lab", name, f"mariadbd {name} exited unexpectedly")
            generation = self._generation
            masters = [node_id for node_id, port in self._live_cache_ports().items()
                       if self._redis_role(port) == "master"]
            if len(masters) > 1 and generation == self._generation:
                if self._demote_stale_primaries(masters):
                    self._save()
                continue
            with self._lock:
                if generation != self._generation or any(t.is_alive() for t in self._threads):
                    continue  # a mechanic started meanwhile: what we read may predate it
                if len(masters) == 1:  # the nodes themselves are the truth, not a lagging Sentinel
                    for node_id, node in self._nodes.items():
                        role = "primary" if node_id == masters[0] else "replica"
                        if node["role"] != role:
                            node["role"], changed = role, True
            if changed:
                self._save()
