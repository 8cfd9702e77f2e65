"""The lab's endpoints: the RDS instance endpoint and the ElastiCache primary/reader endpoints.

Today they are HAProxy listeners on 127.0.0.1. The DB endpoint is switched by the mechanics
through HAProxy's runtime API (RDS orchestrates its own failover); the cache endpoints follow the
Redis role by health checks (they follow whatever Sentinel promotes). The mechanics only call
`db_cut`, `db_open` and the `wait_*_writable` probes, so the mechanism can change behind them.
"""
import os
import time
from pathlib import Path
from typing import List, Tuple

import pymysql
import redis

from chaosext.supervisor import poll_until

from . import servers
from .admin import Admin
from .errors import LabInvalidState


class HaproxyEndpoints:
    def __init__(self, run_dir: Path, admin: Admin, db_port: int, cache_primary_port: int,
                 cache_reader_port: int, db_admin_password: str):
        self.run_dir = run_dir
        self.socket = run_dir / "haproxy.sock"
        self.admin = admin
        self.db_port, self.cache_primary_port, self.cache_reader_port = db_port, cache_primary_port, cache_reader_port
        self._db_admin_password = db_admin_password

    def start(self, db_nodes: List[Tuple[str, int]], db_primary: str, cache_slots: List[Tuple[str, int]]):
        """Write the configuration and start HAProxy; returns its Popen once every listener is up."""
        text = servers.haproxy_config(
            socket_path=self.socket, db_port=self.db_port, db_nodes=db_nodes, db_primary=db_primary,
            cache_primary_port=self.cache_primary_port, cache_reader_port=self.cache_reader_port,
            cache_slots=cache_slots, redis_password=self.admin.redis_password)
        path = self.run_dir / "haproxy.cfg"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        proc = servers.haproxy_start(path, self.run_dir)
        for port in (self.db_port, self.cache_primary_port, self.cache_reader_port):
            servers.wait_for_port(port, 10, proc, "haproxy")
        self.wait_cache_writable(timeout=10)
        return proc

    def _command(self, command: str) -> str:
        return servers.haproxy_command(self.socket, command)

    def db_cut(self, node: str) -> None:
        """The instance endpoint stops reaching `node`, and its open sessions are closed."""
        self._command(f"set server db/{node} state maint")
        self._command(f"shutdown sessions server db/{node}")

    def db_open(self, node: str) -> None:
        self._command(f"set server db/{node} state ready")

    def wait_db_writable(self, timeout: float = 30.0) -> float:
        """Poll a commit through the instance endpoint every 20 ms; the time the first one landed."""
        def commit():
            try:
                conn = pymysql.connect(host="127.0.0.1", port=self.db_port, user="admin",
                                       password=self._db_admin_password, connect_timeout=0.5, read_timeout=5,
                                       write_timeout=5, autocommit=True, ssl_disabled=True)
                try:
                    servers.sql(conn, "REPLACE INTO woolab.probe VALUES (1, %s)", (time.time(),))
                    return time.time()
                finally:
                    conn.close()
            except pymysql.MySQLError:
                return None
        landed = poll_until(commit, timeout, interval=0.02)
        if landed is None:
            raise LabInvalidState(f"DB instance endpoint not writable within {timeout:.0f} s")
        return landed

    def wait_cache_writable(self, timeout: float) -> float:
        """Poll a write through the primary endpoint every 20 ms; the time the first one landed."""
        with self.admin.redis(self.cache_primary_port, timeout=0.1) as client:
            def write():
                try:
                    client.set("woolab:probe", time.time())
                    return time.time()
                except redis.RedisError:
                    client.connection_pool.disconnect()
                    return None
            landed = poll_until(write, timeout, interval=0.02)
        if landed is None:
            raise LabInvalidState(f"cache primary endpoint not writable within {timeout:.0f} s")
        return landed
