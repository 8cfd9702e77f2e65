"""Admin clients for the lab's servers: MariaDB root, Redis nodes, Sentinels.

Every client is a context manager that closes on every path (error paths included), and none
retries inside the client library: the lab measures and decides, it must not wait in redis-py.
"""
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import pymysql
from redis import Redis, RedisError
from redis.backoff import NoBackoff
from redis.retry import Retry

from groundfloor.supervisor import poll_until

from . import servers
from .network.addresses import server_address
from .tls import LabTls, redis_options, redis_tls_options


class Admin:
    """Where the admin paths are: the run dir (MariaDB sockets), the Sentinels' ports, and how to
    reach a Redis node (password; on an encrypted lab TLS and the ACL user, `woolab.tls`)."""

    def __init__(self, run_dir: Path, redis_password: str, sentinel_ports: list,
                 tls: Optional[LabTls] = None):
        self.run_dir = run_dir
        self.sentinel_ports = sentinel_ports
        self.redis_options = redis_options(tls, redis_password)
        self.sentinel_options = redis_tls_options(tls)

    @contextmanager
    def mysql(self, node: str, timeout: float = 5.0,
              read_timeout: float = 30.0) -> Iterator[pymysql.connections.Connection]:
        conn = servers.mysql_root(self.run_dir, node, timeout, read_timeout)
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def redis(self, port: int, timeout: float = 1.0, host: str = "127.0.0.1") -> Iterator[Redis]:
        """A node's admin client; it reaches the server directly, past the relay, as AWS's control
        plane reaches its hosts whatever a customer's network does (docs/lab-network.md)."""
        client = Redis(host=server_address(host), port=port, socket_timeout=timeout, socket_connect_timeout=timeout,
                       retry=Retry(NoBackoff(), 0), **self.redis_options)
        try:
            yield client
        finally:
            client.close()

    @contextmanager
    def sentinel(self, index: int) -> Iterator[Redis]:
        client = Redis(host="127.0.0.1", port=self.sentinel_ports[index], socket_timeout=1.0,
                       socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0), **self.sentinel_options)
        try:
            yield client
        finally:
            client.close()

    # small questions the mechanics ask -----------------------------------------------------------
    def redis_role(self, port: int, host: str = "127.0.0.1") -> Optional[str]:
        """`master` / `slave`, or None when the node does not answer within 0.5 s."""
        try:
            with self.redis(port, timeout=0.5, host=host) as client:
                return client.info("replication").get("role")
        except RedisError:
            return None

    def replica_synced(self, port: int, host: str = "127.0.0.1") -> bool:
        try:
            with self.redis(port, host=host) as client:
                return client.info("replication").get("master_link_status") == "up"
        except RedisError:
            return False

    def wait_replica_synced(self, port: int, timeout: float, host: str = "127.0.0.1") -> bool:
        return bool(poll_until(lambda: self.replica_synced(port, host), timeout, interval=0.05))

    def sentinel_view(self, index: int, group_id: str) -> Optional[str]:
        """The primary's address Sentinel `index` names for the group, or None."""
        try:
            with self.sentinel(index) as s:
                addr = s.sentinel_get_master_addr_by_name(group_id)
            if not addr:
                return None
            return addr[0].decode() if isinstance(addr[0], bytes) else str(addr[0])
        except RedisError:
            return None
