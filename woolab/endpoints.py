"""The lab's endpoints, as on AWS: DNS names whose answer follows the current roles.

- RDS instance endpoint: names the node the mechanics pointed it at (`db_open`); during a failover
  it keeps naming the old primary, whose address refuses connections once that host is down,
  until the record moves to the new primary.
- ElastiCache primary endpoint: the node whose role is `primary`; reader endpoint: the healthy
  replicas (the primary when there is none); node endpoints: each node.
Nothing cuts a client's open connections: a client that kept its connection to a demoted cache
primary gets READONLY, one that cached the address past the TTL meets the old host. The
`wait_*_writable` probes resolve afresh every time, so the ground truth they record is what a
well-behaved client sees: name resolution, reconnect, first acknowledged write.
"""
import time
from typing import List, Optional, Tuple

import pymysql
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from groundfloor.resolve import NameNotResolved, Resolver
from groundfloor.supervisor import poll_until

from . import servers
from .config import LabConfig
from .dns import LabDns
from .errors import LabInvalidState
from .state import LabState
from .tls import lab_tls, mysql_options, redis_options


class DnsEndpoints:
    def __init__(self, config: LabConfig, state: LabState, secrets: dict, ttl: Tuple[float, float]):
        self.config, self.state, self.secrets = config, state, secrets
        self.db_ttl, self.cache_ttl = ttl
        self.server: Optional[LabDns] = None
        self.fresh = Resolver(f"127.0.0.1:{config.dns_port}", cache_seconds=0)
        self._reader_turn = 0

    def start(self) -> "DnsEndpoints":
        self.server = LabDns(self.config.dns_port, self.lookup).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    # what the names resolve to -------------------------------------------------------------------
    def lookup(self, name: str) -> Optional[Tuple[List[str], float]]:
        cfg = self.config
        with self.state.lock:
            if name == cfg.db_endpoint_name.lower():
                db = next(iter(self.state.db.values()), None)
                return ([db.nodes[db.endpoint_node].ip], self.db_ttl) if db and db.endpoint_node else None
            cluster = next(iter(self.state.clusters.values()), None)
            if cluster is not None:
                found = self._cluster_lookup(cluster, name)
                if found is not None:
                    return found
            nodes = list(self.state.nodes.values())
        if name == cfg.cache_primary_name.lower():
            return [n.ip for n in nodes if n.role == "primary"][:1], self.cache_ttl
        if name == cfg.cache_reader_name.lower():
            replicas = [n.ip for n in nodes if n.role == "replica" and n.status == "available"]
            return replicas or [n.ip for n in nodes if n.role == "primary"][:1], self.cache_ttl
        for node in nodes:
            if name == node.address.lower():
                return [node.ip], self.cache_ttl
        return None

    def _cluster_lookup(self, cluster, name: str) -> Optional[Tuple[List[str], float]]:
        """A DB cluster's names (state lock held): the cluster endpoint names the writer; the
        reader endpoint one available reader per query, in turn, so clients spread over them
        as the reader endpoint sends each connection to one of the readers (the writer when no
        reader is available); an instance endpoint its member."""
        cfg = self.config
        if name == cfg.db_cluster_endpoint_name.lower():
            return ([cluster.nodes[cluster.endpoint_node].ip] if cluster.endpoint_node else []), self.db_ttl
        if name == cfg.db_reader_endpoint_name.lower():
            readers = [cluster.nodes[r].ip for r in cluster.readers if cluster.nodes[r].status == "available"]
            self._reader_turn += 1
            if readers:
                return [readers[self._reader_turn % len(readers)]], self.db_ttl
            return [cluster.nodes[cluster.primary].ip], self.db_ttl
        for member, address in cluster.member_endpoints.items():
            if name == address.lower():
                return [cluster.nodes[member].ip], self.db_ttl
        return None

    # what the mechanics do -------------------------------------------------------------------------
    def db_cut(self, node: str) -> None:
        """Nothing to cut: the record keeps naming the old host, which the mechanics take down."""

    def db_open(self, node: str) -> None:
        """Move the instance endpoint's record to `node`."""
        with self.state.lock:
            next(iter(self.state.db.values())).endpoint_node = node

    # ground truth probes ---------------------------------------------------------------------------
    def wait_db_writable(self, timeout: float = 30.0) -> float:
        """Resolve the instance (or cluster) endpoint and commit, every 20 ms; the time the first
        commit landed."""
        def commit():
            host = self.fresh.address(self.config.db_writer_name)
            conn = pymysql.connect(host=host, port=self.config.db_endpoint_port, user="admin",
                                   password=self.secrets["db_admin_password"], connect_timeout=0.5,
                                   read_timeout=5, write_timeout=5, autocommit=True,
                                   **mysql_options(lab_tls(self.config)))
            try:
                servers.sql(conn, "REPLACE INTO woolab.probe VALUES (1, %s)", (time.time(),))
            finally:
                conn.close()
        what = "DB cluster endpoint" if self.config.db_topology == "cluster" else "DB instance endpoint"
        return _first_success(commit, pymysql.MySQLError, timeout, what)

    def wait_cache_writable(self, timeout: float) -> float:
        """Resolve the primary endpoint and write, every 20 ms; the time the first write landed."""
        def write():
            host = self.fresh.address(self.config.cache_primary_name)
            client = redis.Redis(host=host, port=self.config.cache_primary_port, socket_timeout=0.2,
                                 socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0),
                                 **redis_options(lab_tls(self.config), self.secrets["redis_password"]))
            try:
                client.set("woolab:probe", time.time())
            finally:
                client.close()
        return _first_success(write, redis.RedisError, timeout, "cache primary endpoint")


def _first_success(attempt, errors, timeout: float, what: str) -> float:
    """Call `attempt` every 20 ms until it does not raise; the time it first succeeded."""
    def once():
        try:
            attempt()
            return time.time()
        except (errors, NameNotResolved):
            return None
    landed = poll_until(once, timeout, interval=0.02)
    if landed is None:
        raise LabInvalidState(f"{what} not writable within {timeout:.0f} s")
    return landed
