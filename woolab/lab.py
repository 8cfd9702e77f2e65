"""The lab as composition root: it wires the parts, starts the servers, and exposes the operations
the AWS facade and the control routes may ask for (the `LabBackend` protocol).

Operations work as AWS's do: the `start_*` call validates, sets the status at once and returns;
the work goes on in the background and every step lands in the ground-truth event log. The
mechanics live in `woolab.db` and `woolab.cache`; this module only decides what runs when.
"""
import contextlib
import logging
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional

from groundfloor.supervisor import pid_alive, poll_until

from . import servers
from .admin import Admin
from .background import BackgroundRunner
from .cache import sentinel
from .cache.failover import CacheMechanics
from .cache.setup import start_cache
from .cache.watch import adopt_roles, demote_stale_primaries, live_masters, node_roles
from .convergence import redundancy_problems
from .config import REPLICATION_GROUP_ID, LabConfig, load_or_create_secrets
from .db import cluster as db_cluster
from .db import lag as db_lag
from .db.commitguard import set_strict
from .db.failover import DbMechanics, check_reboot
from .db.setup import start_db
from .endpoints import DnsEndpoints
from .errors import LabStartError
from .events import EventLog
from .parts import LabParts, LabProcesses
from .monitor import HealthMonitor
from .network.layer import NetworkLayer
from .power import PowerControl
from .shop_launcher import ShopLauncher
from .state import LabState
from .timing import profile_for
from .tls import generate as generate_tls
from .webhook import WebhookReceiver

log = logging.getLogger("woolab")


class Lab:
    def __init__(self, config: LabConfig):
        self.config = config
        self.state = LabState(config.path("topology.json"), config.region, config.account_id)
        self.state.alive = pid_alive
        self.procs = LabProcesses(self.state)
        self.events: Optional[EventLog] = None
        self.parts: Optional[LabParts] = None
        self.runner = BackgroundRunner(self._settle_after_failure)
        self.webhook: Optional[WebhookReceiver] = None
        self._watcher: Optional[threading.Thread] = None
        self.network: Optional[NetworkLayer] = None

    # ------------------------------------------------------------------ bring-up / shutdown
    def start(self) -> None:
        cfg = self.config
        missing = servers.missing_packages()
        if missing:
            raise LabStartError("missing Debian packages: " + " ".join(missing)
                                + " (run `make bootstrap` as root, or apt-get install them)")
        servers.check_ports_free([p for p in cfg.all_ports() if p != cfg.facade_port])
        servers.check_udp_port_free(cfg.dns_port)
        run_dir = cfg.path("run")
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        secrets = load_or_create_secrets(cfg.state_dir)
        self.events = EventLog(cfg.path("events.jsonl"))
        tls = generate_tls(cfg) if cfg.tls else None
        admin = Admin(run_dir, secrets["redis_password"], [cfg.sentinel_port(i) for i in range(sentinel.SENTINELS)],
                      tls)
        timing = profile_for(cfg)
        endpoints = DnsEndpoints(cfg, self.state, secrets, (timing.db_dns_ttl_seconds, timing.cache_dns_ttl_seconds))
        self.parts = parts = LabParts(cfg, self.state, self.events, admin, endpoints, self.procs, secrets, timing)
        self.db = DbMechanics(parts)
        self.cluster = db_cluster.ClusterMechanics(parts, self.db)
        self.cache = CacheMechanics(parts)
        self.shop = ShopLauncher(parts)
        self.network = NetworkLayer(cfg, self.state, self.events, lambda strict: set_strict(parts, strict)).start()
        parts.network_impaired = lambda: bool(self.network.in_force())
        with ThreadPoolExecutor(2) as pool:  # MariaDB and Redis come up side by side
            start_database = db_cluster.start_cluster if cfg.db_topology == "cluster" else start_db
            for future in [pool.submit(start_database, parts), pool.submit(start_cache, parts)]:
                future.result()
        endpoints.start()
        endpoints.wait_cache_writable(timeout=10)
        sentinel.wait_ready(admin, REPLICATION_GROUP_ID, len(self.state.nodes) - 1)
        if cfg.with_shop:
            self.shop.start()
        self.webhook = WebhookReceiver(cfg.webhook_port, cfg.path("webhook")).start()
        self.state.save()
        self.power = PowerControl(parts, self.runner, self.db, self.cache, self.cluster)
        self.monitor = HealthMonitor(parts, self.runner, self.db, self.cache, self.power.powered_off, self.cluster)
        self.monitor.start()
        self._watcher = threading.Thread(target=self._watch, name="lab-watch", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        """Stop every process this lab started, by pid, newest layer first."""
        if self.parts is not None:
            self.parts.stopping.set()
        self.runner.wait_idle(15)
        if self.webhook is not None:
            self.webhook.stop()
        if self.parts is not None:
            self.parts.endpoints.stop()
        if self.network is not None:
            self.network.stop()
        names = self.procs.names()
        order = ["shop"] + [n for n in names if n.startswith("sentinel")] \
            + [n for n in names if n.startswith(REPLICATION_GROUP_ID)] + names
        for name in dict.fromkeys(order):
            self.procs.stop(name)
        self.state.save()

    def _settle_after_failure(self, kind: str, resource_id: str, why: str) -> None:
        """A failed operation must not leave its resource `modifying` forever (nothing else could
        run on it); other resources keep their status, their own operations may still be running."""
        with self.state.lock:
            if kind == "db" and resource_id in self.state.db:
                self.state.db[resource_id].status = "available"
            elif kind == "db-cluster" and resource_id in self.state.clusters:
                self.state.clusters[resource_id].status = "available"
            elif kind == "replication-group" and resource_id in self.state.groups:
                self.state.groups[resource_id].status = "available"
                for node_id, node in list(self.state.nodes.items()):
                    if node.replication_group_id == resource_id and node.status == "creating" \
                            and not pid_alive(node.pid):
                        self.state.forget_node(node_id)
        if self.events is not None:
            self.events.record("lab", "lab", f"operation failed: {why}")
        self.state.save()

    # ------------------------------------------------------------------ full redundancy
    def redundancy_problems(self) -> List[str]:
        """What keeps the lab from full redundancy now (empty: converged)."""
        return redundancy_problems(self.parts, self.runner, self.power.powered_off)

    def wait_converged(self, timeout: float) -> dict:
        """Wait until the lab has full redundancy again; what is still missing, and the last events."""
        problems: List[str] = []

        def converged() -> bool:
            problems[:] = self.redundancy_problems()
            return not problems
        poll_until(converged, timeout, interval=0.25)
        return {"converged": not problems, "problems": problems, "events": self.events.tail(12)}

    def repair(self, timeout: float) -> dict:
        """The last resort: power back in every AZ, every frozen node resumed, healing retried at
        once; then wait for full redundancy. The lab heals by itself, so this should never be needed."""
        for az in list(self.power.interruptions()):
            self.power.restore(az)
        for name, pid in self.procs.pids().items():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGCONT)
        self.monitor.healer.retry_now()
        self.events.record("lab", "lab", "repair asked for: healing every degraded resource now")
        return self.wait_converged(timeout)

    def take_background_errors(self) -> List[str]:
        return self.runner.take_errors()

    def wait_idle(self, timeout: float = 60.0) -> None:
        self.runner.wait_idle(timeout)

    # ------------------------------------------------------------------ operations (LabBackend)
    def snapshot(self) -> dict:
        return self.state.snapshot()

    def processes(self) -> dict:
        return self.procs.pids()

    def start_db_reboot(self, instance_id: str, force_failover: bool) -> None:
        too_soon = check_reboot(self.parts, instance_id, force_failover)
        if force_failover and not too_soon:
            self.runner.run(("db", instance_id), self.db.failover, instance_id)
        else:
            self.runner.run(("db", instance_id), self.db.reboot_in_place, instance_id, too_soon)

    def start_db_cluster_failover(self, cluster_id: str, target: Optional[str] = None) -> str:
        """FailoverDBCluster: validate, mark `failing-over`, promote in the background; returns
        the reader being promoted."""
        chosen = db_cluster.check_failover(self.parts, cluster_id, target)
        self.runner.run(("db-cluster", cluster_id), self.cluster.failover, cluster_id, chosen)
        return chosen

    def start_cache_primary_loss(self, replication_group_id: str, node_group_id: str) -> None:
        self.cache.check_primary_loss(replication_group_id, node_group_id)
        self.runner.run(("replication-group", replication_group_id), self.cache.failover,
                        replication_group_id, node_group_id, False)

    def start_delete_cache_node(self, cache_cluster_id: str) -> None:
        node = self.cache.check_delete(cache_cluster_id)
        owner = ("replication-group", node.replication_group_id)
        if node.role == "primary":
            self.runner.run(owner, self.cache.failover, node.replication_group_id, node.node_group_id, True)
        else:
            self.runner.run(owner, self.cache.remove_replica, cache_cluster_id)

    def start_add_cache_node(self, replication_group_id: str, cache_cluster_id: Optional[str] = None,
                             az: Optional[str] = None) -> str:
        number = self.cache.reserve_node(replication_group_id, cache_cluster_id, az)
        self.runner.run(("replication-group", replication_group_id), self.cache.add_replica,
                        replication_group_id, number)
        return f"{replication_group_id}-{number:03d}"

    def set_tags(self, kind: str, resource_id: str, tags: dict) -> None:
        with self.state.lock:
            self.state.tags_of(kind, resource_id).update(tags)
        self.state.save()

    def remove_tags(self, kind: str, resource_id: str, keys: list) -> None:
        with self.state.lock:
            tags = self.state.tags_of(kind, resource_id)
            for key in keys:
                tags.pop(key, None)
        self.state.save()

    def configure_shop(self, overrides: dict) -> dict:
        return self.shop.configure(overrides)

    # failures nobody schedules (by hand, or an AZ's power) -----------------------------------
    def crash_node(self, name: str) -> None:
        self.power.crash(name)

    def freeze_node(self, name: str) -> None:
        self.power.freeze(name)

    def thaw_node(self, name: str) -> None:
        self.power.thaw(name)

    def start_az_power_interruption(self, az: str, seconds: float,
                                    node_kinds: Optional[List[str]] = None) -> List[str]:
        """Cut the power of one AZ for `seconds`; returns the lab nodes that lost power."""
        return self.power.interrupt(az, seconds, tuple(node_kinds or ("db", "cache")))

    def end_az_power_interruption(self, az: str) -> None:
        """Give the AZ its power back before the planned end (a stopped FIS experiment)."""
        self.power.restore(az)

    # the DB cluster's readers: their lag, and a lag on purpose (woolab/db/lag.py) -----------
    def replica_lag(self, cluster_id: str) -> dict:
        return db_lag.replica_lag(self.parts, cluster_id)

    def set_replica_delay(self, cluster_id: str, member: str, seconds) -> dict:
        return db_lag.set_delay(self.parts, cluster_id, member, seconds)

    # gray failures: the data path's impairments (woolab/network) -----------------------------
    def impair_network(self, values: dict) -> dict:
        """Apply one impairment to an AZ's flows; refused unchanged when it is invalid."""
        return self.network.impair(values)

    def clear_network(self, az: Optional[str] = None) -> List[dict]:
        return self.network.clear(az)

    def network_impairments(self) -> List[dict]:
        return self.network.in_force()

    # ------------------------------------------------------------------ watcher
    def _watch(self) -> None:
        """Once a second: roles that changed without us (Sentinel), and stale second primaries.
        Health (crashed or hung nodes) is the `HealthMonitor`'s job."""
        while not self.parts.stopping.wait(1.0):
            if self.runner.busy():
                continue  # a mechanic is changing the topology: its own view is the truth
            generation = self.runner.generation
            roles = node_roles(self.parts)
            masters = live_masters(roles)
            if len(masters) > 1:
                if demote_stale_primaries(self.parts, REPLICATION_GROUP_ID, masters):
                    self.state.save()
                continue
            if generation != self.runner.generation or self.runner.busy():
                continue  # a mechanic started meanwhile: what we read may predate it
            if adopt_roles(self.parts, roles):
                self.state.save()
